/* admin_webhooks.c - /webhooks: the install's inbox URL and its rotation, the named sources,
 * and the event log (filters, one event's payload, replay), as `portico webhook` does. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin.h"
#include "core/config.h"
#include "core/err.h"
#include "store/store_webhooks.h"
#include "warehouse/wh.h"

#define EVENTS_LIMIT_MAX 1000

/* {"path": "/webhook/TOKEN", "url": BASE + path}: BASE from ?base=, else $PORTICO_URL (the
 * CLI's --base and variable); without either the answer has the path only. */
static json_t *
url_json(pt_admin_call *c, const char *token, const char *source)
{
    char path[256];
    snprintf(path, sizeof path, "/webhook/%s%s%s", token, source != NULL ? "/" : "",
             source != NULL ? source : "");
    json_t *out = json_pack("{s:s}", "path", path);
    const char *base = pt_admin_query_str(c, "base");
    if (base == NULL || base[0] == '\0')
        base = getenv("PORTICO_URL");
    if (out != NULL && base != NULL && base[0] != '\0') {
        size_t n = strlen(base);
        while (n > 0 && base[n - 1] == '/')
            n--;
        json_object_set_new(out, "url", json_sprintf("%.*s%s", (int)n, base, path));
    }
    return out;
}

static int
url(pt_admin_call *c, pt_admin_reply *r)
{
    char *token = NULL;
    int rc = pt_store_webhook_token(c->store, 1, &token);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = url_json(c, token, NULL);
    free(token);
    return 0;
}

/* The old URL stops accepting events; the audit entry does not hold either token. */
static int
rotate(pt_admin_call *c, pt_admin_reply *r)
{
    char *token = NULL;
    int rc = pt_store_webhook_rotate(c->store, &token);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = url_json(c, token, NULL);
    free(token);
    c->audit = json_pack("{s:s}", "name", "webhook token");
    return 0;
}

/* ---- sources ------------------------------------------------------------------------------ */

static json_t *
source_json(const void *item)
{
    const pt_webhook_source *s = item;
    return json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:I}", "name", s->name, "verify",
                     s->verify, "secret", s->secret, "header", s->header, "dedup_header",
                     s->dedup_header, "script", s->script, "created", (json_int_t)s->created);
}

static int
source_list(pt_admin_call *c, pt_admin_reply *r)
{
    pt_webhook_source *list = NULL;
    size_t n = 0;
    int rc = pt_store_webhook_source_list(c->store, &list, &n);
    rc = pt_admin_list_reply(c, r, rc, "sources", list, n, sizeof *list, source_json);
    pt_store_webhook_sources_free(list, n);
    return rc;
}

/* The refusal of a store call on a source, naming the field it is about. */
static int
fail_source(pt_admin_call *c, pt_admin_reply *r, int rc)
{
    const char *msg = pt_store_errmsg(c->store);
    const char *field = rc == PT_ENOTFOUND && strstr(msg, "script") != NULL ? "script"
                        : rc == PT_ENOTFOUND                                ? NULL
                        : rc == PT_EEXIST                                   ? "name"
                        : strstr(msg, "secret") != NULL                     ? "secret"
                        : strstr(msg, "verif") != NULL                      ? "verify"
                        : strstr(msg, "header") != NULL                     ? "header"
                                                                            : "name";
    return pt_admin_fail_store(r, c->store, rc, field);
}

/* POST /webhooks/sources {name, verify?, secret?, header?, dedup_header?, script?}; secret is
 * the name of a stored secret (never a value). */
