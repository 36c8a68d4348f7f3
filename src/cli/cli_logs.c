/* cli_logs.c - `portico logs`: the stored request log, filtered, as text or JSON, and --follow
 * to print new requests as the server logs them: on the data dir from the log file, with
 * --server from GET /logs and the live tail GET /logs/stream (Server-Sent Events). */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_api.h"
#include "core/config.h"
#include "core/err.h"
#include "store/store_reqlog.h"

static const char logs_usage[] =
    "logs [--endpoint E] [--status 5xx|500|4xx] [--since 1h] [--request-id ID] [--limit N] "
    "[--json] [--follow]";

/* How often --follow looks for new rows. */
#define FOLLOW_POLL_NS 200000000L

/* Prints each line of text (may be NULL) with prefix. */
static void
print_lines(const char *prefix, const char *text)
{
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        int n = nl != NULL ? (int)(nl - p) : (int)strlen(p);
        printf("%s%.*s\n", prefix, n, p);
        p += n + (nl != NULL);
    }
}

/* String member key of o, or "-". Borrowed. */
static const char *
str_or_dash(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "-";
}

/* One row (its JSON with output, as pt_store_reqlog_row_json or GET /logs?output=1 give it):
 * as a JSON line, or as text (one line, then what it printed and its traceback). */
static int
print_row(json_t *o, int json)
{
    if (json) {
        char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s == NULL)
            return pt_cli_error("out of memory");
        puts(s);
        free(s);
        return 0;
    }
    char caller[256] = "";
    json_t *c = json_object_get(o, "caller");
    if (json_is_object(c)) {
        const char *name = json_string_value(json_object_get(c, "name"));
        snprintf(caller, sizeof(caller), " caller=%s:%s", str_or_dash(c, "type"),
                 name != NULL ? name : str_or_dash(c, "id"));
    }
    printf("%s %s %s %s endpoint=%s status=%d duration=%.3fms in=%lld out=%lld%s worker=%d\n",
           str_or_dash(o, "time"), str_or_dash(o, "request_id"), str_or_dash(o, "method"),
           str_or_dash(o, "path"), str_or_dash(o, "endpoint"),
           (int)json_integer_value(json_object_get(o, "status")),
           json_number_value(json_object_get(o, "duration_ms")),
           (long long)json_integer_value(json_object_get(o, "bytes_in")),
           (long long)json_integer_value(json_object_get(o, "bytes_out")), caller,
           (int)json_integer_value(json_object_get(o, "worker")));
    size_t i;
    json_t *line;
    json_array_foreach(json_object_get(o, "printed"), i, line)
    {
        printf("  | %s\n", json_string_value(line) != NULL ? json_string_value(line) : "");
    }
    print_lines("  ! ", json_string_value(json_object_get(o, "traceback")));
    return 0;
}

/* print_row of a row of the store. */
static int
print_store_row(const pt_reqlog_row *r, int json)
{
    json_t *o = pt_store_reqlog_row_json(r, 1);
    int rc = o != NULL ? print_row(o, json) : pt_cli_error("out of memory");
    json_decref(o);
    return rc;
}

/* --follow through --server: one event of GET /logs/stream, a row. */
static int
follow_event(const char *data, size_t n, void *ctx)
{
    json_t *o = json_loadb(data, n, 0, NULL);
    int rc = o != NULL ? print_row(o, *(const int *)ctx) : 0;
    json_decref(o);
    fflush(stdout);
    return rc;
}

/* `portico logs` through --server: GET /logs with the filters (rows with their output), and
 * for --follow the live tail (GET /logs/stream) after the newest row. Prints as on the data
 * dir. */
static int
logs_remote(json_t *filters, long lim, int json, int follow)
{
    char num[24];
    pt_cli_reply rep;
    int rc;

    snprintf(num, sizeof num, "%ld", lim);
    json_t *q = json_deep_copy(filters);
    json_object_set_new(q, "limit", json_string(num));
    if ((rc = pt_cli_api(NULL, "GET", "/logs", q, NULL, &rep)) != 0)
        goto out;
    json_t *rows = json_object_get(rep.body, "requests");
    if (json && !follow) {
        char *s = json_dumps(rows, JSON_INDENT(2));
        if (s == NULL)
            rc = pt_cli_error("out of memory");
        else
            puts(s);
        free(s);
        goto done;
    }
    for (size_t i = json_array_size(rows); i > 0 && rc == 0; i--)
        rc = print_row(json_array_get(rows, i - 1), json);
    if (rc != 0 || !follow)
        goto done;
    /* Follow from the newest row that matched, or from the newest of all. */
    json_int_t last = json_integer_value(json_object_get(json_array_get(rows, 0), "id"));
    pt_cli_reply_clear(&rep);
    if (last == 0) {
        if ((rc = pt_cli_api(NULL, "GET", "/logs", json_pack("{s:s}", "limit", "1"), NULL, &rep)) !=
            0)
            goto out;
        last = json_integer_value(
            json_object_get(json_array_get(json_object_get(rep.body, "requests"), 0), "id"));
    }
    fflush(stdout);
    signal(SIGPIPE, SIG_DFL);
    snprintf(num, sizeof num, "%lld", (long long)last);
    q = json_deep_copy(filters);
    json_object_set_new(q, "after_id", json_string(num));
    rc = pt_cli_api_events("/logs/stream", q, follow_event, &json);
done:
    pt_cli_reply_clear(&rep);
out:
    return rc;
}

