/* store_reqlog.c - the stored request log in DATA/logs/requests.db (see store_reqlog.h for why
 * it is a file of its own): append in batches, prune from the old end, query with filters. */
#include "store/store_reqlog.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"

struct pt_store_reqlog {
    sqlite3 *db;
    sqlite3_stmt *insert; /* prepared once: the writer inserts every row with it */
    char err[256];
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS requests ("
    " id INTEGER PRIMARY KEY,"
    " ts_ms INTEGER NOT NULL,"
    " request_id TEXT NOT NULL,"
    " endpoint TEXT,"
    " method TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " status INTEGER NOT NULL,"
    " duration_ms REAL NOT NULL,"
    " bytes_in INTEGER NOT NULL,"
    " bytes_out INTEGER NOT NULL,"
    " caller_type TEXT,"
    " caller_id TEXT,"
    " caller_name TEXT,"
    " worker INTEGER NOT NULL,"
    " printed TEXT,"
    " traceback TEXT);"
    "CREATE INDEX IF NOT EXISTS requests_request_id ON requests(request_id);";

static int
fail(pt_store_reqlog *db, const char *what)
{
    snprintf(db->err, sizeof(db->err), "%s: %s", what, sqlite3_errmsg(db->db));
    return PT_EDB;
}

int
pt_store_reqlog_open(const char *datadir, int readonly, pt_store_reqlog **out, char *err,
                     size_t errsz)
{
    char path[4096];
    pt_store_reqlog *db = NULL;
    int rc = PT_EDB;

    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/logs", datadir) >= (int)sizeof(path)) {
        snprintf(err, errsz, "data dir path too long");
        return PT_EINVAL;
    }
    if (!readonly && mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create %s: %s", path, strerror(errno));
        return PT_EIO;
    }
    strcat(path, "/requests.db");
    if (readonly && access(path, F_OK) != 0) {
        snprintf(err, errsz, "no request log yet (%s): the server writes it", path);
        return PT_ENOTFOUND;
    }
    if ((db = calloc(1, sizeof(*db))) == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    /* Read-only users open it read-write too: WAL readers need the -shm file, which a reader
     * may have to create; they never write rows. */
    if (sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, errsz, "cannot open %s: %s", path,
                 db->db != NULL ? sqlite3_errmsg(db->db) : "out of memory");
        goto fail;
    }
    /* A writer thread waits for another worker's batch; readers for a checkpoint. */
    sqlite3_busy_timeout(db->db, 5000);
    if (sqlite3_exec(db->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     NULL) != SQLITE_OK ||
        (!readonly && sqlite3_exec(db->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK)) {
        snprintf(err, errsz, "cannot set up %s: %s", path, sqlite3_errmsg(db->db));
        goto fail;
    }
    *out = db;
    return 0;
fail:
    pt_store_reqlog_close(db);
    return rc;
}

void
pt_store_reqlog_close(pt_store_reqlog *db)
{
    if (db == NULL)
        return;
    sqlite3_finalize(db->insert);
    sqlite3_close(db->db);
    free(db);
}

const char *
pt_store_reqlog_error(pt_store_reqlog *db)
{
    return db->err;
}

static void
bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v != NULL)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

int
pt_store_reqlog_insert(pt_store_reqlog *db, const pt_reqlog_row *rows, size_t n)
{
    int rc = 0;

    if (n == 0)
        return 0;
    if (db->insert == NULL &&
        sqlite3_prepare_v2(db->db,
                           "INSERT INTO requests(ts_ms, request_id, endpoint, method, path, "
                           "status, duration_ms, bytes_in, bytes_out, caller_type, caller_id, "
                           "caller_name, worker, printed, traceback) VALUES "
                           "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                           -1, &db->insert, NULL) != SQLITE_OK)
        return fail(db, "prepare insert");
    if (sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return fail(db, "begin");
    for (size_t i = 0; i < n && rc == 0; i++) {
        const pt_reqlog_row *r = &rows[i];
        sqlite3_stmt *s = db->insert;
        sqlite3_bind_int64(s, 1, r->ts_ms);
        bind_text(s, 2, r->request_id);
        bind_text(s, 3, r->endpoint);
        bind_text(s, 4, r->method);
        bind_text(s, 5, r->path);
        sqlite3_bind_int(s, 6, r->status);
        sqlite3_bind_double(s, 7, r->duration_ms);
        sqlite3_bind_int64(s, 8, r->bytes_in);
        sqlite3_bind_int64(s, 9, r->bytes_out);
        bind_text(s, 10, r->caller_type);
        bind_text(s, 11, r->caller_id);
        bind_text(s, 12, r->caller_name);
        sqlite3_bind_int(s, 13, r->worker);
        bind_text(s, 14, r->printed);
        bind_text(s, 15, r->traceback);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = fail(db, "insert");
        sqlite3_reset(s);
    }
    sqlite3_clear_bindings(db->insert);
    if (rc == 0 && sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = fail(db, "commit");
    if (rc != 0)
        sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Runs one DELETE with up to one integer parameter; adds the rows it deleted to *deleted. */
static int
delete_rows(pt_store_reqlog *db, const char *sql, int64_t param, long long *deleted)
{
    sqlite3_stmt *s = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(db->db, sql, -1, &s, NULL) != SQLITE_OK)
        return fail(db, "prepare prune");
    sqlite3_bind_int64(s, 1, param);
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = fail(db, "prune");
    else
        *deleted += sqlite3_changes(db->db);
    sqlite3_finalize(s);
    return rc;
}

int
pt_store_reqlog_prune(pt_store_reqlog *db, int64_t min_ts_ms, long long max_rows,
                      long long *deleted)
{
    long long gone = 0;
    int rc = 0;

    /* Ids grow with time and only the old end is deleted, so both bounds are an id range:
     * no index on the time needed, and the cost is the rows that go. */
    if (max_rows > 0)
        rc = delete_rows(db,
                         "DELETE FROM requests WHERE id <= "
                         "(SELECT max(id) FROM requests) - ?1",
                         max_rows, &gone);
    if (rc == 0 && min_ts_ms > 0)
        rc = delete_rows(db,
                         "DELETE FROM requests WHERE id < coalesce("
                         "(SELECT id FROM requests WHERE ts_ms >= ?1 ORDER BY id LIMIT 1), "
                         "(SELECT max(id) + 1 FROM requests))",
                         min_ts_ms, &gone);
    if (deleted != NULL)
        *deleted = gone;
    return rc;
}

long long
pt_store_reqlog_last_id(pt_store_reqlog *db)
{
    sqlite3_stmt *s = NULL;
    long long id = 0;

    if (sqlite3_prepare_v2(db->db, "SELECT coalesce(max(id), 0) FROM requests", -1, &s, NULL) !=
        SQLITE_OK)
        return fail(db, "last id");
    if (sqlite3_step(s) == SQLITE_ROW)
        id = sqlite3_column_int64(s, 0);
    else
        id = fail(db, "last id");
    sqlite3_finalize(s);
    return id;
}

/* A copy of column i's text, NULL for NULL; *oom set when the copy failed. */
static char *
col_text(sqlite3_stmt *s, int i, int *oom)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    if (t == NULL)
        return NULL;
    char *c = strdup((const char *)t);
    if (c == NULL)
        *oom = 1;
    return c;
}

int
pt_store_reqlog_query(pt_store_reqlog *db, const pt_reqlog_filter *f, pt_reqlog_row **rows,
                      size_t *n)
{
    /* One statement: every filter is a bound parameter that a NULL switches off, so no SQL is
     * assembled from input. */
    static const char sql_newest[] =
        "SELECT id, ts_ms, request_id, endpoint, method, path, status, duration_ms, bytes_in, "
        "bytes_out, caller_type, caller_id, caller_name, worker, "
        "CASE WHEN ?8 THEN printed END, CASE WHEN ?8 THEN traceback END FROM requests "
        "WHERE (?1 IS NULL OR endpoint = ?1) AND (?2 IS NULL OR status BETWEEN ?2 AND ?3) "
        "AND (?4 IS NULL OR ts_ms >= ?4) AND (?5 IS NULL OR request_id = ?5) "
        "AND (?6 IS NULL OR id < ?6) AND (?7 IS NULL OR id > ?7) ";
    char sql[1024];
    sqlite3_stmt *s = NULL;
    pt_reqlog_row *out = NULL;
    size_t count = 0;
    int limit = f->limit > 0 ? f->limit : 100, oom = 0, rc = 0, step;

    *rows = NULL;
    *n = 0;
    snprintf(sql, sizeof(sql), "%s ORDER BY id %s LIMIT ?9", sql_newest,
             f->after_id > 0 ? "ASC" : "DESC");
    if (sqlite3_prepare_v2(db->db, sql, -1, &s, NULL) != SQLITE_OK)
        return fail(db, "prepare query");
    bind_text(s, 1, f->endpoint != NULL && f->endpoint[0] != '\0' ? f->endpoint : NULL);
    if (f->status_min > 0 || f->status_max > 0) {
        sqlite3_bind_int(s, 2, f->status_min);
        sqlite3_bind_int(s, 3, f->status_max);
    }
    if (f->since_ms > 0)
        sqlite3_bind_int64(s, 4, f->since_ms);
    bind_text(s, 5, f->request_id != NULL && f->request_id[0] != '\0' ? f->request_id : NULL);
    if (f->before_id > 0)
        sqlite3_bind_int64(s, 6, f->before_id);
    if (f->after_id > 0)
        sqlite3_bind_int64(s, 7, f->after_id);
    sqlite3_bind_int(s, 8, f->with_output != 0);
    sqlite3_bind_int(s, 9, limit);
    if ((out = calloc((size_t)limit, sizeof(*out))) == NULL) {
        rc = PT_ENOMEM;
        goto done;
    }
    while ((step = sqlite3_step(s)) == SQLITE_ROW && !oom) {
        pt_reqlog_row *r = &out[count++];
        r->id = sqlite3_column_int64(s, 0);
        r->ts_ms = sqlite3_column_int64(s, 1);
        r->request_id = col_text(s, 2, &oom);
        r->endpoint = col_text(s, 3, &oom);
        r->method = col_text(s, 4, &oom);
        r->path = col_text(s, 5, &oom);
        r->status = sqlite3_column_int(s, 6);
        r->duration_ms = sqlite3_column_double(s, 7);
        r->bytes_in = sqlite3_column_int64(s, 8);
        r->bytes_out = sqlite3_column_int64(s, 9);
        r->caller_type = col_text(s, 10, &oom);
        r->caller_id = col_text(s, 11, &oom);
        r->caller_name = col_text(s, 12, &oom);
        r->worker = sqlite3_column_int(s, 13);
        r->printed = col_text(s, 14, &oom);
        r->traceback = col_text(s, 15, &oom);
    }
    if (oom)
        rc = PT_ENOMEM;
    else if (step != SQLITE_DONE)
        rc = fail(db, "query");
done:
    sqlite3_finalize(s);
    if (rc != 0) {
        pt_store_reqlog_rows_free(out, count);
        return rc;
    }
    if (count == 0) {
        free(out);
        out = NULL;
    }
    *rows = out;
    *n = count;
    return 0;
}

void
pt_store_reqlog_rows_free(pt_reqlog_row *rows, size_t n)
{
    for (size_t i = 0; rows != NULL && i < n; i++) {
        pt_reqlog_row *r = &rows[i];
        free(r->request_id);
        free(r->endpoint);
        free(r->method);
        free(r->path);
        free(r->caller_type);
        free(r->caller_id);
        free(r->caller_name);
        free(r->printed);
        free(r->traceback);
    }
    free(rows);
}

int
pt_store_reqlog_parse_status(const char *s, int *min, int *max)
{
    if (s == NULL)
        return PT_EINVAL;
    if (strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') &&
        (s[2] == 'x' || s[2] == 'X')) {
        *min = (s[0] - '0') * 100;
        *max = *min + 99;
        return 0;
    }
    if (strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
        s[2] <= '9') {
        *min = *max = atoi(s);
        return 0;
    }
    return PT_EINVAL;
}

void
pt_store_reqlog_format_time(int64_t ts_ms, char *out, size_t outsz)
{
    time_t secs = (time_t)(ts_ms / 1000);
    struct tm tm;
    char buf[32];

    gmtime_r(&secs, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outsz, "%s.%03dZ", buf, (int)(ts_ms % 1000));
}

/* A JSON string of s[0..n), with '?' for each byte of s that is not ASCII when s is not valid
 * UTF-8 (a raw path may be anything). NULL when out of memory. */
static json_t *
text(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    char *copy;

    if (j != NULL || (copy = malloc(n + 1)) == NULL)
        return j;
    for (size_t i = 0; i < n; i++)
        copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    j = json_stringn(copy, n);
    free(copy);
    return j;
}

/* text() for a possibly absent (NULL) string: null then. */
static json_t *
str_or_null(const char *s)
{
    return s != NULL ? text(s, strlen(s)) : json_null();
}

json_t *
pt_store_reqlog_row_json(const pt_reqlog_row *r, int with_output)
{
    char when[40];
    json_t *o = json_object(), *caller = NULL, *lines = NULL;

    if (o == NULL)
        return NULL;
    pt_store_reqlog_format_time(r->ts_ms, when, sizeof(when));
    if (r->caller_type != NULL)
        caller = json_pack("{s:o, s:o, s:o}", "type", str_or_null(r->caller_type), "id",
                           str_or_null(r->caller_id), "name", str_or_null(r->caller_name));
    int bad = json_object_set_new(o, "id", json_integer(r->id)) ||
              json_object_set_new(o, "time", json_string(when)) ||
              json_object_set_new(o, "request_id", str_or_null(r->request_id)) ||
              json_object_set_new(o, "endpoint", str_or_null(r->endpoint)) ||
              json_object_set_new(o, "method", str_or_null(r->method)) ||
              json_object_set_new(o, "path", str_or_null(r->path)) ||
              json_object_set_new(o, "status", json_integer(r->status)) ||
              json_object_set_new(o, "duration_ms", json_real(r->duration_ms)) ||
              json_object_set_new(o, "bytes_in", json_integer(r->bytes_in)) ||
              json_object_set_new(o, "bytes_out", json_integer(r->bytes_out)) ||
              json_object_set_new(o, "caller", caller != NULL ? caller : json_null()) ||
              json_object_set_new(o, "worker", json_integer(r->worker));
    if (!bad && with_output) {
        lines = json_array();
        for (const char *p = r->printed; !bad && lines != NULL && p != NULL && *p != '\0';) {
            const char *nl = strchr(p, '\n');
            size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
            bad = json_array_append_new(lines, text(p, n)) != 0;
            p += n + (nl != NULL);
        }
        bad = bad || lines == NULL || json_object_set_new(o, "printed", lines) ||
              json_object_set_new(o, "traceback", str_or_null(r->traceback));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
