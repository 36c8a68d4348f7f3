/* cli_webhook.c - `portico webhook url|rotate|events|replay|source`: the install's durable
 * webhook inbox (docs/WEBHOOKS.md), through the admin API (cli_api.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_api.h"
#include "core/err.h"

/* The page size of `webhook events` (the route's largest limit). */
#define EVENTS_PAGE 1000

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

/* Prints the events (a JSON array, borrowed) as a JSON array, one event a line, body_base64
 * as the 0 or 1 the column holds. */
static void
print_events_json(json_t *evs)
{
    size_t i;
    json_t *ev;
    fputc('[', stdout);
    json_array_foreach(evs, i, ev)
    {
        json_t *b64 = json_object_get(ev, "body_base64");
        if (json_is_boolean(b64))
            json_object_set_new(ev, "body_base64", json_integer(json_is_true(b64)));
        char *line = json_dumps(ev, 0);
        printf("%s\n  %s", i > 0 ? "," : "", line != NULL ? line : "{}");
        free(line);
    }
    fputs(json_array_size(evs) > 0 ? "\n]\n" : "]\n", stdout);
}

/* A cell of the table: the member of ev as text, "-" when it is null, missing or "" (at most
 * max_chars characters, 0: no cap). */
static void
event_cell(pt_cli_table *t, json_t *ev, const char *member, size_t max_chars)
{
    json_t *v = json_object_get(ev, member);
    char num[32];
    if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        pt_cli_table_adds(t, num);
        return;
    }
    const char *s = json_string_value(v);
    size_t n = s != NULL ? json_string_length(v) : 0, end = n;
    if (n == 0) {
        pt_cli_table_adds(t, "-");
        return;
    }
    for (size_t i = 0, chars = 0; max_chars > 0 && i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80 && chars++ == max_chars) {
            end = i;
            break;
        }
    }
    pt_cli_table_add(t, s, end);
}

/* Prints the events (a JSON array, borrowed) as a table, or says there are none (after_id: the
 * caller asked for events after an id). */
static void
print_events_table(json_t *evs, int after_id)
{
    static const char *const heads[] = {"ID",    "RECEIVED", "SOURCE",   "METHOD",    "TYPE",
                                        "BYTES", "STATUS",   "ATTEMPTS", "LAST ERROR"};
    static const char *const members[] = {"id",           "received_at", "source", "method",
                                          "content_type", "bytes",       "status", "attempts"};
    size_t i;
    json_t *ev;
    if (json_array_size(evs) == 0) {
        fprintf(stderr, "no events%s\n", after_id ? " after that id" : "");
        return;
    }
    pt_cli_table *t = pt_cli_table_new_header(9, heads);
    json_array_foreach(evs, i, ev)
    {
        for (size_t k = 0; t != NULL && k < 8; k++)
            event_cell(t, ev, members[k], 0);
        if (t != NULL)
            event_cell(t, ev, "last_error", 60);
    }
    if (t != NULL)
        pt_cli_table_print(t, stdout, 1);
    pt_cli_table_free(t);
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

/* `webhook events`: the events after --since, oldest first, through GET /webhooks/events
 * (&after=, &full=1 for --json), a page of at most 1000 at a time up to --limit. */
static int
webhook_events(const char *datadir, int argc, char **argv)
{
    const char *since = NULL, *limit = NULL, *source = NULL, *json = NULL;
    pt_cli_opt opts[] = {{"--since", 1, &since},
                         {"--limit", 1, &limit},
                         {"--source", 1, &source},
                         {"--json", 0, &json},
                         {NULL, 0, NULL}};
    char *pos[1], num[32];
    int npos = 0;
    long since_id = 0, max = 100;
    json_t *all = NULL;

    int rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos,
                          "webhook events [--since ID] [--limit N] [--source NAME] [--json]");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (since != NULL && pt_cli_parse_long(since, 0, INT64_MAX / 2, &since_id) != 0)
        return pt_cli_error("invalid --since '%s' (an event id)", since);
    if (limit != NULL && pt_cli_parse_long(limit, 1, 100000, &max) != 0)
        return pt_cli_error("invalid --limit '%s' (1 to 100000)", limit);
    all = json_array();
    for (long left = max; left > 0;) {
        long page = left < EVENTS_PAGE ? left : EVENTS_PAGE;
        pt_cli_reply rep;
        json_t *q = json_object();
        snprintf(num, sizeof num, "%ld", since_id);
        json_object_set_new(q, "after", json_string(num));
        snprintf(num, sizeof num, "%ld", page);
        json_object_set_new(q, "limit", json_string(num));
        if (source != NULL)
            json_object_set_new(q, "source", json_string(source));
        if (json != NULL)
            json_object_set_new(q, "full", json_string("1"));
        if ((rc = pt_cli_api(datadir, "GET", "/webhooks/events", q, NULL, &rep)) != 0)
            goto done;
        json_t *evs = json_object_get(rep.body, "events");
        size_t n = json_array_size(evs);
        json_array_extend(all, evs);
        if (n > 0)
            since_id = (long)json_integer_value(json_object_get(json_array_get(evs, n - 1), "id"));
        pt_cli_reply_clear(&rep);
        left = n < (size_t)page ? 0 : left - page;
    }
    if (json != NULL)
        print_events_json(all);
    else
        print_events_table(all, since != NULL);
    rc = PT_CLI_OK;
done:
    json_decref(all);
    return rc;
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

static const pt_cli_sub webhook_subs[] = {{"url", NULL, webhook_url, PT_CLI_REMOTE},
                                          {"rotate", NULL, webhook_rotate, PT_CLI_REMOTE},
                                          {"events", NULL, webhook_events, PT_CLI_REMOTE},
                                          {"replay", NULL, webhook_replay, PT_CLI_REMOTE},
                                          {"source", NULL, webhook_source, PT_CLI_REMOTE},
                                          {NULL, NULL, NULL, 0}};

int
pt_cli_webhook(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("webhook", webhook_usage, webhook_subs, datadir, argc, argv);
}
