/*
 * gemini_request.c: OpenAI -> Gemini requests, shared by gemini.c and vertex.c (see
 * gemini_xlate.h): chat requests into GenerateContentRequest bodies (contents, system
 * instruction, tools with their schemas cleaned, generationConfig) and embeddings requests
 * into embedContent / batchEmbedContents / predict bodies, built as a jansson tree once per
 * attempt. Answers are gemini_answer.c, stream events gemini_stream.c.
 */
#include <stdio.h>
#include <string.h>

#include "core/crypto.h"
#include "core/mem.h"
#include "providers/gemini_int.h"

/* Nesting allowed in a tool or response schema (with $ref resolution). */
#define MAX_SCHEMA_DEPTH 48

/* ---- small shared helpers ---- */

const char *ar_gem_model_segment(ar_pool_t *pool, const char *model)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!model)
        model = "";
    if (strncmp(model, "models/", 7) == 0)
        model += 7;
    size_t n = strlen(model);
    char *s = ar_pool_alloc(pool, n * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)model[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '@';
        if (plain) {
            s[o++] = (char)c;
        } else {
            s[o++] = '%';
            s[o++] = hex[c >> 4];
            s[o++] = hex[c & 15];
        }
    }
    s[o] = '\0';
    return s;
}
/* ---- request: messages -> contents ---- */

typedef struct req_ctx {
    ar_call_t *call;
    json_t *contents;     /* [Content] */
    json_t *system_parts; /* [Part] of systemInstruction */
    json_t *call_names;   /* tool_call id -> function name, from earlier assistant turns */
} req_ctx_t;

static void add_text(json_t *parts, const char *s, size_t n)
{
    /* Gemini refuses empty text parts ("empty text parameter") */
    if (n > 0)
        json_array_append_new(parts, json_pack("{s:s%}", "text", s, n));
}

/* The MIME type of a URL from its file extension; image/jpeg when unknown (an image_url
 * without a recognisable extension is most likely a photo). */
static const char *mime_of_url(const char *url)
{
    static const struct {
        const char *ext;
        const char *mime;
    } map[] = {
        {"png", "image/png"},   {"jpg", "image/jpeg"},        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},   {"webp", "image/webp"},       {"heic", "image/heic"},
        {"heif", "image/heif"}, {"pdf", "application/pdf"},   {"txt", "text/plain"},
        {"mp3", "audio/mp3"},   {"wav", "audio/wav"},         {"flac", "audio/flac"},
        {"ogg", "audio/ogg"},   {"mp4", "video/mp4"},         {"mov", "video/mov"},
        {"webm", "video/webm"}, {"csv", "text/csv"},          {"html", "text/html"},
        {"md", "text/md"},      {"json", "application/json"},
    };
    size_t end = strcspn(url, "?#");
    size_t dot = end;
    while (dot > 0 && url[dot - 1] != '.' && url[dot - 1] != '/')
        dot--;
    if (dot == 0 || url[dot - 1] != '.')
        return "image/jpeg";
    size_t elen = end - dot;
    for (size_t i = 0; i < AR_ARRAY_CNT(map); i++) {
        if (strlen(map[i].ext) == elen && strncasecmp(url + dot, map[i].ext, elen) == 0)
            return map[i].mime;
    }
    return "image/jpeg";
}

/*
 * A media reference as a part: a data: URL becomes inlineData (base64 as given; other
 * data is encoded), any other URL (https:, gs:, a File API URI) fileData with the MIME
 * type guessed from its extension. Providers do no I/O, so remote URLs are never fetched.
 */
