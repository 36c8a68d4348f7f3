/* cli_webhook.c - `portico webhook url|rotate|events|replay|source`: the install's durable
 * webhook inbox (docs/WEBHOOKS.md). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "store/store_webhooks.h"
#include "warehouse/rows.h"
#include "warehouse/wh.h"

static const char webhook_usage[] =
    "webhook url [--base URL] | rotate | events [--since ID] [--limit N] [--source NAME] "
    "[--json] | replay ID | source add|list|rm";

static const char source_usage[] =
    "webhook source add NAME [--verify github|stripe|hmac-sha256] [--secret SECRET_NAME] "
    "[--header HEADER] [--dedup-header HEADER] [--script SCRIPT] | list | rm NAME";

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
 * install's webhook URL. */
static int
url_or_rotate(const char *datadir, int argc, char **argv, int rotate)
{
    const char *base = NULL;
    pt_cli_opt opts[] = {{"--base", 1, &base}, {NULL, 0, NULL}};
    char *pos[1], url[512];
    int npos = 0;
    pt_store *st = NULL;
    char *token = NULL;

    int rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos,
                          rotate ? "webhook rotate [--base URL]" : "webhook url [--base URL]");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((rc = pt_cli_open_store(datadir, &st)) != 0)
        return rc;
    rc = rotate ? pt_store_webhook_rotate(st, &token) : pt_store_webhook_token(st, 1, &token);
    if (rc != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        pt_store_close(st);
        return rc;
    }
    base_url(base, url, sizeof(url));
    printf("%s/webhook/%s\n", url, token);
    if (rotate)
        fprintf(stderr, "the previous webhook URL no longer accepts events\n");
    free(token);
    pt_store_close(st);
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
    if (pt_wh_open_embedded(datadir, &wh, err, sizeof(err)) != 0)
        return pt_cli_error("%s", err);
    if (pt_wh_table_exists(wh, "webhooks", "events") != 1) {
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
    const char *sql =
        json != NULL
            ? "SELECT id, received_at, source, method, path, query_string, headers, content_type,"
              " body, body_base64, remote_addr, status, attempts, last_error FROM webhooks.events"
              " WHERE id > ?1 AND (?2 = '' OR source = ?2) ORDER BY id LIMIT ?3"
            : "SELECT id, received_at, CASE source WHEN '' THEN '-' ELSE source END, method,"
              " COALESCE(content_type, '-'),"
              " CASE body_base64 WHEN 1 THEN length(body) / 4 * 3"
              " - (CASE WHEN body LIKE '%==' THEN 2 WHEN body LIKE '%=' THEN 1 ELSE 0 END)"
              " ELSE length(CAST(body AS BLOB)) END, status, attempts,"
              " COALESCE(substr(last_error, 1, 60), '-') FROM webhooks.events"
              " WHERE id > ?1 AND (?2 = '' OR source = ?2) ORDER BY id LIMIT ?3";
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
    char *pos[1], err[512];
    int npos = 0;
    long id;
    pt_wh *wh = NULL;
    pt_wh_cursor *cur = NULL;
    pt_store *st = NULL;
    pt_webhook_source *srcs = NULL;
    size_t nsrcs = 0;
    pt_cli_opt opts[] = {{NULL, 0, NULL}};

    int rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos, "webhook replay ID");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (pt_cli_parse_long(pos[0], 1, INT64_MAX / 2, &id) != 0)
        return pt_cli_error("invalid event id '%s'", pos[0]);
    if ((rc = pt_cli_open_store(datadir, &st)) != 0)
        return rc;
    if (pt_store_webhook_source_list(st, &srcs, &nsrcs) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        pt_store_close(st);
        return rc;
    }
    pt_store_close(st);
    if (pt_wh_open_embedded(datadir, &wh, err, sizeof(err)) != 0) {
        pt_store_webhook_sources_free(srcs, nsrcs);
        return pt_cli_error("%s", err);
    }
    pt_value p = {.type = PT_V_INT, .u.i = id};
    rc = pt_wh_table_exists(wh, "webhooks", "events") == 1
             ? pt_wh_exec(wh, "SELECT source FROM webhooks.events WHERE id = ?1", &p, 1, &cur)
             : PT_ENOTFOUND;
    char source[128] = "";
    int found = rc == 0 && pt_wh_cursor_next(cur) == 1;
    if (found) {
        pt_value v;
        pt_wh_cursor_value(cur, 0, &v);
        snprintf(source, sizeof(source), "%.*s", (int)v.u.s.n, v.u.s.p);
    }
    pt_wh_cursor_free(cur);
    cur = NULL;
    const char *script = NULL;
    for (size_t i = 0; i < nsrcs; i++)
        if (strcmp(srcs[i].name, source) == 0)
            script = srcs[i].script;
    if (!found)
        rc = pt_cli_error("no webhook event with id %ld", id);
    else if (script == NULL)
        rc = pt_cli_error("event %ld came in through %s%s%s, which has no --script to run", id,
                          source[0] ? "source '" : "the install's own URL", source[0] ? source : "",
                          source[0] ? "'" : "");
    else if (pt_wh_exec(wh,
                        "UPDATE webhooks.events SET status = 'pending', attempts = 0,"
                        " last_error = NULL, next_attempt_at = 0 WHERE id = ?1",
                        &p, 1, &cur) != 0)
        rc = pt_cli_error("%s", pt_wh_errmsg(wh));
    else {
        printf("event %ld queued for script %s\n", id, script);
        rc = PT_CLI_OK;
    }
    pt_wh_cursor_free(cur);
    pt_wh_close(wh);
    pt_store_webhook_sources_free(srcs, nsrcs);
    return rc;
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
    pt_store *st = NULL;
    char *token = NULL;

    int rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos,
                          "webhook source add NAME [--verify github|stripe|hmac-sha256] "
                          "[--secret SECRET_NAME] [--header HEADER] [--dedup-header HEADER] "
                          "[--script SCRIPT]");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (header != NULL && (verify == NULL || strcmp(verify, "hmac-sha256") != 0))
        return pt_cli_error("--header applies to --verify hmac-sha256 only");
    if ((rc = pt_cli_open_store(datadir, &st)) != 0)
        return rc;
    pt_webhook_source s = {.name = pos[0],
                           .verify = (char *)(verify != NULL ? verify : "none"),
                           .secret = (char *)secret,
                           .header = (char *)header,
                           .dedup_header = (char *)dedup,
                           .script = (char *)script};
    if (pt_store_webhook_source_add(st, &s) != 0 || pt_store_webhook_token(st, 1, &token) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        pt_store_close(st);
        return rc;
    }
    base_url(base, url, sizeof(url));
    printf("%s/webhook/%s/%s\n", url, token, pos[0]);
    free(token);
    pt_store_close(st);
    return PT_CLI_OK;
}