static int
source_add(pt_admin_call *c, pt_admin_reply *r)
{
    static const char *const fields[] = {"name",   "verify",       "secret",
                                         "header", "dedup_header", "script"};
    const char *v[6];
    char *token = NULL;
    int rc;

    for (size_t i = 0; i < 6; i++) {
        v[i] = pt_admin_body_str(c, r, fields[i], i == 0);
        if (r->status != 0)
            return -r->status;
    }
    if (v[3] != NULL && (v[1] == NULL || strcmp(v[1], "hmac-sha256") != 0))
        return pt_admin_fail(r, 400, "bad_request", "header",
                             "header applies to verify hmac-sha256 only");
    pt_webhook_source s = {.name = (char *)v[0],
                           .verify = (char *)(v[1] != NULL ? v[1] : "none"),
                           .secret = (char *)v[2],
                           .header = (char *)v[3],
                           .dedup_header = (char *)v[4],
                           .script = (char *)v[5],
                           .created = (int64_t)time(NULL)}; /* as the store stamps it */
    /* The token first: a source is never stored without the URL it is reached by. */
    if ((rc = pt_store_webhook_token(c->store, 1, &token)) != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    if ((rc = pt_store_webhook_source_add(c->store, &s)) != 0) {
        free(token);
        return fail_source(c, r, rc);
    }
    r->status = 201;
    r->body = source_json(&s);
    json_object_set_new(r->body, "webhook", url_json(c, token, s.name));
    free(token);
    c->audit = json_pack("{s:s, s:s, s:s?, s:s?}", "name", s.name, "verify", s.verify, "secret",
                         s.secret, "script", s.script);
    return 0;
}

/* PATCH /webhooks/sources/{name} {verify?, secret?, header?, dedup_header?, script?}: the
 * fields given replace the source's (null clears one; verify null is "none"), the others keep
 * their values. */
static int
source_set(pt_admin_call *c, pt_admin_reply *r)
{
    static const char *const fields[] = {"verify", "secret", "header", "dedup_header", "script"};
    pt_webhook_source *list = NULL, *cur = NULL;
    size_t n = 0;
    const char *key;
    json_t *v;
    int rc;

    if (!json_is_object(c->body))
        return pt_admin_fail(r, 400, "bad_request", NULL, "the body must be a JSON object");
    json_object_foreach(c->body, key, v)
    {
        size_t i = 0;
        while (i < 5 && strcmp(fields[i], key) != 0)
            i++;
        if (i == 5)
            return pt_admin_fail(r, 400, "bad_request", key,
                                 "unknown field '%s' (verify, secret, header, dedup_header, "
                                 "script)",
                                 key);
        if (!json_is_null(v) && !json_is_string(v))
            return pt_admin_fail(r, 400, "bad_request", key, "'%s' must be a string or null", key);
    }
    if ((rc = pt_store_webhook_source_list(c->store, &list, &n)) != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    for (size_t i = 0; i < n && cur == NULL; i++)
        if (strcmp(list[i].name, c->params[0]) == 0)
            cur = &list[i];
    if (cur == NULL) {
        rc = pt_admin_fail(r, 404, "not_found", NULL, "no webhook source named '%s'", c->params[0]);
        goto done;
    }
    pt_webhook_source s = *cur; /* strings borrowed from list or the body */
    const char **slot[] = {(const char **)&s.verify, (const char **)&s.secret,
                           (const char **)&s.header, (const char **)&s.dedup_header,
                           (const char **)&s.script};
    for (size_t i = 0; i < 5; i++)
        if ((v = json_object_get(c->body, fields[i])) != NULL)
            *slot[i] = json_string_value(v); /* NULL for null */
    if (s.verify == NULL)
        s.verify = "none";
    if (s.header != NULL && strcmp(s.verify, "hmac-sha256") != 0) {
        rc = pt_admin_fail(r, 400, "bad_request", "header",
                           "header applies to verify hmac-sha256 only");
        goto done;
    }
    if ((rc = pt_store_webhook_source_update(c->store, &s)) != 0) {
        rc = fail_source(c, r, rc);
        goto done;
    }
    r->body = source_json(&s);
    c->audit = json_pack("{s:s, s:s, s:s?, s:s?}", "name", s.name, "verify", s.verify, "secret",
                         s.secret, "script", s.script);
done:
    pt_store_webhook_sources_free(list, n);
    return rc;
}

static int
source_rm(pt_admin_call *c, pt_admin_reply *r)
{
    int rc = pt_store_webhook_source_rm(c->store, c->params[0]);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = json_pack("{s:s}", "removed", c->params[0]);
    c->audit = json_pack("{s:s}", "name", c->params[0]);
    return 0;
}

/* ---- events ------------------------------------------------------------------------------- */

/* Opens the database where the event log lives (pt_wh_open_events), its schema in schema: 1
 * with *wh when the log exists, 0 when no event was ever received (*wh NULL), or a refusal
 * (negative) in r. */
static int
open_log(pt_admin_call *c, pt_admin_reply *r, pt_wh **wh, char *schema, size_t schemasz)
{
    char err[512];
    *wh = NULL;
    if (pt_wh_open_events(c->datadir, wh, schema, schemasz, err, sizeof err) != 0)
        return pt_admin_fail(r, 503, "unavailable", NULL, "%s", err);
    if (pt_wh_table_exists(*wh, schema, "events") == 1)
        return 1;
    pt_wh_close(*wh);
    *wh = NULL;
    return 0;
}

/* The current row of cur as an object (headers, stored as JSON text, as an object). */
static json_t *
row_json(pt_wh_cursor *cur)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < pt_wh_cursor_ncols(cur); i++) {
        pt_value v;
        const char *name = pt_wh_cursor_colname(cur, i);
        json_t *j;
        pt_wh_cursor_value(cur, i, &v);
        if (v.type == PT_V_NULL)
            j = json_null();
        else if (v.type == PT_V_INT)
            j = strcmp(name, "body_base64") == 0 ? json_boolean(v.u.i) : json_integer(v.u.i);
        else if (strcmp(name, "headers") == 0)
            j = json_loadb(v.u.s.p, v.u.s.n, 0, NULL);
        else
            j = json_stringn(v.u.s.p, v.u.s.n);
        json_object_set_new(o, name, j != NULL ? j : json_null());
    }
    return o;
}