static int media_part(const char *url, const char *default_mime, json_t *parts)
{
    if (strncmp(url, "data:", 5) != 0) {
        json_array_append_new(parts, json_pack("{s:{s:s, s:s}}", "fileData", "mimeType",
                                               mime_of_url(url), "fileUri", url));
        return 0;
    }
    const char *meta = url + 5;
    const char *comma = strchr(meta, ',');
    if (!comma)
        return AR_EINVAL;
    size_t mlen = strcspn(meta, ";,");
    bool b64 = false;
    for (const char *p = meta + mlen; p < comma; p++) {
        if (strncmp(p, ";base64", 7) == 0 && (p + 7 == comma || p[7] == ';'))
            b64 = true;
    }
    char mime[128];
    if (mlen == 0 || mlen >= sizeof(mime)) {
        snprintf(mime, sizeof(mime), "%s", default_mime);
    } else {
        memcpy(mime, meta, mlen);
        mime[mlen] = '\0';
    }
    const char *data = comma + 1;
    if (b64) {
        json_array_append_new(
            parts, json_pack("{s:{s:s, s:s}}", "inlineData", "mimeType", mime, "data", data));
        return 0;
    }
    ar_buf_t enc;
    ar_buf_init(&enc, (size_t)1 << 30);
    int rc = ar_base64_encode(ar_span_cstr(data), false, &enc);
    if (rc == 0)
        json_array_append_new(parts, json_pack("{s:{s:s, s:s%}}", "inlineData", "mimeType", mime,
                                               "data", enc.ptr ? enc.ptr : "", enc.len));
    ar_buf_dispose(&enc);
    return rc;
}

/* One OpenAI content part. */
static int content_part(const json_t *part, json_t *parts)
{
    const char *type = ar_json_str(part, "type");
    if (!json_is_object(part))
        return AR_EINVAL;
    if (!type || strcmp(type, "text") == 0) {
        json_t *t = json_object_get(part, "text");
        if (!json_is_string(t))
            return AR_EINVAL;
        add_text(parts, json_string_value(t), json_string_length(t));
        return 0;
    }
    if (strcmp(type, "image_url") == 0) {
        json_t *iu = json_object_get(part, "image_url");
        const char *url = json_is_string(iu) ? json_string_value(iu) : ar_json_str(iu, "url");
        return url ? media_part(url, "image/jpeg", parts) : AR_EINVAL;
    }
    if (strcmp(type, "input_audio") == 0) {
        json_t *ia = json_object_get(part, "input_audio");
        const char *data = ar_json_str(ia, "data");
        const char *fmt = ar_json_str(ia, "format");
        if (!data)
            return AR_EINVAL;
        char mime[64];
        snprintf(mime, sizeof(mime), "audio/%s", fmt ? fmt : "wav");
        json_array_append_new(
            parts, json_pack("{s:{s:s, s:s}}", "inlineData", "mimeType", mime, "data", data));
        return 0;
    }
    if (strcmp(type, "file") == 0) {
        json_t *f = json_object_get(part, "file");
        const char *data = ar_json_str(f, "file_data");
        const char *id = ar_json_str(f, "file_id");
        if (data)
            return media_part(data, "application/pdf", parts);
        if (id) {
            const char *name = ar_json_str(f, "filename");
            json_array_append_new(parts, json_pack("{s:{s:s, s:s}}", "fileData", "mimeType",
                                                   mime_of_url(name ? name : id), "fileUri", id));
            return 0;
        }
        return AR_EINVAL;
    }
    if (strcmp(type, "refusal") == 0) {
        json_t *t = json_object_get(part, "refusal");
        if (json_is_string(t))
            add_text(parts, json_string_value(t), json_string_length(t));
        return 0;
    }
    return AR_EINVAL;
}

/* An OpenAI content value (string, array of parts, or null) as parts. */
static int content_parts(const json_t *content, json_t *parts)
{
    if (!content || json_is_null(content))
        return 0;
    if (json_is_string(content)) {
        add_text(parts, json_string_value(content), json_string_length(content));
        return 0;
    }
    if (!json_is_array(content))
        return AR_EINVAL;
    size_t i;
    json_t *part;
    json_array_foreach (content, i, part) {
        int rc = content_part(part, parts);
        if (rc)
            return rc;
    }
    return 0;
}

/* Appends parts (taken) to the conversation; consecutive turns of one role are merged,
 * as Gemini wants parallel function responses in a single turn. */
static void add_turn(req_ctx_t *x, const char *role, json_t *parts)
{
    if (json_array_size(parts) == 0) {
        json_decref(parts);
        return;
    }
    size_t n = json_array_size(x->contents);
    json_t *last = n ? json_array_get(x->contents, n - 1) : NULL;
    if (last && ar_xl_str_is(ar_json_str(last, "role"), role)) {
        json_array_extend(json_object_get(last, "parts"), parts);
        json_decref(parts);
        return;
    }
    json_array_append_new(x->contents, json_pack("{s:s, s:o}", "role", role, "parts", parts));
}

