/* cli_api.c - the CLI's admin API client: picks the transport (in-process on the data dir, or
 * HTTP with --server), sends one call and turns a refusal into the CLI's one-line error. */
#include "cli/cli_api.h"

#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/admin_local.h"
#include "cli/cli.h"
#include "core/buf.h"
#include "core/err.h"

static const char *server_url; /* NULL: the data dir */
static const char *server_token;
static const char *command_name;

void
pt_cli_reply_clear(pt_cli_reply *r)
{
    json_decref(r->body);
    free(r->raw);
    memset(r, 0, sizeof *r);
}

void
pt_cli_api_setup(const char *server, const char *token)
{
    if (server == NULL)
        server = getenv("PORTICO_SERVER");
    if (token == NULL)
        token = getenv("PORTICO_TOKEN");
    server_url = server != NULL && server[0] != '\0' ? server : NULL;
    server_token = token != NULL && token[0] != '\0' ? token : NULL;
}

const char *
pt_cli_api_server(void)
{
    return server_url;
}

void
pt_cli_api_command(const char *name)
{
    command_name = name;
}

int
pt_cli_api_local_only(const char *name)
{
    fprintf(stderr,
            "error: 'portico %s' is not available remotely yet (run it on the server's data dir, "
            "without --server or PORTICO_SERVER)\n",
            name);
    return PT_CLI_USAGE;
}

int
pt_cli_api_path(char *out, size_t outsz, ...)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    va_list ap;
    const char *seg;
    int rc = 0;

    va_start(ap, outsz);
    while ((seg = va_arg(ap, const char *)) != NULL) {
        if (o + 1 >= outsz) {
            rc = -1;
            break;
        }
        out[o++] = '/';
        for (const unsigned char *p = (const unsigned char *)seg; *p != '\0'; p++) {
            int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                        (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL;
            if (o + (plain ? 1 : 3) >= outsz) {
                rc = -1;
                break;
            }
            if (plain) {
                out[o++] = (char)*p;
            } else {
                out[o++] = '%';
                out[o++] = hex[*p >> 4];
                out[o++] = hex[*p & 15];
            }
        }
        if (rc != 0)
            break;
    }
    va_end(ap);
    out[o < outsz ? o : 0] = '\0';
    return rc;
}

/* Appends query (an object of strings) to url as ?k=v&... (percent-encoded). 0 or -1. */
static int
add_query(char *url, size_t urlsz, json_t *query)
{
    const char *k;
    json_t *v;
    char sep = '?';
    size_t o = strlen(url);

    json_object_foreach(query, k, v)
    {
        const char *parts[2] = {k, json_string_value(v)};
        if (parts[1] == NULL)
            continue;
        if (o + 1 >= urlsz)
            return -1;
        url[o++] = sep;
        sep = '&';
        for (int i = 0; i < 2; i++) {
            char enc[1024];
            if (i == 1)
                url[o++] = '=';
            /* pt_cli_api_path encodes one segment after a '/'; skip that '/'. */
            if (pt_cli_api_path(enc, sizeof enc, parts[i], NULL) != 0 || o + strlen(enc) >= urlsz)
                return -1;
            memcpy(url + o, enc + 1, strlen(enc));
            o += strlen(enc) - 1;
        }
        url[o] = '\0';
    }
    return 0;
}

/* The actor of in-process changes in the audit log: "cli:<login name>". */
static void
local_actor(char *out, size_t outsz)
{
    struct passwd *pw = getpwuid(getuid());
    snprintf(out, outsz, "cli:%s", pw != NULL && pw->pw_name != NULL ? pw->pw_name : "unknown");
}

static int
call_local(const char *datadir, const char *method, const char *path, json_t *query, json_t *body,
           pt_cli_reply *out)
{
    pt_store *st = NULL;
    pt_admin_reply r;
    char actor[128];

    if (pt_cli_open_store(datadir, &st) != 0)
        return PT_CLI_ERROR;
    local_actor(actor, sizeof actor);
    memset(&r, 0, sizeof r);
    pt_admin_local_call(st, datadir, actor, command_name, method, path, query, body, &r);
    pt_store_close(st);
    out->status = r.status != 0 ? r.status : 200;
    out->body = r.body;
    out->raw = r.raw;
    out->raw_len = r.raw_len;
    free(r.set_cookie);
    if (out->body == NULL && out->raw == NULL && out->status >= 400)
        return pt_cli_error("out of memory");
    return 0;
}

