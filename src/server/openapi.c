/* openapi.c - the OpenAPI 3.1 document of the published endpoints. */
#include "server/openapi.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "server/router.h"

#define S(b, lit) pt_buf_puts(b, lit)

static int
jstr(pt_buf *b, const char *s, size_t n)
{
    return pt_json_string(b, s, n);
}

/* ---- the script's docstring ------------------------------------------------------------- */

/* Skips blank lines, comment lines and spaces before the module's first statement. */
static const char *
skip_to_statement(const char *p, const char *end)
{
    while (p < end) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\f') {
            p++;
        } else if (*p == '#') {
            while (p < end && *p != '\n')
                p++;
        } else if (p + 3 <= end && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
            p += 3;
        } else {
            break;
        }
    }
    return p;
}

/* The raw text of the module docstring (the first statement when it is a string literal) into
 * raw, its escapes (but for raw strings) decoded for the common cases: \n \t \\ \' \" and a
 * backslash before a line break. Returns 1 when there is one, 0 when not, <0 on no memory. */
static int
docstring_raw(const char *src, size_t n, pt_buf *raw)
{
    const char *end = src + n, *p = skip_to_statement(src, end);
    int is_raw = 0, rc = 0;
    size_t qlen;
    char q;

    if (p < end && *p != '\0' && strchr("rRuU", *p) != NULL) {
        is_raw = *p == 'r' || *p == 'R';
        p++;
    }
    if (p >= end || (*p != '"' && *p != '\''))
        return 0;
    q = *p;
    qlen = (p + 3 <= end && p[1] == q && p[2] == q) ? 3 : 1;
    p += qlen;
    for (; p < end && rc == 0; p++) {
        if (*p == q && (qlen == 1 || (p + 3 <= end && p[1] == q && p[2] == q)))
            return 1;
        if (qlen == 1 && *p == '\n')
            return 0; /* an unterminated one-line string: not a docstring we can read */
        if (*p == '\\' && !is_raw && p + 1 < end) {
            char c = *++p;
            if (c == 'n')
                rc = pt_buf_putc(raw, '\n');
            else if (c == 't')
                rc = pt_buf_putc(raw, '\t');
            else if (c == '\\' || c == '\'' || c == '"')
                rc = pt_buf_putc(raw, c);
            else if (c != '\n')
                rc = pt_buf_putc(raw, '\\') == 0 ? pt_buf_putc(raw, c) : PT_ENOMEM;
            continue;
        }
        if (*p != '\r')
            rc = pt_buf_putc(raw, *p);
    }
    return rc < 0 ? rc : 0;
}

/* The docstring cleaned as Python's inspect.cleandoc does: the first line's leading spaces and
 * the common indentation of the others removed, blank lines at both ends dropped. */
int
pt_openapi_docstring(const char *src, size_t n, pt_buf *out)
{
    pt_buf raw;
    size_t indent = (size_t)-1, i, start;
    int rc, line;

    pt_buf_init(&raw, 0);
    rc = docstring_raw(src, n, &raw);
    if (rc <= 0 || raw.len == 0)
        goto done;
    /* the smallest indentation of the lines after the first that hold more than spaces */
    for (i = 0, line = 0; i < raw.len; line++) {
        size_t s = i, k;
        while (i < raw.len && raw.data[i] != '\n')
            i++;
        for (k = s; k < i && (raw.data[k] == ' ' || raw.data[k] == '\t'); k++)
            ;
        if (line > 0 && k < i && k - s < indent)
            indent = k - s;
        i++;
    }
    start = out->len;
    for (i = 0, line = 0; rc >= 0 && i < raw.len; line++) {
        size_t s = i, e, k;
        while (i < raw.len && raw.data[i] != '\n')
            i++;
        e = i++;
        k = s;
        if (line == 0)
            while (k < e && (raw.data[k] == ' ' || raw.data[k] == '\t'))
                k++;
        else
            k = e - s > indent ? s + indent : e;
        while (e > k && (raw.data[e - 1] == ' ' || raw.data[e - 1] == '\t'))
            e--;
        if (out->len == start && e == k)
            continue; /* leading blank lines */
        rc = pt_buf_append(out, raw.data + k, e - k);
        if (rc == 0)
            rc = pt_buf_putc(out, '\n');
    }
    while (rc >= 0 && out->len > start && isspace((unsigned char)out->data[out->len - 1]))
        out->len--;
    if (rc >= 0 && out->data != NULL)
        out->data[out->len] = '\0';
    rc = rc < 0 ? rc : out->len > start;
done:
    pt_buf_free(&raw);
    return rc;
}

