/* admin.c - the admin API's dispatcher: finds the route, authenticates the caller (admin API
 * token or session cookie with its CSRF token), checks the role, parses the query and the JSON
 * body, runs the handler and writes the audit entry of a successful change.
 *
 * Design notes
 * ------------
 * The checks run in a fixed order, and each refusal happens before anything is written:
 * route (404, 405) -> credentials (401; not looked at by the open routes, /login and
 * /openapi.json) -> role (403 forbidden) -> CSRF on a non-GET session
 * call (403 csrf) -> body size (413 too_large) -> JSON (400 bad_request) -> handler. The only
 * writes before the handler are bookkeeping the caller cannot choose: a session's last-seen
 * time, a token's last-used time, and (in the login route) failed-login counters.
 *
 * Every call runs on a pool thread without the GIL (server/worker_admin.c) and uses that
 * thread's own store handle, opened on first use and kept for the thread's life (pool threads
 * never exit). */
#include "admin/admin.h"
#include "admin/admin_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/users.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "store/store_audit.h"
#include "store/store_users.h"

pt_role
pt_admin_role_of(const char *name)
{
    if (name == NULL)
        return PT_ROLE_NONE;
    if (strcmp(name, "admin") == 0)
        return PT_ROLE_ADMIN;
    if (strcmp(name, "editor") == 0)
        return PT_ROLE_EDITOR;
    if (strcmp(name, "viewer") == 0)
        return PT_ROLE_VIEWER;
    return PT_ROLE_NONE;
}

const char *
pt_admin_role_name(pt_role role)
{
    switch (role) {
    case PT_ROLE_ADMIN:
        return "admin";
    case PT_ROLE_EDITOR:
        return "editor";
    case PT_ROLE_VIEWER:
        return "viewer";
    default:
        return "none";
    }
}

int
pt_admin_fail(pt_admin_reply *r, int status, const char *code, const char *field, const char *fmt,
              ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *err = json_pack("{s:s, s:s}", "code", code, "message", msg);
    if (err != NULL && field != NULL)
        json_object_set_new(err, "field", json_string(field));
    json_decref(r->body);
    r->body = err != NULL ? json_pack("{s:o}", "error", err) : NULL;
    free(r->raw);
    r->raw = NULL;
    r->status = status;
    return -status;
}

int
pt_admin_list_reply(pt_admin_call *c, pt_admin_reply *r, int rc, const char *member,
                    const void *items, size_t n, size_t size, json_t *(*to_json)(const void *item))
{
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        json_array_append_new(arr, to_json((const char *)items + i * size));
    r->body = json_pack("{s:o*}", member, arr);
    return r->body != NULL ? 0 : pt_admin_fail(r, 500, "internal", NULL, "out of memory");
}

int
pt_admin_fail_store(pt_admin_reply *r, pt_store *st, int rc, const char *field)
{
    const char *msg = pt_store_errmsg(st);
    switch (rc) {
    case PT_ENOTFOUND:
        return pt_admin_fail(r, 404, "not_found", field, "%s", msg);
    case PT_EEXIST:
        return pt_admin_fail(r, 409, "conflict", field, "%s", msg);
    case PT_EINVAL:
        return pt_admin_fail(r, 400, "bad_request", field, "%s", msg);
    case PT_ETOOBIG:
        return pt_admin_fail(r, 413, "too_large", field, "%s", msg);
    case PT_EUNAVAIL:
        /* The store is down or its write lock stayed busy: nothing was written. One line
         * (libpq's messages may hold a hint on a second). */
        return pt_admin_fail(r, 503, "store_unavailable", NULL,
                             "the metadata store is unavailable, nothing was changed: %.*s",
                             (int)strcspn(msg, "\n"), msg);
    default:
        pt_log_error("admin: %s", msg);
        return pt_admin_fail(r, 500, "internal", NULL, "%s", pt_strerror(rc));
    }
}