/* The URL of path and query (borrowed) on the server into url; checks that there is a token.
 * 0, or PT_CLI_ERROR (printed). */
static int
server_url_of(const char *path, json_t *query, char *url, size_t urlsz)
{
    size_t base = strlen(server_url);

    if (server_token == NULL)
        return pt_cli_error("PORTICO_TOKEN is not set: remote commands need an admin API token "
                            "(portico user token create NAME, on the server)");
    while (base > 0 && server_url[base - 1] == '/')
        base--;
    if ((size_t)snprintf(url, urlsz, "%.*s%s%s", (int)base, server_url, PT_ADMIN_PREFIX, path) >=
            urlsz ||
        (query != NULL && add_query(url, urlsz, query) != 0))
        return pt_cli_error("the request is too long");
    return 0;
}

int
pt_cli_api_events(const char *path, json_t *query,
                  int (*on_event)(const char *data, size_t n, void *ctx), void *ctx)
{
    char url[8192], err[512];
    pt_cli_reply rep = {0};
    char *resp = NULL;
    int rc = server_url_of(path, query, url, sizeof url);

    json_decref(query);
    if (rc != 0)
        return rc;
    if (pt_cli_http_events(url, server_token, on_event, ctx, &rep.status, &resp, &rep.raw_len, err,
                           sizeof err) != 0)
        return pt_cli_error("cannot reach the Portico server at %s: %s", server_url, err);
    if (resp == NULL)
        return 0;
    rep.body = json_loadb(resp, rep.raw_len, JSON_DECODE_ANY, NULL);
    free(resp);
    rc = pt_cli_api_error(&rep);
    pt_cli_reply_clear(&rep);
    return rc;
}