static int
source_list(const char *datadir, int argc, char **argv)
{
    char *pos[1];
    int npos = 0;
    pt_store *st = NULL;
    pt_webhook_source *list = NULL;
    size_t n = 0;
    pt_cli_opt opts[] = {{NULL, 0, NULL}};

    int rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos, "webhook source list");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((rc = pt_cli_open_store(datadir, &st)) != 0)
        return rc;
    if (pt_store_webhook_source_list(st, &list, &n) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        pt_store_close(st);
        return rc;
    }
    static const char *const heads[] = {"NAME",         "VERIFY", "SECRET",
                                        "DEDUP HEADER", "SCRIPT", "CREATED"};
    pt_cli_table *t = pt_cli_table_new_header(6, heads);
    for (size_t i = 0; t != NULL && i < n; i++) {
        pt_cli_table_adds(t, list[i].name);
        pt_cli_table_adds(t, list[i].verify);
        pt_cli_table_adds(t, list[i].secret != NULL ? list[i].secret : "-");
        pt_cli_table_adds(t, list[i].dedup_header != NULL ? list[i].dedup_header : "-");
        pt_cli_table_adds(t, list[i].script != NULL ? list[i].script : "-");
        pt_cli_table_add_time(t, list[i].created, "-");
    }
    if (n > 0)
        pt_cli_table_print(t, stdout, 1);
    else
        fprintf(stderr, "no webhook sources (add one with 'portico webhook source add NAME')\n");
    pt_cli_table_free(t);
    pt_store_webhook_sources_free(list, n);
    pt_store_close(st);
    return PT_CLI_OK;
}

static int
source_rm(const char *datadir, int argc, char **argv)
{
    return pt_cli_store_name_cmd(datadir, argc, argv, "webhook source rm NAME",
                                 pt_store_webhook_source_rm, "removed webhook source ", "");
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

static const pt_cli_sub source_subs[] = {{"add", NULL, source_add},
                                         {"list", "ls", source_list},
                                         {"rm", NULL, source_rm},
                                         {NULL, NULL, NULL}};

static int
webhook_source(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("webhook source", source_usage, source_subs, datadir, argc, argv);
}

static const pt_cli_sub webhook_subs[] = {
    {"url", NULL, webhook_url},       {"rotate", NULL, webhook_rotate},
    {"events", NULL, webhook_events}, {"replay", NULL, webhook_replay},
    {"source", NULL, webhook_source}, {NULL, NULL, NULL}};

int
pt_cli_webhook(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("webhook", webhook_usage, webhook_subs, datadir, argc, argv);
}