const char *
pt_admin_body_str(pt_admin_call *c, pt_admin_reply *r, const char *field, int required)
{
    json_t *v = json_is_object(c->body) ? json_object_get(c->body, field) : NULL;
    if (v == NULL || json_is_null(v)) {
        if (required) {
            if (!json_is_object(c->body))
                pt_admin_fail(r, 400, "bad_request", NULL, "the body must be a JSON object");
            else
                pt_admin_fail(r, 400, "bad_request", field, "'%s' is required", field);
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        pt_admin_fail(r, 400, "bad_request", field, "'%s' must be a string", field);
        return NULL;
    }
    return json_string_value(v);
}

const char *
pt_admin_query_str(const pt_admin_call *c, const char *name)
{
    return json_string_value(json_object_get(c->query, name));
}

int
pt_admin_query_long(json_t *query, const char *name, long long min, long long max, long long *out,
                    pt_admin_reply *r)
{
    const char *s = json_string_value(json_object_get(query, name));
    char *end;
    if (s == NULL)
        return 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max)
        return pt_admin_fail(r, 400, "bad_request", name,
                             "%s must be a whole number from %lld to %lld", name, min, max);
    *out = v;
    return 0;
}

/* ---- Parsing the request ----------------------------------------------------------------- */

/* Percent-decodes s[0..n) (and '+' as a space when plus) into a new string; NULL when out of
 * memory. Caller frees. */
static char *
decode(const char *s, size_t n, int plus)
{
    char *out = malloc(n + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = pt_hex_digit((unsigned char)s[i + 1])) >= 0 &&
            (lo = pt_hex_digit((unsigned char)s[i + 2])) >= 0) {
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else if (plus && s[i] == '+') {
            *o++ = ' ';
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* The query string as an object of strings (last value wins). NULL when out of memory. */
static json_t *
parse_query(const char *q, size_t n)
{
    json_t *obj = json_object();
    size_t i = 0;
    while (obj != NULL && i < n) {
        size_t end = i;
        while (end < n && q[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && q[eq] != '=')
            eq++;
        if (end > i) {
            char *k = decode(q + i, eq - i, 1);
            char *v = eq < end ? decode(q + eq + 1, end - eq - 1, 1) : strdup("");
            if (k == NULL || v == NULL) {
                json_decref(obj);
                obj = NULL;
            } else {
                json_object_set_new(obj, k, json_string(v));
            }
            free(k);
            free(v);
        }
        i = end + 1;
    }
    return obj;
}

/* The value of header `name` (lower case), or NULL. Borrowed from req. */
static const pt_str *
find_header(const pt_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name.n == n && memcmp(req->headers[i].name.p, name, n) == 0)
            return &req->headers[i].value;
    return NULL;
}

/* The session cookie's value from the Cookie headers into out (outsz bytes); 0 when found. */
static int
session_cookie(const pt_request *req, char *out, size_t outsz)
{
    const size_t cn = sizeof(PT_ADMIN_COOKIE) - 1;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (req->headers[i].name.n != 6 || memcmp(req->headers[i].name.p, "cookie", 6) != 0)
            continue;
        const char *p = req->headers[i].value.p, *end = p + req->headers[i].value.n;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *e = p;
            while (e < end && *e != ';')
                e++;
            if ((size_t)(e - p) > cn && memcmp(p, PT_ADMIN_COOKIE "=", cn + 1) == 0 &&
                (size_t)(e - p) - cn - 1 < outsz) {
                size_t vn = (size_t)(e - p) - cn - 1;
                memcpy(out, p + cn + 1, vn);
                out[vn] = '\0';
                return 0;
            }
            p = e;
        }
    }
    return -1;
}

/* ---- Routing ----------------------------------------------------------------------------- */

/* Matches path (below the prefix, n bytes) against pattern; fills params (decoded, caller
 * frees each) and returns 1 on a match, 0 otherwise, -1 when out of memory. */
static int
match(const char *pattern, const char *path, size_t n, char **params, int *nparams)
{
    const char *p = pattern, *s = path, *end = path + n;
    int np = 0;
    while (*p != '\0' && s < end) {
        if (*p != '/' || *s != '/')
            goto no;
        p++;
        s++;
        const char *pe = strchr(p, '/');
        size_t plen = pe != NULL ? (size_t)(pe - p) : strlen(p);
        const char *se = memchr(s, '/', (size_t)(end - s));
        size_t slen = se != NULL ? (size_t)(se - s) : (size_t)(end - s);
        if (plen > 0 && p[0] == '{') {
            if (slen == 0 || np == 4)
                goto no;
            if ((params[np] = decode(s, slen, 0)) == NULL)
                goto oom;
            np++;
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            goto no;
        }
        p += plen;
        s += slen;
    }
    if (*p != '\0' || s != end)
        goto no;
    *nparams = np;
    return 1;
oom:
    while (np > 0)
        free(params[--np]);
    return -1;
no:
    while (np > 0)
        free(params[--np]);
    return 0;
}