static int
call_http(const char *method, const char *path, json_t *query, json_t *body, pt_cli_reply *out)
{
    char url[8192], err[512];
    char *text = NULL, *resp = NULL;
    size_t resp_len = 0;
    int is_json = 0, rc;

    if ((rc = server_url_of(path, query, url, sizeof url)) != 0)
        return rc;
    if (body != NULL && (text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
        return pt_cli_error("out of memory");
    rc = pt_cli_http(url, server_token, method, text, text != NULL ? strlen(text) : 0, &out->status,
                     &resp, &resp_len, &is_json, err, sizeof err);
    if (text != NULL)
        explicit_bzero(text, strlen(text)); /* it may hold a password */
    free(text);
    if (rc != 0)
        return pt_cli_error("cannot reach the Portico server at %s: %s", server_url, err);
    if (is_json) {
        out->body = json_loadb(resp, resp_len, JSON_DECODE_ANY, NULL);
        if (out->body == NULL) {
            free(resp);
            return pt_cli_error("%s answered malformed JSON (status %d)", server_url, out->status);
        }
        free(resp);
    } else {
        out->raw = resp;
        out->raw_len = resp_len;
    }
    return 0;
}

int
pt_cli_api_raw(const char *datadir, const char *method, const char *path, json_t *query,
               json_t *body, pt_cli_reply *out)
{
    int rc;

    memset(out, 0, sizeof *out);
    if (server_url != NULL)
        rc = call_http(method, path, query, body, out);
    else
        rc = call_local(datadir, method, path, query, body, out);
    json_decref(query);
    json_decref(body);
    if (rc != 0)
        pt_cli_reply_clear(out);
    return rc;
}

int
pt_cli_api_error(const pt_cli_reply *r)
{
    json_t *err = json_object_get(r->body, "error");
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (msg == NULL && server_url != NULL)
        /* Not the admin API's error shape: another listener (the public one) or service. */
        return pt_cli_error("%s is not a Portico admin API (it answered status %d): give the "
                            "admin listener's address (serve --admin-listen)",
                            server_url, r->status);
    if (r->status == 401 && server_url != NULL)
        return pt_cli_error("%s (check PORTICO_TOKEN: an admin API token of %s)",
                            msg != NULL ? msg : "unauthorized", server_url);
    if (msg != NULL)
        return pt_cli_error("%s", msg);
    return pt_cli_error("the server answered status %d", r->status);
}

int
pt_cli_api(const char *datadir, const char *method, const char *path, json_t *query, json_t *body,
           pt_cli_reply *out)
{
    int rc = pt_cli_api_raw(datadir, method, path, query, body, out);
    if (rc != 0)
        return rc;
    if (out->status >= 300) {
        rc = pt_cli_api_error(out);
        pt_cli_reply_clear(out);
    }
    return rc;
}

/* ---- list answers as tables ----------------------------------------------------------- */

/* The cell of column col for row o into b (reset first). 0 or PT_ENOMEM. */
static int
cell_of(json_t *o, const pt_cli_col *col, pt_buf *b)
{
    json_t *v = json_object_get(o, col->field);
    int present = 1, bad = 0;

    b->len = 0;
    switch (col->kind) {
    case PT_CLI_COL_TIME:
    case PT_CLI_COL_TIME_MS: {
        json_int_t t = json_integer_value(v);
        char when[64];
        present = t != 0;
        if (present) {
            pt_cli_format_time(col->kind == PT_CLI_COL_TIME_MS ? t / 1000 : t, when, sizeof when);
            bad = pt_buf_puts(b, when);
        }
        break;
    }
    case PT_CLI_COL_LIST: {
        size_t i;
        json_t *e;
        present = json_array_size(v) > 0;
        json_array_foreach(v, i, e)
        {
            const char *text = json_string_value(e);
            bad |= pt_buf_printf(b, "%s%s", i > 0 ? "," : "", text != NULL ? text : "");
        }
        break;
    }
    case PT_CLI_COL_JSON: {
        char *text = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        present = text != NULL;
        bad = text != NULL && pt_buf_puts(b, text) != 0;
        free(text);
        break;
    }
    case PT_CLI_COL_FN: {
        char cell[4096];
        cell[0] = '\0';
        col->format(o, cell, sizeof cell);
        present = cell[0] != '\0';
        bad = present && pt_buf_puts(b, cell) != 0;
        break;
    }
    case PT_CLI_COL_TEXT:
    default:
        if (json_is_integer(v))
            bad = pt_buf_printf(b, "%lld", (long long)json_integer_value(v));
        else if (json_is_string(v) && json_string_length(v) > 0)
            bad = pt_buf_append(b, json_string_value(v), json_string_length(v));
        else
            present = 0;
        break;
    }
    if (bad)
        return PT_ENOMEM;
    if (!present) {
        b->len = 0;
        return col->none != NULL ? pt_buf_puts(b, col->none) : 0;
    }
    return col->suffix != NULL ? pt_buf_puts(b, col->suffix) : 0;
}

int
pt_cli_api_table(json_t *body, const char *member, const pt_cli_col *cols, size_t ncols, int rule)
{
    pt_cli_table *t = pt_cli_table_new(ncols);
    size_t i, k;
    json_t *row;
    pt_buf b;
    int bad = t == NULL;

    pt_buf_init(&b, 0);
    for (k = 0; !bad && k < ncols; k++)
        bad = pt_cli_table_adds(t, cols[k].head) != 0;
    json_array_foreach(json_object_get(body, member), i, row)
    {
        for (k = 0; !bad && k < ncols; k++)
            bad = cell_of(row, &cols[k], &b) != 0 ||
                  pt_cli_table_add(t, b.data != NULL ? b.data : "", b.len) != 0;
    }
    if (!bad)
        pt_cli_table_print(t, stdout, rule);
    pt_cli_table_free(t);
    pt_buf_free(&b);
    return bad ? pt_cli_error("out of memory") : 0;
}

int
pt_cli_api_list_cmd(const char *datadir, int argc, char **argv, const char *usage, const char *path,
                    const char *member, const pt_cli_col *cols, size_t ncols)
{
    pt_cli_reply rep;
    char *pos[1];
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 0, 0, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((rc = pt_cli_api(datadir, "GET", path, NULL, NULL, &rep)) != 0)
        return rc;
    rc = pt_cli_api_table(rep.body, member, cols, ncols, 0);
    pt_cli_reply_clear(&rep);
    return rc;
}

int
pt_cli_api_name_cmd(const char *datadir, int argc, char **argv, const char *usage,
                    const char *method, const char *collection, const char *before,
                    const char *after)
{
    pt_cli_reply rep;
    char *pos[1], path[1024];
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    size_t n = (size_t)snprintf(path, sizeof path, "/%s", collection);
    if (n >= sizeof path || pt_cli_api_path(path + n, sizeof path - n, pos[0], NULL) != 0)
        return pt_cli_error("the name is too long");
    if ((rc = pt_cli_api(datadir, method, path, NULL, NULL, &rep)) != 0)
        return rc;
    printf("%s%s%s\n", before, pos[0], after);
    pt_cli_reply_clear(&rep);
    return 0;
}