/* A `?name=` that is a whole number in [lo, hi] into *out (unchanged when absent); 0, or a
 * refusal in r. */
static int
query_long(pt_admin_call *c, pt_admin_reply *r, const char *name, long lo, long hi, long *out)
{
    const char *s = pt_admin_query_str(c, name);
    char *end;
    if (s == NULL)
        return 0;
    long v = strtol(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || v < lo || v > hi)
        return pt_admin_fail(r, 400, "bad_request", name, "%s is a number from %ld to %ld", name,
                             lo, hi);
    *out = v;
    return 0;
}

/* The columns of an event in a listing, and with ?full=1 every stored column but the
 * processing bookkeeping (the shape of `portico webhook events --json`). */
#define EVENT_COLS_SHORT                                                                           \
    "id, received_at, source, method, content_type,"                                               \
    " CASE body_base64 WHEN 1 THEN length(body) / 4 * 3"                                           \
    " - (CASE WHEN body LIKE '%==' THEN 2 WHEN body LIKE '%=' THEN 1 ELSE 0"                       \
    " END) ELSE {bytes} END AS bytes, status, attempts, last_error, dedup_key"
#define EVENT_COLS_FULL                                                                            \
    "id, received_at, source, method, path, query_string, headers, content_type, body,"            \
    " body_base64, remote_addr, status, attempts, last_error"
#define EVENT_WHERE                                                                                \
    " FROM {events} WHERE id < ?1 AND id > ?6 AND (?2 = '' OR source = ?2)"                        \
    " AND (?3 = '' OR status = ?3) AND received_at >= ?4"

/* GET /webhooks/events?source=&status=&since=1h&limit=100&before=ID: newest first; when the page
 * is full, "next" is the `before` of the next page. With &after=ID instead of before: the
 * events after that id, oldest first ("next" is the `after` of the next page); &full=1: every
 * column (path, query_string, headers, body, body_base64, remote_addr too). */
