/*
 * testutil.h: small helpers shared by the unit tests: reading fixture files, comparing
 * JSON texts structurally, and a temporary directory holding a test's database. Include it after <cmocka.h>, which turns malloc/free in test
 * files into the checked allocator, so fixture buffers are leak-checked too.
 */
#ifndef AR_TESTS_TESTUTIL_H
#define AR_TESTS_TESTUTIL_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Reads tests/fixtures/<rel> whole. Tests run from the repository root (make test-unit);
 * parent directories are tried too so a binary can be run from build/ by hand.
 * @return a malloc'd NUL-terminated copy (free with free()); fails the test when missing.
 */
/*
 * PostgreSQL runs of the store tests: with AR_TEST_PG_URL set (tests/pg.sh start prints
 * one; tests/run-unit.sh sets it), each test's store is a fresh PostgreSQL database
 * instead of a SQLite file, created from that URL's server and dropped with the test.
 */
static inline const char *ar_test_pg_url(void)
{
    const char *u = getenv("AR_TEST_PG_URL");
    return u && *u ? u : NULL;
}

/* Runs sql on the database of url (a postgresql:// URL); fails the test on an error. */
static inline void ar_test_pg_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("PostgreSQL %s: %s", url, PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* The database a test directory's PostgreSQL run uses: the directory's name. */
static inline const char *ar_test_pg_dbname(const char *dir)
{
    const char *slash = strrchr(dir, '/');
    return slash ? slash + 1 : dir;
}

/*
 * A fresh directory under /tmp (prefix names the test) for a database file: dir gets its
 * path and url "sqlite://DIR/airouter.db", or with AR_TEST_PG_URL the URL of a new
 * PostgreSQL database named like the directory. ar_test_rmdir removes both.
 */
static inline void ar_test_store_dir(const char *prefix, char dir[64], char url[200])
{
    snprintf(dir, 64, "/tmp/%s-XXXXXX", prefix);
    assert_non_null(mkdtemp(dir));
    const char *pg = ar_test_pg_url();
    if (!pg) {
        snprintf(url, 200, "sqlite://%s/airouter.db", dir);
        return;
    }
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", ar_test_pg_dbname(dir));
    ar_test_pg_exec(pg, sql);
    const char *slash = strrchr(pg, '/'); /* the URL ends with /DBNAME */
    assert_non_null(slash);
    snprintf(url, 200, "%.*s/%s", (int)(slash - pg), pg, ar_test_pg_dbname(dir));
}

static inline void ar_test_rmdir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    if (ar_test_pg_url()) {
        snprintf(cmd, sizeof(cmd), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)",
                 ar_test_pg_dbname(dir));
        ar_test_pg_exec(ar_test_pg_url(), cmd);
    }
}

static inline char *ar_test_fixture(const char *rel, size_t *len_out)
{
    static const char *const prefixes[] = {"", "../", "../../", "../../../", "../../../../"};
    if (len_out)
        *len_out = 0;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%stests/fixtures/%s", prefixes[i], rel);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
        buf[n] = '\0';
        fclose(f);
        if (len_out)
            *len_out = (size_t)n;
        return buf;
    }
    fail_msg("fixture tests/fixtures/%s not found (run from the repository root)", rel);
    return NULL;
}

/* Parses a fixture as JSON; fails the test when it is not valid. json_decref the result. */
static inline json_t *ar_test_fixture_json(const char *rel)
{
    size_t n;
    char *text = ar_test_fixture(rel, &n);
    json_error_t je;
    json_t *v = json_loadb(text, n, 0, &je);
    if (!v)
        fail_msg("fixture %s: %s at line %d", rel, je.text, je.line);
    free(text);
    return v;
}

/* Frees memory jansson allocated (json_dumps): that is libc memory, while cmocka.h turns
 * free() in test files into the checked allocator's test_free. */
static inline void ar_test_json_free(void *p)
{
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    f(p);
}

/* Asserts that two JSON values are equal as values (key order and spacing ignored). */
#define assert_json_equal(got, want) ar_test_assert_json_equal((got), (want), __FILE__, __LINE__)

static inline void ar_test_assert_json_equal(const json_t *got, const json_t *want,
                                             const char *file, int line)
{
    if (json_equal(got, want))
        return;
    char *g = got ? json_dumps(got, JSON_SORT_KEYS) : NULL;
    char *w = want ? json_dumps(want, JSON_SORT_KEYS) : NULL;
    print_error("%s:%d: JSON differs\n  got:  %s\n  want: %s\n", file, line, g ? g : "(null)",
                w ? w : "(null)");
    ar_test_json_free(g);
    ar_test_json_free(w);
    _fail(file, line);
}

/* Parses text (len bytes) and compares it with want; fails when it is not JSON. */
static inline void ar_test_assert_json_text(const char *text, size_t len, const json_t *want,
                                            const char *file, int line)
{
    json_error_t je;
    json_t *got = json_loadb(text, len, 0, &je);
    if (!got) {
        print_error("%s:%d: not JSON (%s): %.*s\n", file, line, je.text, (int)len, text);
        _fail(file, line);
    }
    ar_test_assert_json_equal(got, want, file, line);
    json_decref(got);
}
#define assert_json_text(text, len, want)                                                          \
    ar_test_assert_json_text((text), (len), (want), __FILE__, __LINE__)

/* Compares got with the JSON text want_text (any JSON value); fails when that is not JSON. */
static inline void ar_test_assert_json_str(const json_t *got, const char *want_text,
                                           const char *file, int line)
{
    json_error_t je;
    json_t *want = json_loads(want_text, JSON_DECODE_ANY, &je);
    if (!want) {
        print_error("%s:%d: test JSON (%s): %s\n", file, line, je.text, want_text);
        _fail(file, line);
    }
    ar_test_assert_json_equal(got, want, file, line);
    json_decref(want);
}
#define assert_json_str(got, want_text)                                                            \
    ar_test_assert_json_str((got), (want_text), __FILE__, __LINE__)

#ifdef AR_CONFIG_CONFIG_H
/* Loads a config from YAML text (named t.yaml in messages); any problem fails the test
 * and is printed. Include config/config.h before this header to get it. */
static inline ar_config_t *ar_test_config(const char *yaml)
{
    ar_config_t *cfg = NULL;
    ar_strlist_t errs = {0};
    int rc = ar_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, &errs);
    for (size_t i = 0; i < errs.cnt; i++)
        print_error("config: %s\n", errs.items[i]);
    ar_strlist_dispose(&errs);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    return cfg;
}
#endif

#endif