/* ---- The thread's store ------------------------------------------------------------------ */

static _Thread_local pt_store *thread_store;

static pt_store *
store_for_thread(const char *datadir)
{
    char err[256];
    if (thread_store == NULL && pt_store_open(datadir, &thread_store, err, sizeof err) != 0) {
        pt_log_error("admin: cannot open the store: %s", err);
        thread_store = NULL;
    }
    return thread_store;
}

void
pt_admin_thread_close(void)
{
    pt_store_close(thread_store);
    thread_store = NULL;
}

/* ---- Authentication ---------------------------------------------------------------------- */

/* Who is calling. Strings owned. */
typedef struct caller {
    char *user;
    char *actor;
    char *session_hash;
    char *csrf;
    pt_role role;
} caller;

static void
caller_clear(caller *who)
{
    free(who->user);
    free(who->actor);
    free(who->session_hash);
    free(who->csrf);
}

/* Fills who from the request's credentials. Returns 0 (who->role PT_ROLE_NONE when none were
 * given), or a refusal already set in r. */
static int
authenticate(const pt_admin_env *env, pt_store *st, const pt_request *req, caller *who,
             pt_admin_reply *r)
{
    const pt_str *auth = find_header(req, "authorization");
    char value[256];
    int64_t now = (int64_t)time(NULL);

    if (auth != NULL) {
        pt_admin_token t;
        char digest[PT_USERS_DIGEST_LEN];
        if (auth->n < 7 || strncasecmp(auth->p, "Bearer ", 7) != 0 ||
            !pt_users_token_well_formed(auth->p + 7, auth->n - 7))
            return pt_admin_fail(r, 401, "unauthorized", NULL,
                                 "Authorization must be 'Bearer <admin API token>'");
        pt_users_digest(auth->p + 7, auth->n - 7, digest);
        int rc = pt_store_admin_token_find(st, digest, now, &t);
        if (rc == PT_ENOTFOUND)
            return pt_admin_fail(r, 401, "unauthorized", NULL, "%s", pt_store_errmsg(st));
        if (rc != 0)
            return pt_admin_fail_store(r, st, rc, NULL);
        who->user = t.user;
        t.user = NULL;
        who->role = pt_admin_role_of(t.role);
        size_t an = strlen(t.name) + 7;
        who->actor = malloc(an);
        if (who->actor != NULL)
            snprintf(who->actor, an, "token:%s", t.name);
        pt_admin_token_clear(&t);
        return who->actor != NULL ? 0 : pt_admin_fail(r, 500, "internal", NULL, "out of memory");
    }
    if (session_cookie(req, value, sizeof value) == 0) {
        pt_session s;
        char digest[PT_USERS_DIGEST_LEN];
        pt_users_digest(value, strlen(value), digest);
        int rc = pt_store_session_touch(st, digest, now, env->session_idle, &s);
        if (rc == PT_ENOTFOUND)
            return pt_admin_fail(r, 401, "unauthorized", NULL, "%s; log in again",
                                 pt_store_errmsg(st));
        if (rc != 0)
            return pt_admin_fail_store(r, st, rc, NULL);
        who->user = s.user;
        who->actor = strdup(s.user);
        who->csrf = s.csrf;
        who->role = pt_admin_role_of(s.role);
        who->session_hash = strdup(digest);
        s.user = s.csrf = NULL;
        pt_session_clear(&s);
        if (who->actor == NULL || who->session_hash == NULL)
            return pt_admin_fail(r, 500, "internal", NULL, "out of memory");
    }
    return 0;
}

/* ---- The reply --------------------------------------------------------------------------- */

