/* admin_tests.c - test runs over the admin API: an endpoint's current script, or an unsaved
 * draft, run through the worker's own runtime (py.h: pt_py_test_run) without publishing. */
#include "admin/admin_tests.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "py/py.h"
#include "store/store.h"

#define DRAFT_MAX (16u << 20) /* bytes, as `portico script add` allows */
#define TEST_HEADERS_MAX PT_REQUEST_MAX_HEADERS

static double test_timeout = 30;

void
pt_admin_tests_set_timeout(double seconds)
{
    test_timeout = seconds;
}

/* A JSON list of the lines of text[0..n) (each ending in '\n', the last maybe not). */
static json_t *
lines_json(const char *text, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n;) {
        const char *nl = memchr(text + i, '\n', n - i);
        size_t len = nl != NULL ? (size_t)(nl - (text + i)) : n - i;
        json_t *s = json_stringn(text + i, len);
        if (s == NULL)
            s = json_string("(a line that is not UTF-8)");
        if (json_array_append_new(a, s) != 0) {
            json_decref(a);
            return NULL;
        }
        i += len + 1;
    }
    return a;
}

json_t *
pt_admin_test_result(const pt_response *resp, double duration_ms)
{
    json_t *headers = json_object(), *body = NULL, *o = NULL;
    int b64 = 0;

    if (headers == NULL)
        return NULL;
    if (resp->content_type != NULL)
        json_object_set_new(headers, "content-type", json_string(resp->content_type));
    for (size_t off = 0; off < resp->headers.len;) {
        const char *name = resp->headers.data + off;
        size_t nlen = strlen(name);
        const char *value = name + nlen + 1;
        size_t vlen = strlen(value);
        char lname[256];
        snprintf(lname, sizeof(lname), "%s", name);
        for (char *p = lname; *p != '\0'; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        json_t *v = json_stringn(value, vlen);
        json_object_set_new(headers, lname, v != NULL ? v : json_string(""));
        off += nlen + vlen + 2;
    }
    const char *data = resp->body.data != NULL ? resp->body.data : "";
    body = json_stringn(data, resp->body.len);
    if (body == NULL) { /* not UTF-8 */
        size_t cap = sodium_base64_ENCODED_LEN(resp->body.len, sodium_base64_VARIANT_ORIGINAL);
        char *enc = malloc(cap);
        if (enc != NULL) {
            sodium_bin2base64(enc, cap, (const unsigned char *)data, resp->body.len,
                              sodium_base64_VARIANT_ORIGINAL);
            body = json_string(enc);
            free(enc);
            b64 = 1;
        }
    }
    o = json_pack("{s:i, s:o, s:o*, s:b, s:o*, s:o, s:f}", "status", resp->status, "headers",
                  headers, "body", body, "body_base64", b64, "printed",
                  lines_json(resp->printed.data, resp->printed.len), "traceback",
                  resp->traceback.len > 0 ? json_stringn(resp->traceback.data, resp->traceback.len)
                                          : json_null(),
                  "duration_ms", duration_ms);
    return o;
}

/* The request of a test run from the JSON body {"method", "path", "query", "headers", "body",
 * "body_base64"}: fills r (pt_request_clear) or answers 400 in rep. pattern, default_path and
 * default_method come from the endpoint (NULL for a draft). */
static int
request_from_body(pt_admin_call *c, pt_admin_reply *rep, const char *pattern,
                  const char *default_path, const char *default_method, pt_request *r)
{
    json_t *b = c->body, *v;
    const char *names[TEST_HEADERS_MAX], *values[TEST_HEADERS_MAX];
    pt_request_parts p = {.pattern = pattern, .path = default_path, .method = default_method};
    pt_buf query;
    unsigned char *body = NULL;
    char err[256];
    int rc;

    if (b != NULL && !json_is_object(b))
        return pt_admin_fail(rep, 400, "bad_request", NULL, "the body must be a JSON object");
    if ((v = json_object_get(b, "method")) != NULL) {
        if (!json_is_string(v))
            return pt_admin_fail(rep, 400, "bad_request", "method", "method must be a string");
        p.method = json_string_value(v);
    }
    if ((v = json_object_get(b, "path")) != NULL) {
        if (!json_is_string(v))
            return pt_admin_fail(rep, 400, "bad_request", "path", "path must be a string");
        p.path = json_string_value(v);
    }
    pt_buf_init(&query, 64 * 1024);
    if ((v = json_object_get(b, "query")) != NULL && json_is_string(v)) {
        p.query = json_string_value(v);
    } else if (v != NULL && json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach(v, key, val)
        {
            if (!json_is_string(val)) {
                pt_buf_free(&query);
                return pt_admin_fail(rep, 400, "bad_request", "query",
                                     "query values must be strings");
            }
            pt_buf_printf(&query, "%s%s=%s", query.len > 0 ? "&" : "", key, json_string_value(val));
        }
        p.query = pt_buf_cstr(&query);
    } else if (v != NULL) {
        pt_buf_free(&query);
        return pt_admin_fail(rep, 400, "bad_request", "query",
                             "query must be a string (a=1&b=2) or an object");
    }
    if ((v = json_object_get(b, "headers")) != NULL) {
        const char *key;
        json_t *val;
        if (!json_is_object(v) || json_object_size(v) > TEST_HEADERS_MAX) {
            pt_buf_free(&query);
            return pt_admin_fail(rep, 400, "bad_request", "headers",
                                 "headers must be an object of at most %d strings",
                                 TEST_HEADERS_MAX);
        }
        json_object_foreach(v, key, val)
        {
            if (!json_is_string(val)) {
                pt_buf_free(&query);
                return pt_admin_fail(rep, 400, "bad_request", "headers",
                                     "header values must be strings");
            }
            names[p.nheaders] = key;
            values[p.nheaders++] = json_string_value(val);
        }
        p.header_names = names;
        p.header_values = values;
    }
    if ((v = json_object_get(b, "body")) != NULL && !json_is_null(v)) {
        if (!json_is_string(v)) {
            pt_buf_free(&query);
            return pt_admin_fail(rep, 400, "bad_request", "body", "body must be a string");
        }
        p.body = json_string_value(v);
        p.body_len = json_string_length(v);
        if (json_is_true(json_object_get(b, "body_base64"))) {
            size_t cap = p.body_len, len = 0;
            body = malloc(cap + 1);
            if (body == NULL || sodium_base642bin(body, cap, p.body, p.body_len, NULL, &len, NULL,
                                                  sodium_base64_VARIANT_ORIGINAL) != 0) {
                free(body);
                pt_buf_free(&query);
                return pt_admin_fail(rep, 400, "bad_request", "body",
                                     "body_base64 is set but body is not base64");
            }
            p.body = (const char *)body;
            p.body_len = len;
        }
    }
    rc = pt_request_from_parts(r, &p, err, sizeof(err));
    free(body);
    pt_buf_free(&query);
    if (rc != 0)
        return pt_admin_fail(rep, rc == PT_EINVAL ? 400 : 500,
                             rc == PT_EINVAL ? "bad_request" : "internal",
                             strstr(err, "method") != NULL ? "method" : "path", "%s", err);
    return 0;
}

/* Runs script (borrowed) for r and answers with the result. */
static int
run_and_reply(pt_admin_reply *rep, const pt_script_ref *ref, int draft, const pt_request *req)
{
    pt_response resp;
    pt_response_init(&resp, 0);
    double ms = pt_py_test_run(ref, draft, req, test_timeout, &resp);
    rep->status = 200;
    rep->body = pt_admin_test_result(&resp, ms);
    pt_response_free(&resp);
    if (rep->body == NULL)
        return pt_admin_fail(rep, 500, "internal", NULL, "out of memory");
    return 0;
}

/* POST /endpoints/{name}/test */
static int
test_endpoint(pt_admin_call *c, pt_admin_reply *rep)
{
    pt_endpoint ep = {0};
    pt_script *s = NULL;
    pt_request req = {0};
    char method[16] = "GET";
    int rc;

    if (pt_store_endpoint_get(c->store, c->params[0], &ep) != 0)
        return pt_admin_fail(rep, 404, "not_found", "name", "no endpoint named '%s'", c->params[0]);
    if (pt_store_script_get(c->store, ep.script, 0, &s) != 0) {
        rc = pt_admin_fail(rep, 404, "not_found", "script", "the endpoint's script '%s' is gone",
                           ep.script);
        goto done;
    }
    if (!(ep.methods & PT_M_GET)) /* the first method the endpoint allows */
        for (unsigned bit = 1; bit <= PT_M_OPTIONS; bit <<= 1)
            if (ep.methods & bit) {
                pt_http_format_methods(bit, method, sizeof(method));
                break;
            }
    rc = request_from_body(c, rep, ep.path, strchr(ep.path, '{') == NULL ? ep.path : NULL, method,
                           &req);
    if (rc != 0)
        goto done;
    pt_script_ref ref = {s->name, s->version, s->source, s->source_len, s->id};
    rc = run_and_reply(rep, &ref, 0, &req);
done:
    pt_request_clear(&req);
    pt_script_free(s);
    pt_endpoint_clear(&ep);
    return rc;
}

/* POST /scripts/test {"source", "name"?, ...}: an unsaved draft. */
static int
test_draft(pt_admin_call *c, pt_admin_reply *rep)
{
    json_t *src = json_object_get(c->body, "source"), *nm = json_object_get(c->body, "name");
    pt_request req = {0};
    int rc;

    if (!json_is_string(src))
        return pt_admin_fail(rep, 400, "bad_request", "source",
                             "source (the script's text) is required");
    if (json_string_length(src) > DRAFT_MAX)
        return pt_admin_fail(rep, 413, "too_large", "source", "the script is larger than %u MiB",
                             DRAFT_MAX >> 20);
    if (nm != NULL && (!json_is_string(nm) || json_string_length(nm) > 200))
        return pt_admin_fail(rep, 400, "bad_request", "name", "name must be a short string");
    rc = request_from_body(c, rep, NULL, "/", "GET", &req);
    if (rc != 0)
        return rc;
    /* A draft of a stored script runs as that script (pq.INTERFACE_ID, its state). */
    pt_script *s = NULL;
    const char *name = nm != NULL ? json_string_value(nm) : "draft";
    if (nm != NULL)
        pt_store_script_get(c->store, name, 0, &s);
    pt_script_ref ref = {name, 0, json_string_value(src), json_string_length(src),
                         s != NULL ? s->id : 0};
    rc = run_and_reply(rep, &ref, 1, &req);
    pt_script_free(s);
    pt_request_clear(&req);
    return rc;
}

const pt_admin_route pt_admin_tests_routes[] = {
    {"POST", "/endpoints/{name}/test", PT_ROLE_EDITOR, test_endpoint,
     "Run an endpoint's current script with a given request, without publishing anything"},
    {"POST", "/scripts/test", PT_ROLE_EDITOR, test_draft,
     "Run an unsaved draft script with a given request"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};
