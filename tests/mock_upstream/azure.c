/*
 * azure.c: the Azure OpenAI wire format of the mock upstream. Azure answers in the OpenAI
 * format, so the answers are openai.c's; what is Azure's is around them: the key in an
 * `api-key` header, deployment URLs (/openai/deployments/{deployment}/...) that need an
 * `api-version` query parameter and take the model from the path, the v1 API
 * (/openai/v1/...) that takes it from the body, and Azure's error bodies (platform errors as
 * {"error":{"code","message"}}, the content filter's 400). Nothing here writes answers itself.
 */
#include <stdio.h>
#include <string.h>

#include "mock.h"

/* ---- errors ---- */

/* What Azure answers for a missing or wrong key. */
static const char denied_msg[] =
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
    "provide a valid key for an active subscription and use a correct regional API endpoint "
    "for your resource.";

static const char filtered_msg[] =
    "The response was filtered due to the prompt triggering Azure OpenAI's content "
    "management policy. Please modify your prompt and retry. To learn more about our content "
    "filtering policies please read our documentation: "
    "https://go.microsoft.com/fwlink/?linkid=2198766";

/* Platform errors carry a code string: some are names, the rest the status itself. */
static const char *platform_code(int status, char *tmp, size_t tmplen)
{
    switch (status) {
    case 404: return "DeploymentNotFound";
    case 500: return "InternalServerError";
    case 503: return "ServiceUnavailable";
    default: snprintf(tmp, tmplen, "%d", status); return tmp;
    }
}

static void platform_error(mock_req_t *req, int status, const char *code, const char *message)
{
    mock_buf_t *o = mock_resp_begin(req);
    mock_buf_adds(o, "{\"error\":{\"code\":");
    mock_buf_add_jstr(o, (mock_span_t){code, strlen(code)});
    mock_buf_adds(o, ",\"message\":");
    mock_buf_add_jstr(o, (mock_span_t){message, strlen(message)});
    mock_buf_adds(o, "}}");
    mock_resp_finish(req, status, "application/json");
}

/* The 400 of a prompt the content filter blocked, as Azure documents it (plus the
 * innererror real answers carry). */
static void content_filter_error(mock_req_t *req)
{
    static const char safe[] = "{\"filtered\":false,\"severity\":\"safe\"}";
    mock_buf_t *o = mock_resp_begin(req);
    mock_buf_adds(o, "{\"error\":{\"message\":");
    mock_buf_add_jstr(o, MOCK_LIT(filtered_msg));
    mock_buf_adds(o, ",\"type\":null,\"param\":\"prompt\",\"code\":\"content_filter\","
                     "\"status\":400,\"innererror\":{\"code\":\"ResponsibleAIPolicyViolation\","
                     "\"content_filter_result\":{\"hate\":");
    mock_buf_adds(o, safe);
    mock_buf_adds(o, ",\"self_harm\":");
    mock_buf_adds(o, safe);
    mock_buf_adds(o, ",\"sexual\":");
    mock_buf_adds(o, safe);
    mock_buf_adds(o, ",\"violence\":{\"filtered\":true,\"severity\":\"medium\"}}}}}");
    mock_resp_finish(req, 400, "application/json");
}

/*
 * A bad key is a platform 401 whatever the caller says. Errors with an OpenAI type come from
 * the model layer (bad JSON, missing fields) and keep OpenAI's shape, as on Azure. A bare
 * 400 (the status directive) is the content filter's; other statuses are platform errors.
 */
static void azure_error(mock_req_t *req, int status, const char *type, const char *code,
                        const char *message)
{
    char tmp[16];

    if (status == 401) {
        platform_error(req, 401, "401", denied_msg);
    } else if (type != NULL) {
        mock_openai_api.error(req, status, type, code, message);
    } else if (status == 400 && code == NULL) {
        content_filter_error(req);
    } else {
        platform_error(req, status, code != NULL ? code : platform_code(status, tmp, sizeof(tmp)),
                       message);
    }
}

const mock_api_t mock_azure_api = {
    .name = "azure",
    .auth_header = "api-key",
    .auth_prefix = "",
    .error = azure_error,
};

/* ---- deployment URLs ---- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* The value of name in a query string (not decoded), or an absent span. */
static mock_span_t query_param(mock_span_t query, const char *name)
{
    size_t nl = strlen(name);
    size_t i = 0;

    while (i < query.len) {
        size_t end = i;
        while (end < query.len && query.ptr[end] != '&') {
            end++;
        }
        if (end - i > nl && memcmp(query.ptr + i, name, nl) == 0 && query.ptr[i + nl] == '=') {
            return (mock_span_t){query.ptr + i + nl + 1, end - i - nl - 1};
        }
        i = end + 1;
    }
    return (mock_span_t){NULL, 0};
}

/*
 * For /openai/deployments/{deployment}/...: checks api-version, then makes the deployment
 * (percent-decoded) the request's "model", since the answer names it and Azure ignores a
 * model in the body of these URLs. @return 0, or -1 after having built an error response.
 */
static int deployment_prepare(mock_req_t *req)
{
    static const char prefix[] = "/openai/deployments/";
    mock_span_t v = query_param(req->query, "api-version");
    mock_buf_t *s = &req->conn->scratch;
    const char *d = req->path.ptr + sizeof(prefix) - 1;
    const char *end = memchr(d, '/', req->path.len - (sizeof(prefix) - 1));
    json_t *name;

    if (v.ptr == NULL || v.len == 0) {
        mock_request_error(req, 400, NULL, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for "
                           "all requests.");
        return -1;
    }
    s->len = 0;
    s->failed = 0;
    for (const char *p = d; p < end; p++) {
        if (*p == '%' && end - p >= 3 && hex_value(p[1]) >= 0 && hex_value(p[2]) >= 0) {
            mock_buf_addc(s, (char)(hex_value(p[1]) * 16 + hex_value(p[2])));
            p += 2;
        } else {
            mock_buf_addc(s, *p);
        }
    }
    name = s->failed || s->len == 0 ? NULL : json_stringn(s->data, s->len);
    if (name == NULL) {
        mock_request_error(req, 404, NULL, "DeploymentNotFound",
                           "The API deployment for this resource does not exist.");
        return -1;
    }
    json_object_set_new(req->json, "model", name);
    return 0;
}

int mock_azure_chat_prepare(mock_req_t *req, mock_span_t *text)
{
    return deployment_prepare(req) != 0 ? -1 : mock_openai_chat_prepare(req, text);
}

int mock_azure_completions_prepare(mock_req_t *req, mock_span_t *text)
{
    return deployment_prepare(req) != 0 ? -1 : mock_openai_completions_prepare(req, text);
}

int mock_azure_embeddings_prepare(mock_req_t *req, mock_span_t *text)
{
    return deployment_prepare(req) != 0 ? -1 : mock_openai_embeddings_prepare(req, text);
}
