/* cli_webhook.c - `portico webhook url|rotate|events|replay|source`: the install's durable
 * webhook inbox (docs/WEBHOOKS.md), through the admin API (cli_api.h) but for `events`. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_api.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "store/store_webhooks.h"
#include "warehouse/rows.h"
#include "warehouse/wh.h"

static const char webhook_usage[] =
    "webhook url [--base URL] | rotate | events [--since ID] [--limit N] [--source NAME] "
    "[--json] | replay ID | source add|set|list|rm";

static const char source_usage[] =
    "webhook source add NAME [--verify github|stripe|hmac-sha256] [--secret SECRET_NAME] "
    "[--header HEADER] [--dedup-header HEADER] [--script SCRIPT] | set NAME [same options, "
    "--no-script, --no-dedup-header] | list | rm NAME";

/* The server's base URL: --base, else $PORTICO_URL, else the default listen address. */
static void
base_url(const char *opt, char *out, size_t outsz)
{
    const char *env = getenv("PORTICO_URL");
    const char *b = opt != NULL ? opt : env != NULL && env[0] != '\0' ? env : NULL;
    snprintf(out, outsz, "%s", b != NULL ? b : "http://127.0.0.1:8080");
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}

/* Prints the events cur yields as a JSON array (the `headers` column is stored as a JSON
 * object and goes out as one). Returns what pt_wh_cursor_next last returned (0 at the end). */
static int
print_events_json(pt_wh_cursor *cur)
{
    size_t ncols = pt_wh_cursor_ncols(cur);
    pt_buf b;
    int rc, first = 1;
    pt_buf_init(&b, 0);
    pt_buf_putc(&b, '[');
    while ((rc = pt_wh_cursor_next(cur)) == 1) {
        pt_buf_puts(&b, first ? "\n  {" : ",\n  {");
        first = 0;
        for (size_t i = 0; i < ncols; i++) {
            pt_value v;
            const char *name = pt_wh_cursor_colname(cur, i);
            pt_wh_cursor_value(cur, i, &v);
            if (i > 0)
                pt_buf_puts(&b, ", ");
            pt_json_string(&b, name, strlen(name));
            pt_buf_puts(&b, ": ");
            if (strcmp(name, "headers") == 0 && v.type == PT_V_TEXT)
                pt_buf_append(&b, v.u.s.p, v.u.s.n); /* stored as a JSON object */
            else
                pt_rows_json_value(&b, &v, 1);
        }
        pt_buf_putc(&b, '}');
    }
    pt_buf_puts(&b, first ? "]\n" : "\n]\n");
    fwrite(b.data, 1, b.len, stdout);
    pt_buf_free(&b);
    return rc;
}

/* Prints the events cur yields as a table, or says there are none (after_id: the caller asked
 * for events after an id). Returns what pt_wh_cursor_next last returned (0 at the end). */
static int
print_events_table(pt_wh_cursor *cur, int after_id)
{
    static const char *const heads[] = {"ID",    "RECEIVED", "SOURCE",   "METHOD",    "TYPE",
                                        "BYTES", "STATUS",   "ATTEMPTS", "LAST ERROR"};
    size_t ncols = pt_wh_cursor_ncols(cur), count = 0;
    pt_cli_table *t = pt_cli_table_new_header(9, heads);
    int rc = 0;
    while (t != NULL && (rc = pt_wh_cursor_next(cur)) == 1) {
        for (size_t i = 0; i < ncols; i++) {
            pt_value v;
            char num[32];
            pt_wh_cursor_value(cur, i, &v);
            if (v.type == PT_V_INT) {
                snprintf(num, sizeof(num), "%" PRId64, v.u.i);
                pt_cli_table_adds(t, num);
            } else if (v.type == PT_V_NULL) {
                pt_cli_table_adds(t, "-");
            } else {
                pt_cli_table_add(t, v.u.s.p, v.u.s.n);
            }
        }
        count++;
    }
    if (count > 0)
        pt_cli_table_print(t, stdout, 1);
    else
        fprintf(stderr, "no events%s\n", after_id ? " after that id" : "");
    pt_cli_table_free(t);
    return rc;
}

/* `webhook url`, and `webhook rotate` when rotate is set (a new token first): prints the
 * install's webhook URL, on the base of --base or $PORTICO_URL as the client sees it. */