static void
to_response(pt_admin_reply *r, const pt_request *req, pt_response *resp)
{
    resp->status = r->status != 0 ? r->status : 200;
    if (r->body != NULL) {
        char *text = json_dumps(r->body, JSON_COMPACT | JSON_ENCODE_ANY);
        resp->content_type = "application/json";
        if (text == NULL || pt_buf_puts(&resp->body, text) != 0 || pt_buf_putc(&resp->body, '\n'))
            pt_response_error(resp, 500, "out of memory", req->id);
        free(text);
    } else if (r->raw != NULL) {
        resp->content_type = r->content_type != NULL ? r->content_type : "text/plain";
        if (pt_buf_append(&resp->body, r->raw, r->raw_len) != 0)
            pt_response_error(resp, 500, "out of memory", req->id);
    } else if (resp->status != 204) {
        resp->content_type = "application/json";
        pt_buf_puts(&resp->body, "{}\n");
    }
    if (r->set_cookie != NULL)
        pt_response_add_header(resp, "set-cookie", 10, r->set_cookie, strlen(r->set_cookie));
    if (r->retry_after > 0) {
        char v[24];
        int n = snprintf(v, sizeof v, "%lld", (long long)r->retry_after);
        pt_response_add_header(resp, "retry-after", 11, v, (size_t)n);
    }
    pt_response_add_header(resp, "cache-control", 13, "no-store", 8);
}

static void
reply_clear(pt_admin_reply *r)
{
    json_decref(r->body);
    free(r->raw);
    free(r->set_cookie);
}

void
pt_admin_write_audit(pt_store *st, const pt_admin_call *c, const pt_admin_route *route,
                     const char *cmd)
{
    char action[160];
    if (cmd != NULL)
        snprintf(action, sizeof action, "%s", cmd);
    else
        snprintf(action, sizeof action, "%s %s", route->method, route->pattern);
    char *detail = json_dumps(c->audit, JSON_COMPACT | JSON_SORT_KEYS);
    /* The object: the route's first parameter, else the name the change is about. */
    const char *object = c->nparams > 0 ? c->params[0] : NULL;
    static const char *const keys[] = {"user", "script", "endpoint", "name"};
    for (size_t i = 0; object == NULL && i < sizeof keys / sizeof keys[0]; i++)
        object = json_string_value(json_object_get(c->audit, keys[i]));
    int rc = pt_store_audit_add(st, c->actor, action, object != NULL ? object : "",
                                detail != NULL ? detail : "{}");
    if (rc != 0)
        pt_log_error("admin: cannot write the audit entry of %s by %s: %s", action, c->actor,
                     pt_store_errmsg(st));
    free(detail);
}

const pt_admin_route *
pt_admin_find_route(const char *method, const char *path, size_t n, pt_admin_call *c,
                    pt_admin_reply *r)
{
    char *params[4];
    char allow[64] = "";
    for (size_t t = 0; pt_admin_tables[t] != NULL; t++) {
        for (const pt_admin_route *rt = pt_admin_tables[t]; rt->method != NULL; rt++) {
            int np = 0;
            int m = match(rt->pattern, path, n, params, &np);
            if (m < 0) {
                pt_admin_fail(r, 500, "internal", NULL, "out of memory");
                return NULL;
            }
            if (m == 0)
                continue;
            if (strcmp(rt->method, method) == 0 ||
                (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0)) {
                for (int i = 0; i < np; i++)
                    c->params[i] = params[i];
                c->nparams = np;
                return rt;
            }
            while (np > 0)
                free(params[--np]);
            if (strlen(allow) + strlen(rt->method) + 3 < sizeof allow)
                snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                         allow[0] ? ", " : "", rt->method);
        }
    }
    if (allow[0] != '\0')
        pt_admin_fail(r, 405, "method_not_allowed", NULL, "%s is not allowed here (allowed: %s)",
                      method, allow);
    else
        pt_admin_fail(r, 404, "not_found", NULL, "no admin API route at this path");
    return NULL;
}