/* OpenAI arguments (a JSON text) as Gemini args (an object); anything that is not a JSON
 * object is sent as {} rather than failing the attempt. */
static json_t *args_object(const json_t *arguments)
{
    if (json_is_object(arguments))
        return json_deep_copy(arguments);
    if (json_is_string(arguments)) {
        json_t *v =
            json_loadb(json_string_value(arguments), json_string_length(arguments), 0, NULL);
        if (json_is_object(v))
            return v;
        json_decref(v);
    }
    return json_object();
}

static int function_call_part(req_ctx_t *x, const char *id, const json_t *fn, json_t *parts)
{
    const char *name = ar_json_str(fn, "name");
    if (!name)
        return AR_EINVAL;
    json_t *part = json_pack("{s:{s:s, s:o}}", "functionCall", "name", name, "args",
                             args_object(json_object_get(fn, "arguments")));
    if (id) {
        json_object_set_new(x->call_names, id, json_string(name));
        const char *sig = strstr(id, THOUGHT_MARK);
        if (sig && sig[strlen(THOUGHT_MARK)])
            json_object_set_new(part, "thoughtSignature", json_string(sig + strlen(THOUGHT_MARK)));
    }
    json_array_append_new(parts, part);
    return 0;
}

static int assistant_turn(req_ctx_t *x, const json_t *m)
{
    json_t *parts = json_array();
    int rc = content_parts(json_object_get(m, "content"), parts);
    json_t *calls = json_object_get(m, "tool_calls");
    size_t i;
    json_t *tc;
    json_array_foreach (calls, i, tc) {
        if (rc)
            break;
        rc = function_call_part(x, ar_json_str(tc, "id"), json_object_get(tc, "function"), parts);
    }
    json_t *legacy = json_object_get(m, "function_call");
    if (!rc && json_is_object(legacy))
        rc = function_call_part(x, NULL, legacy, parts);
    if (rc) {
        json_decref(parts);
        return rc;
    }
    add_turn(x, "model", parts);
    return 0;
}

/* The response of a functionResponse part: a tool result whose text is a JSON object is
 * sent as that object; anything else (plain text, a JSON array or number) is wrapped as
 * {"content": value}, the value parsed when it is JSON. Text parts are joined first. */
static json_t *tool_response(const json_t *content)
{
    json_t *text = NULL;
    if (json_is_array(content)) {
        ar_buf_t b;
        ar_buf_init(&b, (size_t)1 << 30);
        int rc = ar_provider_content_text(content, "", &b);
        text = json_stringn(b.ptr && !rc ? b.ptr : "", rc ? 0 : b.len);
        ar_buf_dispose(&b);
    } else if (json_is_string(content)) {
        text = json_incref((json_t *)content);
    }
    json_t *v = NULL;
    if (json_is_string(text)) {
        v = json_loadb(json_string_value(text), json_string_length(text), JSON_DECODE_ANY, NULL);
        if (!v)
            v = json_incref(text);
    } else if (content && !json_is_null(content)) {
        v = json_incref((json_t *)content);
    } else {
        v = json_string("");
    }
    json_decref(text);
    if (json_is_object(v))
        return v;
    return json_pack("{s:o}", "content", v ? v : json_string(""));
}

static int tool_turn(req_ctx_t *x, const json_t *m, bool legacy)
{
    const char *name = NULL;
    const char *id = ar_json_str(m, "tool_call_id");
    if (id && !legacy)
        name = ar_json_str(x->call_names, id);
    if (!name)
        name = ar_json_str(m, "name");
    if (!name)
        return AR_EINVAL; /* Gemini needs the function's name to match the response */
    json_t *parts = json_array();
    json_array_append_new(parts,
                          json_pack("{s:{s:s, s:o}}", "functionResponse", "name", name, "response",
                                    tool_response(json_object_get(m, "content"))));
    add_turn(x, "user", parts);
    return 0;
}