static int
url_or_rotate(const char *datadir, int argc, char **argv, int rotate)
{
    const char *base = NULL;
    pt_cli_opt opts[] = {{"--base", 1, &base}, {NULL, 0, NULL}};
    char *pos[1], url[512];
    int npos = 0;
    pt_cli_reply rep;

    int rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos,
                          rotate ? "webhook rotate [--base URL]" : "webhook url [--base URL]");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    rc = rotate ? pt_cli_api(datadir, "POST", "/webhooks/rotate", NULL, NULL, &rep)
                : pt_cli_api(datadir, "GET", "/webhooks/url", NULL, NULL, &rep);
    if (rc != 0)
        return rc;
    base_url(base, url, sizeof(url));
    printf("%s%s\n", url, json_string_value(json_object_get(rep.body, "path")));
    if (rotate)
        fprintf(stderr, "the previous webhook URL no longer accepts events\n");
    pt_cli_reply_clear(&rep);
    return PT_CLI_OK;
}

static int
webhook_events(const char *datadir, int argc, char **argv)
{
    const char *since = NULL, *limit = NULL, *source = NULL, *json = NULL;
    pt_cli_opt opts[] = {{"--since", 1, &since},
                         {"--limit", 1, &limit},
                         {"--source", 1, &source},
                         {"--json", 0, &json},
                         {NULL, 0, NULL}};
    char *pos[1], err[512];
    int npos = 0;
    long since_id = 0, max = 100;
    pt_wh *wh = NULL;
    pt_wh_cursor *cur = NULL;

    int rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos,
                          "webhook events [--since ID] [--limit N] [--source NAME] [--json]");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (since != NULL && pt_cli_parse_long(since, 0, INT64_MAX / 2, &since_id) != 0)
        return pt_cli_error("invalid --since '%s' (an event id)", since);
    if (limit != NULL && pt_cli_parse_long(limit, 1, 100000, &max) != 0)
        return pt_cli_error("invalid --limit '%s' (1 to 100000)", limit);
    if ((rc = pt_cli_need_datadir(datadir)) != 0)
        return rc;
    char schema[128], sql[1024];
    if (pt_wh_open_events(datadir, &wh, schema, sizeof schema, err, sizeof(err)) != 0)
        return pt_cli_error("%s", err);
    if (pt_wh_table_exists(wh, schema, "events") != 1) {
        pt_wh_close(wh);
        if (json != NULL)
            puts("[]");
        else
            fprintf(stderr, "no events received yet\n");
        return PT_CLI_OK;
    }
    pt_value params[3] = {
        {.type = PT_V_INT, .u.i = since_id},
        {.type = PT_V_TEXT, .u.s = {source ? source : "", source ? strlen(source) : 0}},
        {.type = PT_V_INT, .u.i = max}};
    pt_wh_events_sql(
        wh, schema,
        json != NULL
            ? "SELECT id, received_at, source, method, path, query_string, headers, content_type,"
              " body, body_base64, remote_addr, status, attempts, last_error FROM {events}"
              " WHERE id > ?1 AND (?2 = '' OR source = ?2) ORDER BY id LIMIT ?3"
            : "SELECT id, received_at, CASE source WHEN '' THEN '-' ELSE source END, method,"
              " COALESCE(content_type, '-'),"
              " CASE body_base64 WHEN 1 THEN length(body) / 4 * 3"
              " - (CASE WHEN body LIKE '%==' THEN 2 WHEN body LIKE '%=' THEN 1 ELSE 0 END)"
              " ELSE {bytes} END, status, attempts,"
              " COALESCE(substr(last_error, 1, 60), '-') FROM {events}"
              " WHERE id > ?1 AND (?2 = '' OR source = ?2) ORDER BY id LIMIT ?3",
        sql, sizeof sql);
    rc = pt_wh_exec(wh, sql, params, 3, &cur);
    if (rc != 0) {
        rc = pt_cli_error("%s", pt_wh_errmsg(wh));
        pt_wh_close(wh);
        return rc;
    }
    rc = json != NULL ? print_events_json(cur) : print_events_table(cur, since != NULL);
    pt_wh_cursor_free(cur);
    if (rc < 0) {
        rc = pt_cli_error("%s", pt_wh_errmsg(wh));
        pt_wh_close(wh);
        return rc;
    }
    pt_wh_close(wh);
    return PT_CLI_OK;
}