static int
events(pt_admin_call *c, pt_admin_reply *r)
{
    long limit = 100, before = 0, after = -1;
    int64_t secs = 0;
    char cutoff[32] = "";
    const char *source = pt_admin_query_str(c, "source");
    const char *status = pt_admin_query_str(c, "status");
    const char *since = pt_admin_query_str(c, "since");
    const char *full = pt_admin_query_str(c, "full");
    pt_wh *wh = NULL;
    pt_wh_cursor *cur = NULL;
    int rc;

    if ((rc = query_long(c, r, "limit", 1, EVENTS_LIMIT_MAX, &limit)) != 0 ||
        (rc = query_long(c, r, "before", 1, INT32_MAX, &before)) != 0 ||
        (rc = query_long(c, r, "after", 0, LONG_MAX / 2, &after)) != 0)
        return rc;
    if (before > 0 && after >= 0)
        return pt_admin_fail(r, 400, "bad_request", "after", "give before or after, not both");
    if (full != NULL && strcmp(full, "0") != 0 && strcmp(full, "1") != 0)
        return pt_admin_fail(r, 400, "bad_request", "full", "full is 0 or 1");
    if (status != NULL && strcmp(status, "received") != 0 && strcmp(status, "pending") != 0 &&
        strcmp(status, "processing") != 0 && strcmp(status, "done") != 0 &&
        strcmp(status, "failed") != 0)
        return pt_admin_fail(r, 400, "bad_request", "status",
                             "status is received, pending, processing, done or failed");
    if (since != NULL) {
        if (pt_config_parse_duration(since, &secs) != 0 || secs <= 0)
            return pt_admin_fail(r, 400, "bad_request", "since",
                                 "since is a duration such as 15m, 1h or 7d");
        time_t t = time(NULL) - (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(cutoff, sizeof cutoff, "%Y-%m-%dT%H:%M:%S", &tm);
    }
    char schema[128], sql[1024];
    if ((rc = open_log(c, r, &wh, schema, sizeof schema)) < 0)
        return rc;
    json_t *arr = json_array();
    int64_t last = 0;
    if (rc == 1) {
        int is_full = full != NULL && strcmp(full, "1") == 0, asc = after >= 0;
        static const char *const tmpl[2][2] = {
            {"SELECT " EVENT_COLS_SHORT EVENT_WHERE " ORDER BY id DESC LIMIT ?5",
             "SELECT " EVENT_COLS_SHORT EVENT_WHERE " ORDER BY id LIMIT ?5"},
            {"SELECT " EVENT_COLS_FULL EVENT_WHERE " ORDER BY id DESC LIMIT ?5",
             "SELECT " EVENT_COLS_FULL EVENT_WHERE " ORDER BY id LIMIT ?5"}};
        pt_value p[6] = {
            {.type = PT_V_INT, .u.i = before > 0 ? before : INT64_MAX},
            {.type = PT_V_TEXT, .u.s = {source ? source : "", source ? strlen(source) : 0}},
            {.type = PT_V_TEXT, .u.s = {status ? status : "", status ? strlen(status) : 0}},
            {.type = PT_V_TEXT, .u.s = {cutoff, strlen(cutoff)}},
            {.type = PT_V_INT, .u.i = limit},
            {.type = PT_V_INT, .u.i = asc ? after : -1}};
        pt_wh_events_sql(wh, schema, tmpl[is_full][asc], sql, sizeof sql);
        rc = pt_wh_exec(wh, sql, p, 6, &cur);
        while (rc == 0 && (rc = pt_wh_cursor_next(cur)) == 1) {
            rc = 0;
            pt_value id;
            pt_wh_cursor_value(cur, 0, &id);
            last = id.u.i;
            json_array_append_new(arr, row_json(cur));
        }
        if (rc < 0) {
            json_decref(arr);
            rc = pt_admin_fail(r, 500, "internal", NULL, "%s", pt_wh_errmsg(wh));
            goto done;
        }
    }
    r->body = json_pack("{s:o*}", "events", arr);
    if (r->body != NULL && json_array_size(arr) == (size_t)limit)
        json_object_set_new(r->body, "next", json_integer(last));
    rc = 0;
done:
    pt_wh_cursor_free(cur);
    pt_wh_close(wh);
    return rc;
}

/* The event id of the path, or a refusal (negative) in r. */
static int64_t
event_id(pt_admin_call *c, pt_admin_reply *r)
{
    char *end;
    long long id = strtoll(c->params[0], &end, 10);
    if (c->params[0][0] == '\0' || *end != '\0' || id < 1)
        return pt_admin_fail(r, 404, "not_found", NULL, "no webhook event '%.40s'", c->params[0]);
    return id;
}

/* GET /webhooks/events/{id}: the event with its headers and body (the payload). */
static int
event(pt_admin_call *c, pt_admin_reply *r)
{
    pt_wh *wh = NULL;
    pt_wh_cursor *cur = NULL;
    int64_t id = event_id(c, r);
    int rc;
    if (id < 0)
        return (int)id;
    char schema[128], sql[512];
    if ((rc = open_log(c, r, &wh, schema, sizeof schema)) < 0)
        return rc;
    if (wh != NULL)
        pt_wh_events_sql(wh, schema,
                         "SELECT id, received_at, source, method, path, query_string, headers,"
                         " content_type, body, body_base64, remote_addr, status, attempts,"
                         " last_error, dedup_key FROM {events} WHERE id = ?1",
                         sql, sizeof sql);
    pt_value p = {.type = PT_V_INT, .u.i = id};
    if (rc == 1)
        rc = pt_wh_exec(wh, sql, &p, 1, &cur);
    else
        rc = PT_ENOTFOUND;
    if (rc == 0 && (rc = pt_wh_cursor_next(cur)) == 1) {
        r->body = row_json(cur);
        rc = 0;
    } else if (rc < 0 && rc != PT_ENOTFOUND) {
        rc = pt_admin_fail(r, 500, "internal", NULL, "%s", pt_wh_errmsg(wh));
    } else {
        rc = pt_admin_fail(r, 404, "not_found", NULL, "no webhook event with id %lld",
                           (long long)id);
    }
    pt_wh_cursor_free(cur);
    pt_wh_close(wh);
    return rc;
}

/* POST /webhooks/events/{id}/replay: hands the event to its source's script again (pending,
 * attempts reset); 409 when its source has no script. */
static int
replay(pt_admin_call *c, pt_admin_reply *r)
{
    pt_webhook_source *srcs = NULL;
    size_t nsrcs = 0;
    pt_wh *wh = NULL;
    pt_wh_cursor *cur = NULL;
    char source[160] = "";
    const char *script = NULL;
    int64_t id = event_id(c, r);
    int rc, found = 0;

    if (id < 0)
        return (int)id;
    if ((rc = pt_store_webhook_source_list(c->store, &srcs, &nsrcs)) != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    char schema[128], sql[256], upd[256];
    if ((rc = open_log(c, r, &wh, schema, sizeof schema)) < 0)
        goto done;
    if (wh != NULL) {
        pt_wh_events_sql(wh, schema, "SELECT source FROM {events} WHERE id = ?1", sql, sizeof sql);
        pt_wh_events_sql(wh, schema,
                         "UPDATE {events} SET status = 'pending', attempts = 0, last_error = NULL,"
                         " next_attempt_at = 0 WHERE id = ?1",
                         upd, sizeof upd);
    }
    pt_value p = {.type = PT_V_INT, .u.i = id};
    if (rc == 1 && pt_wh_exec(wh, sql, &p, 1, &cur) == 0 && pt_wh_cursor_next(cur) == 1) {
        pt_value v;
        pt_wh_cursor_value(cur, 0, &v);
        snprintf(source, sizeof source, "%.*s", (int)v.u.s.n, v.u.s.p);
        found = 1;
    }
    pt_wh_cursor_free(cur);
    cur = NULL;
    for (size_t i = 0; i < nsrcs; i++)
        if (strcmp(srcs[i].name, source) == 0)
            script = srcs[i].script;
    if (!found) {
        rc = pt_admin_fail(r, 404, "not_found", NULL, "no webhook event with id %lld",
                           (long long)id);
    } else if (script == NULL) {
        rc = pt_admin_fail(r, 409, "conflict", NULL,
                           "event %lld came in through %s%s%s, which has no --script to run",
                           (long long)id, source[0] ? "source '" : "the install's own URL", source,
                           source[0] ? "'" : "");
    } else if (pt_wh_exec(wh, upd, &p, 1, &cur) != 0) {
        rc = pt_admin_fail(r, 503, "unavailable", NULL, "%s", pt_wh_errmsg(wh));
    } else {
        r->body = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "status", "pending", "script",
                            script);
        c->audit =
            json_pack("{s:I, s:s, s:s}", "event", (json_int_t)id, "name", source, "script", script);
        rc = 0;
    }
done:
    pt_wh_cursor_free(cur);
    pt_wh_close(wh);
    pt_store_webhook_sources_free(srcs, nsrcs);
    return rc;
}

const pt_admin_route pt_admin_webhooks_routes[] = {
    {"GET", "/webhooks/url", PT_ROLE_VIEWER, url,
     "The install's webhook URL (?base= for the full URL)"},
    {"POST", "/webhooks/rotate", PT_ROLE_ADMIN, rotate,
     "Replace the webhook token (the old URL stops working)"},
    {"GET", "/webhooks/sources", PT_ROLE_VIEWER, source_list, "Webhook sources"},
    {"POST", "/webhooks/sources", PT_ROLE_EDITOR, source_add,
     "Add a source {name, verify?, secret?, header?, dedup_header?, script?}"},
    {"PATCH", "/webhooks/sources/{name}", PT_ROLE_EDITOR, source_set,
     "Change a source's verify, secret, header, dedup_header or script (null clears one)"},
    {"DELETE", "/webhooks/sources/{name}", PT_ROLE_EDITOR, source_rm, "Remove a source"},
    {"GET", "/webhooks/events", PT_ROLE_VIEWER, events,
     "Received events, newest first (?source=&status=&since=&limit=&before=), or oldest first"
     " after an id (&after=ID); &full=1: every column"},
    {"GET", "/webhooks/events/{id}", PT_ROLE_VIEWER, event, "One event with its payload"},
    {"POST", "/webhooks/events/{id}/replay", PT_ROLE_EDITOR, replay,
     "Queue an event for its source's script again"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};