static int translate_messages(req_ctx_t *x, const json_t *messages)
{
    size_t i;
    json_t *m;
    json_array_foreach (messages, i, m) {
        const char *role = ar_json_str(m, "role");
        int rc = 0;
        if (!role) {
            rc = AR_EINVAL;
        } else if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            rc = content_parts(json_object_get(m, "content"), x->system_parts);
        } else if (strcmp(role, "user") == 0) {
            json_t *parts = json_array();
            rc = content_parts(json_object_get(m, "content"), parts);
            if (rc)
                json_decref(parts);
            else
                add_turn(x, "user", parts);
        } else if (strcmp(role, "assistant") == 0) {
            rc = assistant_turn(x, m);
        } else if (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0) {
            rc = tool_turn(x, m, strcmp(role, "function") == 0);
        } else {
            rc = AR_EINVAL;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- request: JSON schema -> Gemini Schema ---- */

/*
 * Gemini's Schema is an OpenAPI 3.0 subset and rejects unknown keywords, so a schema is
 * rebuilt from an allow-list: type (a ["T","null"] list becomes T + nullable), format
 * (only those Gemini knows), title, description, nullable, enum, default, example,
 * properties, required, items, anyOf (oneOf is read as anyOf; a null branch becomes
 * nullable, and a single remaining branch is inlined), propertyOrdering and the numeric
 * and size bounds; const becomes a one-value enum; local $ref (#/$defs/X, #/definitions/X)
 * is inlined. Everything else ($schema, additionalProperties, strict, $id, patterns of
 * properties, conditionals, ...) is dropped.
 */
static json_t *clean_schema(const json_t *s, const json_t *root, int depth);

static bool kept_format(const char *type, const char *fmt)
{
    if (!type || !fmt)
        return false;
    if (strcmp(type, "string") == 0)
        return strcmp(fmt, "enum") == 0 || strcmp(fmt, "date-time") == 0;
    if (strcmp(type, "integer") == 0)
        return strcmp(fmt, "int32") == 0 || strcmp(fmt, "int64") == 0;
    if (strcmp(type, "number") == 0)
        return strcmp(fmt, "float") == 0 || strcmp(fmt, "double") == 0;
    return false;
}

static const json_t *resolve_ref(const char *ref, const json_t *root)
{
    static const char *const prefixes[] = {"#/$defs/", "#/definitions/"};
    for (size_t i = 0; i < AR_ARRAY_CNT(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(ref, prefixes[i], n) == 0) {
            json_t *defs = json_object_get(root, i == 0 ? "$defs" : "definitions");
            return json_object_get(defs, ref + n);
        }
    }
    return NULL;
}

static void clean_any_of(json_t *out, const json_t *branches, const json_t *root, int depth)
{
    json_t *kept = json_array();
    size_t i;
    json_t *b;
    json_array_foreach (branches, i, b) {
        if (ar_xl_str_is(ar_json_str(b, "type"), "null")) {
            json_object_set_new(out, "nullable", json_true());
            continue;
        }
        json_array_append_new(kept, clean_schema(b, root, depth + 1));
    }
    if (json_array_size(kept) == 1) {
        /* Optional[X]: X itself, nullable (Gemini wants anyOf alone in its schema) */
        json_object_update_missing(out, json_array_get(kept, 0));
        json_decref(kept);
    } else if (json_array_size(kept) > 1) {
        json_object_set_new(out, "anyOf", kept);
    } else {
        json_decref(kept);
    }
}

static json_t *clean_schema(const json_t *s, const json_t *root, int depth)
{
    static const char *const copied[] = {
        "title",    "description",   "nullable",      "enum",
        "default",  "example",       "minimum",       "maximum",
        "minItems", "maxItems",      "minLength",     "maxLength",
        "pattern",  "minProperties", "maxProperties", "propertyOrdering",
    };
    json_t *out = json_object();
    if (!json_is_object(s) || depth > MAX_SCHEMA_DEPTH)
        return out;
    const char *ref = ar_json_str(s, "$ref");
    if (ref) {
        const json_t *target = resolve_ref(ref, root);
        if (target) {
            json_decref(out);
            out = clean_schema(target, root, depth + 1);
        }
    }
    for (size_t i = 0; i < AR_ARRAY_CNT(copied); i++) {
        json_t *v = json_object_get(s, copied[i]);
        if (v)
            json_object_set(out, copied[i], v);
    }
    json_t *type = json_object_get(s, "type");
    const char *tname = NULL;
    if (json_is_string(type)) {
        tname = json_string_value(type);
    } else if (json_is_array(type)) {
        size_t i;
        json_t *t;
        json_array_foreach (type, i, t) {
            if (ar_xl_str_is(json_string_value(t), "null"))
                json_object_set_new(out, "nullable", json_true());
            else if (!tname && json_is_string(t))
                tname = json_string_value(t);
        }
    }
    if (tname && strcmp(tname, "null") != 0)
        json_object_set_new(out, "type", json_string(tname));
    else if (ar_xl_str_is(tname, "null"))
        json_object_set_new(out, "nullable", json_true());
    const char *fmt = ar_json_str(s, "format");
    if (kept_format(tname, fmt))
        json_object_set_new(out, "format", json_string(fmt));
    json_t *cst = json_object_get(s, "const");
    if (cst && !json_object_get(out, "enum"))
        json_object_set_new(out, "enum", json_pack("[O]", cst));
    json_t *props = json_object_get(s, "properties");
    if (json_is_object(props) && json_object_size(props) > 0) {
        json_t *p = json_object();
        const char *k;
        json_t *v;
        json_object_foreach (props, k, v)
            json_object_set_new(p, k, clean_schema(v, root, depth + 1));
        json_object_set_new(out, "properties", p);
        json_t *req = json_object_get(s, "required");
        if (json_is_array(req) && json_array_size(req) > 0)
            json_object_set(out, "required", req);
    }
    json_t *items = json_object_get(s, "items");
    if (json_is_array(items))
        items = json_array_get(items, 0); /* tuples: the first element's schema */
    if (json_is_object(items))
        json_object_set_new(out, "items", clean_schema(items, root, depth + 1));
    json_t *any = json_object_get(s, "anyOf");
    if (!json_is_array(any))
        any = json_object_get(s, "oneOf");
    if (json_is_array(any))
        clean_any_of(out, any, root, depth);
    return out;
}

/* ---- request: tools, tool_choice, generationConfig ---- */

static void add_declaration(json_t *decls, const json_t *fn)
{
    const char *name = ar_json_str(fn, "name");
    if (!name)
        return;
    json_t *d = json_pack("{s:s}", "name", name);
    json_t *desc = json_object_get(fn, "description");
    if (json_is_string(desc))
        json_object_set(d, "description", desc);
    json_t *params = json_object_get(fn, "parameters");
    if (json_is_object(params)) {
        json_t *clean = clean_schema(params, params, 0);
        /* an object without properties is refused ("should be non-empty for OBJECT type"):
         * a function without arguments simply has no parameters */
        if (json_object_get(clean, "properties"))
            json_object_set_new(d, "parameters", clean);
        else
            json_decref(clean);
    }
    json_array_append_new(decls, d);
}

static void translate_tools(const json_t *req, json_t *body)
{
    json_t *decls = json_array();
    size_t i;
    json_t *t;
    json_array_foreach (json_object_get(req, "tools"), i, t) {
        const char *type = ar_json_str(t, "type");
        if (!type || strcmp(type, "function") == 0)
            add_declaration(decls, json_object_get(t, "function"));
    }
    json_array_foreach (json_object_get(req, "functions"), i, t)
        add_declaration(decls, t);
    if (json_array_size(decls) == 0) {
        json_decref(decls);
        return;
    }
    json_object_set_new(body, "tools", json_pack("[{s:o}]", "functionDeclarations", decls));

    /* tool_choice (or the legacy function_call) -> functionCallingConfig */
    json_t *choice = json_object_get(req, "tool_choice");
    if (!choice)
        choice = json_object_get(req, "function_call");
    const char *mode = NULL;
    const char *only = NULL;
    if (json_is_string(choice)) {
        const char *c = json_string_value(choice);
        if (strcmp(c, "auto") == 0)
            mode = "AUTO";
        else if (strcmp(c, "none") == 0)
            mode = "NONE";
        else if (strcmp(c, "required") == 0 || strcmp(c, "any") == 0)
            mode = "ANY";
    } else if (json_is_object(choice)) {
        json_t *fn = json_object_get(choice, "function");
        only = ar_json_str(fn ? fn : choice, "name");
        mode = only ? "ANY" : NULL;
    }
    if (!mode)
        return;
    json_t *fcc = json_pack("{s:s}", "mode", mode);
    if (only)
        json_object_set_new(fcc, "allowedFunctionNames", json_pack("[s]", only));
    json_object_set_new(body, "toolConfig", json_pack("{s:o}", "functionCallingConfig", fcc));
}

static void copy_number(json_t *gc, const char *to, const json_t *req, const char *from)
{
    json_t *v = json_object_get(req, from);
    if (json_is_number(v))
        json_object_set(gc, to, v);
}

/* Gemini 3 and later take a thinkingLevel instead of a budget ("gemini-3-pro-preview",
 * "gemini-3.1-flash"); the names are those of Google's model ids. */
static bool takes_thinking_level(const char *model)
{
    if (!model || strncmp(model, "gemini-", 7) != 0)
        return false;
    int major = 0;
    for (const char *c = model + 7; *c >= '0' && *c <= '9' && major < 1000; c++)
        major = major * 10 + (*c - '0');
    return major >= 3;
}

/*
 * reasoning_effort -> thinkingConfig, the thoughts asked for so that they come back as
 * reasoning_content. Gemini 3: thinkingLevel "low" (minimal, low) or "high" (medium,
 * high), the two every Gemini 3 model takes. Gemini 2.5: a thinkingBudget; "minimal" stays
 * within every 2.5 model's range (Flash-Lite's least is 512); "none" leaves the model's
 * default, as 2.5 Pro refuses a budget of 0. A maxOutputTokens that the budget would eat
 * whole is raised by it (thoughts count as output).
 */
static int translate_thinking(ar_call_t *call, const json_t *req, json_t *gc)
{
    static const struct {
        const char *name;
        json_int_t budget;
    } levels[] = {{"none", 0}, {"minimal", 512}, {"low", 1024}, {"medium", 4096}, {"high", 16384}};
    json_t *effort = json_object_get(req, "reasoning_effort");
    if (!effort || json_is_null(effort))
        return 0;
    for (size_t i = 0; json_is_string(effort) && i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (!ar_xl_str_is(json_string_value(effort), levels[i].name))
            continue;
        json_int_t budget = levels[i].budget;
        if (budget == 0)
            return 0;
        if (takes_thinking_level(call->model)) {
            json_object_set_new(gc, "thinkingConfig",
                                json_pack("{s:s,s:b}", "thinkingLevel",
                                          budget <= 1024 ? "low" : "high", "includeThoughts", 1));
            return 0;
        }
        json_t *max = json_object_get(gc, "maxOutputTokens");
        if (json_is_integer(max) && json_integer_value(max) <= budget)
            json_object_set_new(gc, "maxOutputTokens",
                                json_integer(json_integer_value(max) + budget));
        json_object_set_new(gc, "thinkingConfig",
                            json_pack("{s:I,s:b}", "thinkingBudget", budget, "includeThoughts", 1));
        return 0;
    }
    call->error_detail = "'reasoning_effort' must be none, minimal, low, medium or high";
    return AR_EINVAL;
}

static int translate_generation(ar_call_t *call, const json_t *req, json_t *body)
{
    json_t *gc = json_object();
    copy_number(gc, "temperature", req, "temperature");
    copy_number(gc, "topP", req, "top_p");
    copy_number(gc, "topK", req, "top_k");
    copy_number(gc, "maxOutputTokens", req, "max_tokens");
    copy_number(gc, "maxOutputTokens", req, "max_completion_tokens"); /* the newer name wins */
    copy_number(gc, "presencePenalty", req, "presence_penalty");
    copy_number(gc, "frequencyPenalty", req, "frequency_penalty");
    copy_number(gc, "seed", req, "seed");
    json_t *n = json_object_get(req, "n");
    if (json_is_integer(n) && json_integer_value(n) > 1)
        json_object_set(gc, "candidateCount", n);
    json_t *stop = json_object_get(req, "stop");
    if (json_is_string(stop)) {
        json_object_set_new(gc, "stopSequences", json_pack("[O]", stop));
    } else if (json_is_array(stop) && json_array_size(stop) > 0) {
        json_object_set(gc, "stopSequences", stop);
    }
    json_t *rf = json_object_get(req, "response_format");
    const char *rft = ar_json_str(rf, "type");
    if (ar_xl_str_is(rft, "json_object") || ar_xl_str_is(rft, "json_schema")) {
        json_object_set_new(gc, "responseMimeType", json_string("application/json"));
        json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
        if (json_is_object(schema))
            json_object_set_new(gc, "responseSchema", clean_schema(schema, schema, 0));
    }
    int rc = translate_thinking(call, req, gc);
    if (!rc && json_object_size(gc) > 0)
        json_object_set_new(body, "generationConfig", gc);
    else
        json_decref(gc);
    return rc;
}

int ar_gem_chat_body(ar_call_t *call, ar_span_t *out)
{
    json_t *req = ar_call_json(call);
    if (!req)
        return AR_EINVAL; /* ar_call_json named the problem */
    json_t *messages = json_object_get(req, "messages");
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        call->error_detail = "'messages' must be a non-empty array";
        return AR_EINVAL;
    }
    req_ctx_t x = {call, json_array(), json_array(), json_object()};
    json_t *body = NULL;
    int rc = translate_messages(&x, messages);
    if (rc)
        goto out;
    body = json_object();
    if (json_array_size(x.contents) == 0 && json_array_size(x.system_parts) > 0) {
        /* only instructions: Gemini needs at least one turn, so they become the turn */
        add_turn(&x, "user", json_incref(x.system_parts));
    } else if (json_array_size(x.system_parts) > 0) {
        json_object_set_new(body, "systemInstruction", json_pack("{s:O}", "parts", x.system_parts));
    }
    if (json_array_size(x.contents) == 0) {
        rc = AR_EINVAL;
        goto out;
    }
    json_object_set(body, "contents", x.contents);
    translate_tools(req, body);
    rc = translate_generation(call, req, body);
    rc = rc ? rc : ar_provider_dump_body(call, body, out);
out:
    json_decref(body);
    json_decref(x.contents);
    json_decref(x.system_parts);
    json_decref(x.call_names);
    if (rc == AR_EINVAL && !call->error_detail)
        call->error_detail = "the request cannot be expressed in Gemini's format (a message "
                             "without content, an unknown role, or a tool result whose "
                             "function is not named by an earlier tool call)";
    return rc;
}

/* ---- request: embeddings ---- */

int ar_gem_embed_body(ar_call_t *call, ar_gem_embed_api_t api, const char *model_ref,
                      ar_span_t *out, bool *batch)
{
    json_t *req = ar_call_json(call);
    if (!req)
        return AR_EINVAL; /* ar_call_json named the problem */
    json_t *input = json_object_get(req, "input");
    json_t *texts = json_is_string(input) ? json_pack("[O]", input) : json_incref(input);
    json_t *dims = json_object_get(req, "dimensions");
    json_t *body = NULL;
    int rc = AR_EINVAL;
    size_t n = json_array_size(texts);
    *batch = false;
    call->error_detail = "'input' must be a non-empty string or a non-empty array of "
                         "non-empty strings (token ids cannot be sent to Gemini)";
    if (n == 0)
        goto out;
    size_t i;
    json_t *t;
    json_array_foreach (texts, i, t) {
        if (!json_is_string(t) || json_string_length(t) == 0)
            goto out; /* token-id input has no Gemini equivalent */
    }
    call->error_detail = NULL;
    if (!json_is_integer(dims))
        dims = NULL;
    if (api == AR_GEM_EMBED_PREDICT) {
        json_t *inst = json_array();
        json_array_foreach (texts, i, t)
            json_array_append_new(inst, json_pack("{s:O}", "content", t));
        body = json_pack("{s:o}", "instances", inst);
        if (dims)
            json_object_set_new(body, "parameters",
                                json_pack("{s:O}", "outputDimensionality", dims));
    } else if (n == 1) {
        body = json_pack("{s:s, s:{s:[{s:O}]}}", "model", model_ref, "content", "parts", "text",
                         json_array_get(texts, 0));
        if (dims)
            json_object_set(body, "outputDimensionality", dims);
    } else {
        json_t *reqs = json_array();
        json_array_foreach (texts, i, t) {
            json_t *r = json_pack("{s:s, s:{s:[{s:O}]}}", "model", model_ref, "content", "parts",
                                  "text", t);
            if (dims)
                json_object_set(r, "outputDimensionality", dims);
            json_array_append_new(reqs, r);
        }
        body = json_pack("{s:o}", "requests", reqs);
        *batch = true;
    }
    rc = ar_provider_dump_body(call, body, out);
out:
    json_decref(body);
    json_decref(texts);
    return rc;
}