/* `webhook replay ID`: hands a stored event to its source's script again. */
static int
webhook_replay(const char *datadir, int argc, char **argv)
{
    char *pos[1], path[128];
    int npos = 0;
    long id;
    pt_cli_reply rep;

    int rc = pt_cli_parse(argc, argv, NULL, pos, 1, 1, &npos, "webhook replay ID");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (pt_cli_parse_long(pos[0], 1, INT64_MAX / 2, &id) != 0)
        return pt_cli_error("invalid event id '%s'", pos[0]);
    if (pt_cli_api_path(path, sizeof path, "webhooks", "events", pos[0], "replay", NULL) != 0 ||
        (rc = pt_cli_api(datadir, "POST", path, NULL, NULL, &rep)) != 0)
        return rc != 0 ? rc : pt_cli_error("invalid event id '%s'", pos[0]);
    printf("event %ld queued for script %s\n", id,
           json_string_value(json_object_get(rep.body, "script")));
    pt_cli_reply_clear(&rep);
    return PT_CLI_OK;
}

static int
source_add(const char *datadir, int argc, char **argv)
{
    const char *verify = NULL, *secret = NULL, *header = NULL, *dedup = NULL, *script = NULL;
    const char *base = NULL;
    pt_cli_opt opts[] = {{"--verify", 1, &verify}, {"--secret", 1, &secret},
                         {"--header", 1, &header}, {"--dedup-header", 1, &dedup},
                         {"--script", 1, &script}, {"--base", 1, &base},
                         {NULL, 0, NULL}};
    char *pos[1], url[512];
    int npos = 0;
    pt_cli_reply rep;

    int rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos,
                          "webhook source add NAME [--verify github|stripe|hmac-sha256] "
                          "[--secret SECRET_NAME] [--header HEADER] [--dedup-header HEADER] "
                          "[--script SCRIPT]");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (header != NULL && (verify == NULL || strcmp(verify, "hmac-sha256") != 0))
        return pt_cli_error("--header applies to --verify hmac-sha256 only");
    json_t *body =
        json_pack("{s:s, s:s*, s:s*, s:s*, s:s*, s:s*}", "name", pos[0], "verify", verify, "secret",
                  secret, "header", header, "dedup_header", dedup, "script", script);
    if ((rc = pt_cli_api(datadir, "POST", "/webhooks/sources", NULL, body, &rep)) != 0)
        return rc;
    base_url(base, url, sizeof(url));
    printf("%s%s\n", url,
           json_string_value(json_object_get(json_object_get(rep.body, "webhook"), "path")));
    pt_cli_reply_clear(&rep);
    return PT_CLI_OK;
}

/* `webhook source set NAME ...`: changes the options given, keeps the others. */
static int
source_set(const char *datadir, int argc, char **argv)
{
    const char *verify = NULL, *secret = NULL, *header = NULL, *dedup = NULL, *script = NULL;
    const char *no_script = NULL, *no_dedup = NULL;
    pt_cli_opt opts[] = {{"--verify", 1, &verify},
                         {"--secret", 1, &secret},
                         {"--header", 1, &header},
                         {"--dedup-header", 1, &dedup},
                         {"--script", 1, &script},
                         {"--no-script", 0, &no_script},
                         {"--no-dedup-header", 0, &no_dedup},
                         {NULL, 0, NULL}};
    static const char usage[] =
        "webhook source set NAME [--verify none|github|stripe|hmac-sha256] "
        "[--secret SECRET_NAME] [--header HEADER] [--dedup-header HEADER | --no-dedup-header] "
        "[--script SCRIPT | --no-script]";
    char *pos[1], path[300];
    int npos = 0;
    pt_cli_reply rep;

    int rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((script != NULL && no_script != NULL) || (dedup != NULL && no_dedup != NULL))
        return pt_cli_error("--script and --no-script (or --dedup-header and --no-dedup-header) "
                            "are exclusive");
    json_t *body = json_object();
    if (verify != NULL) {
        json_object_set_new(body, "verify", json_string(verify));
        if (strcmp(verify, "hmac-sha256") != 0) /* a header belongs to hmac-sha256 only */
            json_object_set_new(body, "header", json_null());
        if (strcmp(verify, "none") == 0 && secret == NULL)
            json_object_set_new(body, "secret", json_null());
    }
    if (secret != NULL)
        json_object_set_new(body, "secret", json_string(secret));
    if (header != NULL)
        json_object_set_new(body, "header", json_string(header));
    if (dedup != NULL || no_dedup != NULL)
        json_object_set_new(body, "dedup_header", dedup != NULL ? json_string(dedup) : json_null());
    if (script != NULL || no_script != NULL)
        json_object_set_new(body, "script", script != NULL ? json_string(script) : json_null());
    if (json_object_size(body) == 0) {
        json_decref(body);
        return pt_cli_usage(usage);
    }
    if (pt_cli_api_path(path, sizeof path, "webhooks", "sources", pos[0], NULL) != 0) {
        json_decref(body);
        return pt_cli_error("invalid source name '%s'", pos[0]);
    }
    if ((rc = pt_cli_api(datadir, "PATCH", path, NULL, body, &rep)) != 0)
        return rc;
    printf("changed webhook source %s\n", pos[0]);
    pt_cli_reply_clear(&rep);
    return PT_CLI_OK;
}