/* ---- the document ------------------------------------------------------------------------ */

/* The OpenAPI form of a path: `{name}` stays, each `*` becomes `{wildcardN}`. Writes the
 * JSON string and fills the parameter names into params (as "name\0"). */
static int
templated(pt_buf *b, const char *path, pt_buf *params)
{
    pt_buf t;
    int rc = 0, wild = 0;
    pt_buf_init(&t, 0);
    for (const char *p = path; rc == 0 && *p != '\0';) {
        const char *seg = p;
        const char *end = strchr(seg + 1, '/');
        size_t n = end != NULL ? (size_t)(end - seg) : strlen(seg);
        if (n == 2 && seg[1] == '*') {
            char name[32];
            int k = snprintf(name, sizeof(name), "wildcard%d", ++wild);
            rc = pt_buf_printf(&t, "/{%s}", name);
            if (rc == 0)
                rc = pt_buf_append(params, name, (size_t)k + 1);
        } else {
            rc = pt_buf_append(&t, seg, n);
            if (rc == 0 && n > 3 && seg[1] == '{' && seg[n - 1] == '}') {
                rc = pt_buf_append(params, seg + 2, n - 3);
                if (rc == 0)
                    rc = pt_buf_putc(params, '\0');
            }
        }
        p = seg + n;
    }
    if (rc == 0)
        rc = jstr(b, t.data != NULL ? t.data : "/", t.len > 0 ? t.len : 1);
    pt_buf_free(&t);
    return rc;
}

/* The endpoint's own settings (core/epset.h) as the extension "x-portico-settings": the ones
 * set only, in the admin API's units; nothing when none is set. */
static int
settings_ext(pt_buf *b, const pt_ep_settings *s)
{
    const struct {
        const char *key;
        int64_t v;
    } f[] = {{"timeout_ms", s->timeout_ms},
             {"max_concurrency", s->max_concurrency},
             {"queue_wait_ms", s->queue_wait_ms},
             {"cache_ms", s->cache_ms},
             {"max_body", s->max_body}};
    int rc = 0, first = 1;
    for (size_t i = 0; rc == 0 && i < sizeof f / sizeof f[0]; i++) {
        if (f[i].v == 0)
            continue;
        rc = pt_buf_printf(b, "%s\"%s\": %lld", first ? ", \"x-portico-settings\": {" : ", ",
                           f[i].key, (long long)f[i].v);
        first = 0;
    }
    if (rc == 0 && s->cors != NULL) {
        rc = S(b, first ? ", \"x-portico-settings\": {\"cors\": [" : ", \"cors\": [");
        first = 0;
        for (const char *p = s->cors; rc == 0 && *p != '\0';) {
            size_t n = strcspn(p, ",");
            rc = jstr(b, p, n);
            p += n;
            if (rc == 0 && *p == ',') {
                rc = S(b, ", ");
                p++;
            }
        }
        if (rc == 0)
            rc = S(b, "]");
    }
    if (rc == 0 && !first)
        rc = S(b, "}");
    return rc;
}

/* One operation; its id is the endpoint's name, suffixed with the method when the endpoint
 * has several (operation ids must be unique in a document). */