/* Waits for the log file to exist (a server not started yet); returns the open log. */
static int
open_log(const char *datadir, int follow, pt_store_reqlog **db)
{
    char err[512];
    struct timespec pause = {0, FOLLOW_POLL_NS};
    int rc;

    while ((rc = pt_store_reqlog_open(datadir, 1, db, err, sizeof(err))) == PT_ENOTFOUND && follow)
        nanosleep(&pause, NULL);
    if (rc == PT_ENOTFOUND)
        return 1; /* nothing logged yet: nothing to print */
    if (rc != 0)
        return pt_cli_error("%s", err);
    return 0;
}

int
pt_cli_logs(const char *datadir, int argc, char **argv)
{
    const char *endpoint = NULL, *status = NULL, *since = NULL, *request_id = NULL;
    const char *limit = NULL, *json = NULL, *follow = NULL;
    pt_cli_opt opts[] = {
        {"--endpoint", 1, &endpoint},     {"--status", 1, &status}, {"--since", 1, &since},
        {"--request-id", 1, &request_id}, {"--limit", 1, &limit},   {"--json", 0, &json},
        {"--follow", 0, &follow},         {"-f", 0, &follow},       {NULL, 0, NULL}};
    pt_reqlog_filter f = {0};
    pt_store_reqlog *db = NULL;
    pt_reqlog_row *rows = NULL;
    size_t n = 0;
    char *pos[1];
    long lim = 20;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos, logs_usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (status != NULL && pt_store_reqlog_parse_status(status, &f.status_min, &f.status_max) != 0)
        return pt_cli_error("invalid --status '%s' (a class such as 5xx or 4xx, or a status "
                            "such as 500)",
                            status);
    if (since != NULL) {
        int64_t secs;
        if (pt_config_parse_duration(since, &secs) != 0 || secs < 0)
            return pt_cli_error("invalid --since '%s' (a duration such as 90s, 15m, 1h or 7d)",
                                since);
        f.since_ms = ((int64_t)time(NULL) - secs) * 1000;
    }
    if (limit != NULL && pt_cli_parse_long(limit, 1, 10000, &lim) != 0)
        return pt_cli_error("invalid --limit '%s' (1 to 10000)", limit);
    if (pt_cli_api_server() != NULL) {
        json_t *filters =
            json_pack("{s:s, s:s*, s:s*, s:s*, s:s*}", "output", "1", "endpoint", endpoint,
                      "status", status, "since", since, "request_id", request_id);
        rc = logs_remote(filters, lim, json != NULL, follow != NULL);
        json_decref(filters);
        return rc;
    }
    if (pt_cli_need_datadir(datadir) != 0)
        return PT_CLI_ERROR;
    f.endpoint = endpoint;
    f.request_id = request_id;
    f.limit = (int)lim;
    f.with_output = 1;

    rc = open_log(datadir, follow != NULL, &db);
    if (rc != 0) {
        if (rc == 1 && json != NULL)
            puts("[]");
        return rc == 1 ? 0 : rc;
    }
    /* The newest rows, printed oldest first as a log reads (JSON without --follow: an array,
     * newest first, as the admin API gives it). */
    if ((rc = pt_store_reqlog_query(db, &f, &rows, &n)) != 0) {
        rc = pt_cli_error("cannot read the request log: %s",
                          rc == PT_EDB ? pt_store_reqlog_error(db) : pt_strerror(rc));
        goto done;
    }
    if (json != NULL && follow == NULL) {
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < n; i++)
            if (json_array_append_new(a, pt_store_reqlog_row_json(&rows[i], 1)) != 0)
                json_decref(a), a = NULL;
        char *s = a != NULL ? json_dumps(a, JSON_INDENT(2)) : NULL;
        json_decref(a);
        if (s == NULL) {
            rc = pt_cli_error("out of memory");
            goto done;
        }
        puts(s);
        free(s);
        goto done;
    }
    for (size_t i = n; i > 0 && rc == 0; i--)
        rc = print_store_row(&rows[i - 1], json != NULL);
    if (follow == NULL)
        goto done;

    /* Follow: poll the file for rows after the newest seen, oldest first. */
    /* Nothing matched: start after what exists now. */
    long long last = n > 0 ? rows[0].id : 0;
    if (n == 0 && (last = pt_store_reqlog_last_id(db)) < 0)
        last = 0;
    fflush(stdout);
    signal(SIGPIPE, SIG_DFL);
    f.limit = 1000;
    for (;;) {
        pt_store_reqlog_rows_free(rows, n);
        rows = NULL;
        n = 0;
        f.after_id = last;
        f.before_id = 0;
        if (pt_store_reqlog_query(db, &f, &rows, &n) != 0) {
            rc = pt_cli_error("cannot read the request log: %s", pt_store_reqlog_error(db));
            goto done;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = print_store_row(&rows[i], json != NULL);
            last = rows[i].id;
        }
        if (rc != 0)
            goto done;
        fflush(stdout);
        if (n < (size_t)f.limit) {
            struct timespec pause = {0, FOLLOW_POLL_NS};
            nanosleep(&pause, NULL);
        }
    }
done:
    pt_store_reqlog_rows_free(rows, n);
    pt_store_reqlog_close(db);
    return rc;
}
