/* console.c - serves the web console's embedded assets on the admin listener (console.h). */
#include "server/console.h"

#include <stdio.h>
#include <string.h>

typedef struct console_asset {
    const char *name;  /* "index.html", "app.js", "cm/codemirror.js" */
    const char *ctype; /* Content-Type */
    const char *etag;  /* strong, quoted */
    const unsigned char *data;
    size_t len;
} console_asset;

#include "console_assets.inc"

#define CSP                                                                                        \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
#define ASSET_DIR "a/" CONSOLE_BUILD "/"

static int
path_is(h2o_iovec_t p, const char *s)
{
    return p.len == strlen(s) && memcmp(p.base, s, p.len) == 0;
}

static void
header(h2o_req_t *req, const char *name, const char *value)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value,
                          strlen(value));
}

/* Sends status with the security headers and body (borrowed: copied by h2o_send_inline). */
static int
answer(h2o_req_t *req, int status, const char *reason, const char *ctype, const void *body,
       size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    header(req, "content-security-policy", CSP);
    header(req, "x-content-type-options", "nosniff");
    header(req, "referrer-policy", "no-referrer");
    header(req, "x-frame-options", "DENY");
    if (ctype != NULL)
        header(req, "content-type", ctype);
    h2o_send_inline(req, body != NULL ? body : "", len);
    return 1;
}

static int
redirect(h2o_req_t *req, const char *to)
{
    header(req, "location", to);
    header(req, "cache-control", "no-cache");
    return answer(req, 302, "Found", "text/plain; charset=utf-8", "", 0);
}

static int
not_found(h2o_req_t *req)
{
    static const char msg[] = "not found\n";
    header(req, "cache-control", "no-cache");
    return answer(req, 404, "Not Found", "text/plain; charset=utf-8", msg, sizeof msg - 1);
}

static const console_asset *
find(const char *name, size_t n)
{
    for (const console_asset *a = assets; a->name != NULL; a++)
        if (strlen(a->name) == n && memcmp(a->name, name, n) == 0)
            return a;
    return NULL;
}

/* GET env.json: what the page needs before it calls the API (the public base URL). */
static int
send_env(h2o_req_t *req, const char *public_url)
{
    char body[600];
    const char *u = public_url != NULL ? public_url : "";
    /* public_url is built from a host name and a port or $PORTICO_URL: refuse what would need
     * escaping rather than escape it. */
    if (strpbrk(u, "\"\\<>") != NULL || strlen(u) > 512)
        u = "";
    int n = snprintf(body, sizeof body, "{\"public_url\": \"%s\", \"build\": \"%s\"}\n", u,
                     CONSOLE_BUILD);
    header(req, "cache-control", "no-store");
    return answer(req, 200, "OK", "application/json", body, (size_t)n);
}

int
pt_console_serve(h2o_req_t *req, const char *public_url)
{
    h2o_iovec_t p = req->path_normalized;
    size_t plen = strlen(PT_CONSOLE_PREFIX);
    int root = path_is(p, "/");
    int under = p.len >= plen - 1 && memcmp(p.base, PT_CONSOLE_PREFIX, plen - 1) == 0 &&
                (p.len == plen - 1 || p.base[plen - 1] == '/');
    if (!root && !under)
        return 0;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        static const char msg[] = "method not allowed\n";
        header(req, "allow", "GET, HEAD");
        return answer(req, 405, "Method Not Allowed", "text/plain; charset=utf-8", msg,
                      sizeof msg - 1);
    }
    if (root || p.len == plen - 1)
        return redirect(req, PT_CONSOLE_PREFIX);
    const char *rest = p.base + plen;
    size_t rlen = p.len - plen;
    const console_asset *a = NULL;
    int hashed = 0;
    if (rlen == 0) {
        a = find("index.html", strlen("index.html"));
    } else if (rlen == strlen("env.json") && memcmp(rest, "env.json", rlen) == 0) {
        return send_env(req, public_url);
    } else if (rlen > strlen(ASSET_DIR) && memcmp(rest, ASSET_DIR, strlen(ASSET_DIR)) == 0) {
        a = find(rest + strlen(ASSET_DIR), rlen - strlen(ASSET_DIR));
        hashed = 1;
    }
    if (a == NULL || (hashed && strcmp(a->name, "index.html") == 0))
        return not_found(req);
    header(req, "etag", a->etag);
    header(req, "cache-control", hashed ? "public, max-age=31536000, immutable" : "no-cache");
    ssize_t inm = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (inm != -1) {
        h2o_iovec_t v = req->headers.entries[inm].value;
        if (v.len == strlen(a->etag) && memcmp(v.base, a->etag, v.len) == 0)
            return answer(req, 304, "Not Modified", NULL, "", 0);
    }
    return answer(req, 200, "OK", a->ctype, a->data, a->len);
}
