/*
 * admin_int.h: what the files of src/admin share: a writer with a sticky error (so a page
 * is a run of appends checked once at the end), the list of deployment states of the
 * current config in a stable order, and the small conversions every page needs (ban
 * expiry as wall time, breaker state, the degraded rule). Nothing outside src/admin
 * includes it.
 */
#ifndef AR_ADMIN_ADMIN_INT_H
#define AR_ADMIN_ADMIN_INT_H

#include "admin/admin.h"

/** An output buffer whose first failed append is kept; later appends do nothing. */
typedef struct ar_admin_w {
    ar_buf_t *out;
    int rc; /* 0, or the first error (AR_ETOOBIG) */
} ar_admin_w_t;

void ar_admin__puts(ar_admin_w_t *w, const char *s);
void ar_admin__putn(ar_admin_w_t *w, const char *s, size_t n);
void ar_admin__putf(ar_admin_w_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** A JSON string literal with its quotes, or `null` when s is NULL. */
void ar_admin__put_jstr(ar_admin_w_t *w, const char *s);
/** A limit or counter as JSON: -1 stands for "unlimited". */
void ar_admin__put_i64(ar_admin_w_t *w, int64_t v);
/** s with & < > " ' replaced by entities (HTML text and attribute values). */
void ar_admin__put_html(ar_admin_w_t *w, const char *s);

/** One deployment state (credential + upstream model) of a credential of the config. */
typedef struct ar_admin_dep {
    ar_target_state_t *s;
    size_t cred_idx;  /* into cfg->credentials */
    bool is_explicit; /* the state of at least one `models:` entry */
    size_t first_ref; /* explicit: its first entry in ar_admin_deps_t.refs */
} ar_admin_dep_t;

/** An explicit deployment (`models:` entry i) and the state it uses. */
typedef struct ar_admin_ref {
    const ar_target_state_t *s;
    size_t dep_idx; /* for ar_router_dep */
} ar_admin_ref_t;

typedef struct ar_admin_deps {
    ar_admin_dep_t *items; /* owned */
    size_t cnt;
    size_t cap;
    ar_admin_ref_t *refs; /* owned; every explicit deployment, sorted by state, then index */
    size_t refs_cnt;
} ar_admin_deps_t;

/**
 * Every deployment state in v->state whose credential is in v->cfg (explicit and implicit,
 * used or not; states left over from credentials a reload removed are skipped), ordered
 * by credential (config order), then model name. Free with ar_admin__deps_dispose.
 */
void ar_admin__deps_collect(const ar_admin_view_t *v, ar_admin_deps_t *out);
void ar_admin__deps_dispose(ar_admin_deps_t *d);
/** True when an implicit state has seen traffic (it is listed in /health then). */
bool ar_admin__dep_used(const ar_target_state_t *s);

typedef enum ar_admin_ban {
    AR_ADMIN_BAN_NONE = 0,
    AR_ADMIN_BAN_UNTIL,     /* *until_wall_ms is set */
    AR_ADMIN_BAN_PERMANENT, /* until an admin reset or a restart */
} ar_admin_ban_t;

/** The ban state of a credential state at v->now_ms; the end converted to wall time. */
ar_admin_ban_t ar_admin__ban(const ar_admin_view_t *v, const ar_target_state_t *cs,
                             int64_t *until_wall_ms);
/** The ban end as JSON: an RFC 3339 string, "permanent", or null. */
void ar_admin__put_ban_until(ar_admin_w_t *w, ar_admin_ban_t b, int64_t until_wall_ms);
/** Formats wall-clock ms as RFC 3339 UTC ("2025-01-31T12:00:00Z") into out[32]. */
void ar_admin__rfc3339(int64_t wall_ms, char out[32]);
/** The breaker state of a deployment state at v->now_ms. */
ar_breaker_state_t ar_admin__breaker(const ar_admin_view_t *v, const ar_target_state_t *s);
/** RPM and TPM limits of a deployment state (explicit: those of its first `models:` entry). */
void ar_admin__dep_limits(const ar_admin_view_t *v, const ar_admin_deps_t *deps,
                          const ar_admin_dep_t *d, int64_t *rpm, int64_t *tpm);
/**
 * The /health status rule: degraded while draining, when any credential is banned, or when
 * any listed deployment (explicit, or implicit and used) is not CLOSED.
 */
bool ar_admin__degraded(const ar_admin_view_t *v, const ar_admin_deps_t *deps);

#endif