static int
operation(pt_buf *b, const pt_endpoint *ep, const char *method, int several, const pt_buf *params,
          const pt_buf *doc)
{
    char id[160];
    int rc = S(b, "{\"operationId\": ");
    snprintf(id, sizeof(id), several ? "%s_%s" : "%s", ep->name, method);
    if (rc == 0)
        rc = jstr(b, id, strlen(id));
    if (rc == 0 && doc->len > 0) {
        const char *nl = memchr(doc->data, '\n', doc->len);
        rc = S(b, ", \"summary\": ");
        if (rc == 0)
            rc = jstr(b, doc->data, nl != NULL ? (size_t)(nl - doc->data) : doc->len);
        if (rc == 0)
            rc = S(b, ", \"description\": ");
        if (rc == 0)
            rc = jstr(b, doc->data, doc->len);
    }
    if (rc == 0)
        rc = S(b, ", \"parameters\": [");
    for (size_t off = 0, first = 1; rc == 0 && off < params->len; first = 0) {
        const char *name = params->data + off;
        size_t n = strlen(name);
        rc = S(b, first ? "{\"name\": " : ", {\"name\": ");
        if (rc == 0)
            rc = jstr(b, name, n);
        if (rc == 0)
            rc = S(b, ", \"in\": \"path\", \"required\": true, "
                      "\"schema\": {\"type\": \"string\"}}");
        off += n + 1;
    }
    if (rc == 0)
        rc = S(b, "]");
    if (rc == 0 && strcmp(ep->auth, "jwt") == 0)
        rc = S(b, ", \"security\": [{\"jwt\": []}]");
    else if (rc == 0 && strcmp(ep->auth, "apikey") == 0)
        rc = S(b, ", \"security\": [{\"apikey\": []}, {\"apikeyBearer\": []}]");
    else if (rc == 0)
        rc = S(b, ", \"security\": []");
    if (rc == 0)
        rc = settings_ext(b, &ep->settings);
    if (rc == 0)
        rc = S(b, ", \"responses\": {\"200\": {\"description\": \"The handler's response\"}");
    if (rc == 0 && strcmp(ep->auth, "public") != 0)
        rc = S(b, ", \"401\": {\"description\": \"Missing or invalid credentials\"}"
                  ", \"429\": {\"description\": \"Rate limit exceeded\"}");
    if (rc == 0)
        rc = S(b, ", \"500\": {\"description\": \"The handler failed\"}}}");
    return rc;
}

int
pt_openapi_render(const pt_endpoint *eps, const pt_script *const *scripts, size_t n,
                  const char *server_url, pt_buf *out)
{
    static const struct {
        unsigned bit;
        const char *name;
    } methods[] = {{PT_M_GET, "get"},        {PT_M_POST, "post"},     {PT_M_PUT, "put"},
                   {PT_M_PATCH, "patch"},    {PT_M_DELETE, "delete"}, {PT_M_HEAD, "head"},
                   {PT_M_OPTIONS, "options"}};
    int rc = S(out, "{\"openapi\": \"3.1.0\", \"info\": {\"title\": \"Portico\", "
                    "\"version\": \"1\"}, \"servers\": [{\"url\": ");
    if (rc == 0)
        rc = jstr(out, server_url, strlen(server_url));
    if (rc == 0)
        rc = S(out, "}], \"paths\": {");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        pt_buf params, doc;
        pt_buf_init(&params, 0);
        pt_buf_init(&doc, 0);
        if (scripts != NULL && scripts[i] != NULL && scripts[i]->source != NULL &&
            pt_openapi_docstring(scripts[i]->source, scripts[i]->source_len, &doc) < 0)
            rc = PT_ENOMEM;
        if (rc == 0 && i > 0)
            rc = S(out, ", ");
        if (rc == 0)
            rc = templated(out, eps[i].path, &params);
        if (rc == 0)
            rc = S(out, ": {");
        int first = 1, count = 0;
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++)
            count += (eps[i].methods & methods[m].bit) != 0;
        for (size_t m = 0; rc == 0 && m < sizeof(methods) / sizeof(methods[0]); m++) {
            if (!(eps[i].methods & methods[m].bit))
                continue;
            rc = pt_buf_printf(out, "%s\"%s\": ", first ? "" : ", ", methods[m].name);
            first = 0;
            if (rc == 0)
                rc = operation(out, &eps[i], methods[m].name, count > 1, &params, &doc);
        }
        if (rc == 0)
            rc = S(out, "}");
        pt_buf_free(&params);
        pt_buf_free(&doc);
    }
    if (rc == 0)
        rc = S(out, "}, \"components\": {\"securitySchemes\": {"
                    "\"jwt\": {\"type\": \"http\", \"scheme\": \"bearer\", "
                    "\"bearerFormat\": \"JWT\", \"description\": \"Authorization: JWT <token> "
                    "or Bearer <token>\"}, "
                    "\"apikey\": {\"type\": \"apiKey\", \"in\": \"header\", "
                    "\"name\": \"X-Api-Key\"}, "
                    "\"apikeyBearer\": {\"type\": \"http\", \"scheme\": \"bearer\"}}}}");
    return rc;
}
