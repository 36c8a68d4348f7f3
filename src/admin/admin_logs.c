/* admin_logs.c - the stored request log over the admin API: the newest requests with filters,
 * paged with before_id, and one request with what it printed and its traceback. */
#include "admin/admin_logs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/err.h"

#define LOGS_LIMIT_DEFAULT 50
#define LOGS_LIMIT_MAX 1000

int
pt_admin_logs_filter(json_t *query, pt_reqlog_filter *f, pt_admin_reply *r)
{
    const char *status = json_string_value(json_object_get(query, "status"));
    const char *since = json_string_value(json_object_get(query, "since"));
    long long limit = LOGS_LIMIT_DEFAULT, before = 0, after = 0;
    int rc;

    memset(f, 0, sizeof(*f));
    const char *output = json_string_value(json_object_get(query, "output"));
    f->endpoint = json_string_value(json_object_get(query, "endpoint"));
    /* output=1: each row with its printed lines and traceback (as `portico logs` shows). */
    if (output != NULL && strcmp(output, "1") != 0 && strcmp(output, "0") != 0)
        return pt_admin_fail(r, 400, "bad_request", "output", "output is 0 or 1");
    f->with_output = output != NULL && output[0] == '1';
    f->request_id = json_string_value(json_object_get(query, "request_id"));
    if (status != NULL && pt_store_reqlog_parse_status(status, &f->status_min, &f->status_max) != 0)
        return pt_admin_fail(r, 400, "bad_request", "status",
                             "status must be a class such as 5xx or a status such as 500");
    if (since != NULL) {
        int64_t secs;
        if (pt_config_parse_duration(since, &secs) != 0 || secs < 0)
            return pt_admin_fail(r, 400, "bad_request", "since",
                                 "since must be a duration such as 15m, 1h or 7d");
        f->since_ms = ((int64_t)time(NULL) - secs) * 1000;
    }
    if ((rc = pt_admin_query_long(query, "limit", 1, LOGS_LIMIT_MAX, &limit, r)) != 0 ||
        (rc = pt_admin_query_long(query, "before_id", 1, INT64_MAX, &before, r)) != 0 ||
        (rc = pt_admin_query_long(query, "after_id", 0, INT64_MAX, &after, r)) != 0)
        return rc;
    f->limit = (int)limit;
    f->before_id = before;
    f->after_id = after;
    return 0;
}

/* Opens the log for reading; a missing file is an empty log (*db NULL, 0 returned). */
static int
open_log(pt_admin_call *c, pt_admin_reply *r, pt_store_reqlog **db)
{
    char err[512];
    int rc = pt_store_reqlog_open(c->datadir, 1, db, err, sizeof(err));
    if (rc == PT_ENOTFOUND) {
        *db = NULL;
        return 0;
    }
    if (rc != 0)
        return pt_admin_fail(r, 503, "unavailable", NULL, "the request log cannot be read: %s",
                             err);
    return 0;
}

/* GET /logs: {"requests": [...newest first...], "next_before_id": id or null}. */
static int
logs_list(pt_admin_call *c, pt_admin_reply *r)
{
    pt_reqlog_filter f;
    pt_store_reqlog *db = NULL;
    pt_reqlog_row *rows = NULL;
    size_t n = 0;
    int rc;

    if ((rc = pt_admin_logs_filter(c->query, &f, r)) != 0 || (rc = open_log(c, r, &db)) != 0)
        return rc;
    if (db != NULL && (rc = pt_store_reqlog_query(db, &f, &rows, &n)) != 0) {
        rc = pt_admin_fail(r, 503, "unavailable", NULL, "the request log cannot be read: %s",
                           rc == PT_EDB ? pt_store_reqlog_error(db) : pt_strerror(rc));
        goto done;
    }
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++)
        if (json_array_append_new(list, pt_store_reqlog_row_json(&rows[i], f.with_output)) != 0)
            json_decref(list), list = NULL;
    /* A full page may have more below it; paging goes on from its last (oldest) id. */
    r->body =
        json_pack("{s:o*, s:o}", "requests", list, "next_before_id",
                  n > 0 && n == (size_t)f.limit && f.after_id == 0 ? json_integer(rows[n - 1].id)
                                                                   : json_null());
    r->status = 200;
    if (r->body == NULL)
        rc = pt_admin_fail(r, 500, "internal", NULL, "out of memory");
done:
    pt_store_reqlog_rows_free(rows, n);
    pt_store_reqlog_close(db);
    return rc;
}

/* GET /logs/{request_id}: one request, with its printed lines and traceback. */
static int
logs_get(pt_admin_call *c, pt_admin_reply *r)
{
    pt_reqlog_filter f = {.request_id = c->params[0], .limit = 1, .with_output = 1};
    pt_store_reqlog *db = NULL;
    pt_reqlog_row *rows = NULL;
    size_t n = 0;
    int rc;

    if ((rc = open_log(c, r, &db)) != 0)
        return rc;
    if (db != NULL && (rc = pt_store_reqlog_query(db, &f, &rows, &n)) != 0) {
        rc = pt_admin_fail(r, 503, "unavailable", NULL, "the request log cannot be read: %s",
                           rc == PT_EDB ? pt_store_reqlog_error(db) : pt_strerror(rc));
        goto done;
    }
    if (n == 0) {
        rc = pt_admin_fail(r, 404, "not_found", "request_id",
                           "no request %s in the log (pruned, dropped, or not logged yet)",
                           c->params[0]);
        goto done;
    }
    r->status = 200;
    if ((r->body = pt_store_reqlog_row_json(&rows[0], 1)) == NULL)
        rc = pt_admin_fail(r, 500, "internal", NULL, "out of memory");
done:
    pt_store_reqlog_rows_free(rows, n);
    pt_store_reqlog_close(db);
    return rc;
}

/* GET /logs/stream: checks the caller (the dispatcher did) and the filters here, on a pool
 * thread; the answer is a request to the server to start the live tail, which is a long-lived
 * response on the worker's loop (server/reqlog_sse.h): content type PT_ADMIN_EVENT_STREAM and,
 * as the body, the validated query object. */
static int
logs_stream(pt_admin_call *c, pt_admin_reply *r)
{
    pt_reqlog_filter f;
    int rc = pt_admin_logs_filter(c->query, &f, r);
    if (rc != 0)
        return rc;
    char *text = json_dumps(c->query, JSON_COMPACT);
    if (text == NULL)
        return pt_admin_fail(r, 500, "internal", NULL, "out of memory");
    r->raw = text;
    r->raw_len = strlen(text);
    r->content_type = PT_ADMIN_EVENT_STREAM;
    return 0;
}

const pt_admin_route pt_admin_logs_routes[] = {
    {"GET", "/logs", PT_ROLE_VIEWER, logs_list,
     "The request log, newest first: filters endpoint, status, since, request_id; paged with "
     "before_id"},
    {"GET", "/logs/stream", PT_ROLE_VIEWER, logs_stream,
     "The live tail of the request log as Server-Sent Events (filters endpoint, status, "
     "request_id; resumes after Last-Event-ID)"},
    {"GET", "/logs/{request_id}", PT_ROLE_VIEWER, logs_get,
     "One logged request with its printed lines and traceback"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};