/* The checks and the handler (see the design notes); fills r. */
static void
dispatch(const pt_admin_env *env, const pt_request *req, pt_admin_call *c, caller *who,
         pt_admin_reply *r)
{
    const size_t pn = sizeof(PT_ADMIN_PREFIX) - 1;
    const pt_admin_route *route;
    pt_store *st;

    if (req->path.n < pn || memcmp(req->path.p, PT_ADMIN_PREFIX, pn) != 0 ||
        (req->path.n > pn && req->path.p[pn] != '/')) {
        pt_admin_fail(r, 404, "not_found", NULL, "not found");
        return;
    }
    route = pt_admin_find_route(c->method, req->path.p + pn, req->path.n - pn, c, r);
    if (route == NULL)
        return;
    st = store_for_thread(env->datadir);
    if (st == NULL) {
        pt_admin_fail(r, 503, "store_unavailable", NULL,
                      "the metadata store is unavailable (cannot be opened), nothing was changed");
        return;
    }
    c->store = st;
    /* Open routes (login, the OpenAPI document) ignore credentials: a browser still holding
     * an expired session's cookie must be able to log in again. */
    if (route->min_role != PT_ROLE_NONE && authenticate(env, st, req, who, r) != 0)
        return;
    c->user = who->user;
    c->actor = who->actor;
    c->role = who->role;
    c->session_hash = who->session_hash;
    c->csrf = who->csrf;
    if (route->min_role != PT_ROLE_NONE) {
        if (who->role == PT_ROLE_NONE) {
            pt_admin_fail(r, 401, "unauthorized", NULL,
                          "log in (POST %s/login) or send an admin API token", PT_ADMIN_PREFIX);
            return;
        }
        if (who->role < route->min_role) {
            pt_admin_fail(r, 403, "forbidden", NULL, "%s needs the %s role; %s is %s",
                          route->pattern, pt_admin_role_name(route->min_role), who->user,
                          pt_admin_role_name(who->role));
            return;
        }
    }
    if (who->session_hash != NULL && strcmp(c->method, "GET") != 0 &&
        strcmp(c->method, "HEAD") != 0) {
        const pt_str *h = find_header(req, "x-csrf-token");
        char token[PT_USERS_RANDOM_LEN + 1];
        if (h == NULL || h->n >= sizeof token) {
            pt_admin_fail(r, 403, "csrf", "X-CSRF-Token",
                          "a session needs the X-CSRF-Token header on every change");
            return;
        }
        memcpy(token, h->p, h->n);
        token[h->n] = '\0';
        if (!pt_users_equal(token, who->csrf)) {
            pt_admin_fail(r, 403, "csrf", "X-CSRF-Token", "wrong X-CSRF-Token");
            return;
        }
    }
    if (req->body.n > PT_ADMIN_BODY_MAX) {
        pt_admin_fail(r, 413, "too_large", NULL, "the body is larger than %u bytes",
                      PT_ADMIN_BODY_MAX);
        return;
    }
    if (req->body.n > 0) {
        json_error_t jerr;
        c->body =
            json_loadb(req->body.p, req->body.n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (c->body == NULL) {
            /* Without jansson's "near '...'": the body may hold a secret's value. */
            char *near = strstr(jerr.text, " near ");
            if (near != NULL)
                *near = '\0';
            pt_admin_fail(r, 400, "bad_request", NULL,
                          "malformed JSON body: %s (line %d, column %d)", jerr.text, jerr.line,
                          jerr.column);
            return;
        }
    }
    if (route->fn(c, r) == 0 && (r->status == 0 || r->status < 400) && c->audit != NULL)
        pt_admin_write_audit(st, c, route, NULL);
}

void
pt_admin_handle(const pt_admin_env *env, const pt_request *req, pt_response *resp)
{
    pt_admin_call c;
    pt_admin_reply r;
    caller who;
    char method[16];

    memset(&c, 0, sizeof c);
    memset(&r, 0, sizeof r);
    memset(&who, 0, sizeof who);
    snprintf(method, sizeof method, "%.*s", (int)req->method.n, req->method.p);
    c.method = method;
    c.path = req->path.p;
    c.datadir = env->datadir;
    c.env = env;
    c.remote_addr = req->remote_addr.p != NULL ? req->remote_addr.p : "";
    c.query = parse_query(req->query.p, req->query.n);
    if (c.query == NULL)
        pt_admin_fail(&r, 500, "internal", NULL, "out of memory");
    else
        dispatch(env, req, &c, &who, &r);
    to_response(&r, req, resp);
    if (strcmp(method, "HEAD") == 0)
        pt_buf_reset(&resp->body);
    reply_clear(&r);
    for (int i = 0; i < c.nparams; i++)
        free((char *)c.params[i]);
    json_decref(c.query);
    json_decref(c.body);
    json_decref(c.audit);
    caller_clear(&who);
}