static int
source_list(const char *datadir, int argc, char **argv)
{
    static const pt_cli_col cols[] = {
        {"NAME", "name", PT_CLI_COL_TEXT, NULL, NULL},
        {"VERIFY", "verify", PT_CLI_COL_TEXT, NULL, NULL},
        {"SECRET", "secret", PT_CLI_COL_TEXT, "-", NULL},
        {"DEDUP HEADER", "dedup_header", PT_CLI_COL_TEXT, "-", NULL},
        {"SCRIPT", "script", PT_CLI_COL_TEXT, "-", NULL},
        {"CREATED", "created", PT_CLI_COL_TIME, "-", NULL},
    };
    char *pos[1];
    int npos = 0;
    pt_cli_reply rep;

    int rc = pt_cli_parse(argc, argv, NULL, pos, 0, 0, &npos, "webhook source list");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((rc = pt_cli_api(datadir, "GET", "/webhooks/sources", NULL, NULL, &rep)) != 0)
        return rc;
    if (json_array_size(json_object_get(rep.body, "sources")) > 0)
        rc = pt_cli_api_table(rep.body, "sources", cols, 6, 1);
    else
        fprintf(stderr, "no webhook sources (add one with 'portico webhook source add NAME')\n");
    pt_cli_reply_clear(&rep);
    return rc;
}

static int
source_rm(const char *datadir, int argc, char **argv)
{
    return pt_cli_api_name_cmd(datadir, argc, argv, "webhook source rm NAME", "DELETE",
                               "webhooks/sources", "removed webhook source ", "");
}

static int
webhook_url(const char *datadir, int argc, char **argv)
{
    return url_or_rotate(datadir, argc, argv, 0);
}

static int
webhook_rotate(const char *datadir, int argc, char **argv)
{
    return url_or_rotate(datadir, argc, argv, 1);
}

static const pt_cli_sub source_subs[] = {{"add", NULL, source_add, PT_CLI_REMOTE},
                                         {"set", NULL, source_set, PT_CLI_REMOTE},
                                         {"list", "ls", source_list, PT_CLI_REMOTE},
                                         {"rm", NULL, source_rm, PT_CLI_REMOTE},
                                         {NULL, NULL, NULL, 0}};

static int
webhook_source(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("webhook source", source_usage, source_subs, datadir, argc, argv);
}

/* events has no route of its shape (ids after --since, oldest first, every column with
 * --json; GET /webhooks/events pages newest first): data dir only. */
static const pt_cli_sub webhook_subs[] = {{"url", NULL, webhook_url, PT_CLI_REMOTE},
                                          {"rotate", NULL, webhook_rotate, PT_CLI_REMOTE},
                                          {"events", NULL, webhook_events, 0},
                                          {"replay", NULL, webhook_replay, PT_CLI_REMOTE},
                                          {"source", NULL, webhook_source, PT_CLI_REMOTE},
                                          {NULL, NULL, NULL, 0}};

int
pt_cli_webhook(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("webhook", webhook_usage, webhook_subs, datadir, argc, argv);
}
