/* store_runs.c - the record of script runs in the SQLite store (table script_runs, created by
 * schema version 3: see the design notes of store_sqlite.c). Writes here never bump the change
 * counter (invariant 7). */
#include "store/store_runs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "store/store_sqlite_int.h"

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
prepare(pt_store *st, const char *sql, sqlite3_stmt **stmt, const char *what)
{
    if (sqlite3_prepare_v2(pt_store_sqlite_db(st), sql, -1, stmt, NULL) != SQLITE_OK) {
        *stmt = NULL;
        return pt_store_sqlite_fail(st, what);
    }
    return 0;
}

static int
valid_status(const char *s)
{
    return s != NULL &&
           (strcmp(s, "running") == 0 || strcmp(s, "success") == 0 || strcmp(s, "error") == 0);
}

int
pt_store_run_start(pt_store *st, pt_script_run *r)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    if (r->script == NULL || r->script[0] == '\0' || r->trigger == NULL || r->trigger[0] == '\0') {
        pt_store_sqlite_seterr(st, "a run needs a script and a trigger");
        return PT_EINVAL;
    }
    rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    r->started = now_ms();
    rc = prepare(st,
                 "INSERT INTO script_runs(script_id, script, version, trigger, status, started) "
                 "VALUES (?1, ?2, ?3, ?4, 'running', ?5)",
                 &stmt, "record run");
    if (rc == 0) {
        if (r->script_id != 0)
            sqlite3_bind_int64(stmt, 1, r->script_id);
        else
            sqlite3_bind_null(stmt, 1);
        sqlite3_bind_text(stmt, 2, r->script, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 3, r->version);
        sqlite3_bind_text(stmt, 4, r->trigger, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 5, r->started);
        rc = pt_store_sqlite_run(st, stmt, "record run");
    }
    if (rc == 0)
        r->id = sqlite3_last_insert_rowid(pt_store_sqlite_db(st));
    return pt_store_sqlite_finish_quiet(st, rc);
}

int
pt_store_run_finish(pt_store *st, const pt_script_run *r)
{
    sqlite3_stmt *stmt = NULL;
    size_t len = r->output != NULL ? r->output_len : 0;
    int64_t dropped = r->output_dropped;
    char missing[64];
    int rc;

    if (!valid_status(r->status) || strcmp(r->status, "running") == 0) {
        pt_store_sqlite_seterr(st, "a finished run is 'success' or 'error'");
        return PT_EINVAL;
    }
    if (len > PT_STORE_RUN_OUTPUT_MAX) {
        /* Cut at a UTF-8 character boundary, so that the stored text stays valid. */
        size_t cut = PT_STORE_RUN_OUTPUT_MAX;
        while (cut > 0 && ((unsigned char)r->output[cut] & 0xc0) == 0x80)
            cut--;
        dropped += (int64_t)(len - cut);
        len = cut;
    }
    rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    rc = prepare(st,
                 "UPDATE script_runs SET status = ?2, finished = ?3, exit_code = ?4, "
                 "output = coalesce(?5, output), "
                 "output_dropped = iif(?5 IS NULL, output_dropped, ?6), error = ?7 WHERE id = ?1",
                 &stmt, "record the end of a run");
    if (rc == 0) {
        sqlite3_bind_int64(stmt, 1, r->id);
        sqlite3_bind_text(stmt, 2, r->status, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, r->finished != 0 ? r->finished : now_ms());
        sqlite3_bind_int(stmt, 4, r->exit_code);
        if (r->output != NULL)
            sqlite3_bind_text(stmt, 5, len > 0 ? r->output : "", (int)len, SQLITE_STATIC);
        else
            sqlite3_bind_null(stmt, 5); /* keep what was recorded */
        sqlite3_bind_int64(stmt, 6, dropped);
        pt_store_sqlite_bind_opt_text(stmt, 7, r->error);
        rc = pt_store_sqlite_run(st, stmt, "record the end of a run");
    }
    if (rc == 0) {
        snprintf(missing, sizeof missing, "no run with id %lld", (long long)r->id);
        rc = pt_store_sqlite_changed_one(st, missing);
    }
    return pt_store_sqlite_finish_quiet(st, rc);
}

void
pt_script_run_clear(pt_script_run *r)
{
    if (r == NULL)
        return;
    free(r->script);
    free(r->trigger);
    free(r->status);
    free(r->output);
    free(r->error);
    memset(r, 0, sizeof *r);
}

static void
run_clear(void *elem)
{
    pt_script_run_clear(elem);
}

static char *
coltext(sqlite3_stmt *stmt, int i, int *oom)
{
    const unsigned char *s = sqlite3_column_text(stmt, i);
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup((const char *)s);
    if (d == NULL)
        *oom = 1;
    return d;
}

/* The columns run_read reads; ?output is either `output` or `''` (lists). */
#define RUN_COLS(output)                                                                           \
    "SELECT id, coalesce(script_id, 0), script, version, trigger, status, started, "               \
    "coalesce(finished, 0), coalesce(exit_code, -1), " output ", output_dropped, error "           \
    "FROM script_runs "

/* Fills elem (a zeroed pt_script_run) from a row of RUN_COLS. Returns 0 or PT_ENOMEM. */
static int
run_read(pt_store *st, sqlite3_stmt *stmt, void *elem)
{
    pt_script_run *r = elem;
    int oom = 0;

    (void)st;
    r->id = sqlite3_column_int64(stmt, 0);
    r->script_id = sqlite3_column_int64(stmt, 1);
    r->script = coltext(stmt, 2, &oom);
    r->version = sqlite3_column_int(stmt, 3);
    r->trigger = coltext(stmt, 4, &oom);
    r->status = coltext(stmt, 5, &oom);
    r->started = sqlite3_column_int64(stmt, 6);
    r->finished = sqlite3_column_int64(stmt, 7);
    r->exit_code = sqlite3_column_int(stmt, 8);
    r->output_len = (size_t)sqlite3_column_bytes(stmt, 9);
    r->output = coltext(stmt, 9, &oom);
    r->output_dropped = sqlite3_column_int64(stmt, 10);
    r->error = coltext(stmt, 11, &oom);
    if (oom || r->script == NULL || r->trigger == NULL || r->status == NULL || r->output == NULL)
        return PT_ENOMEM;
    return 0;
}

static const pt_store_rowkind run_kind = {
    .size = sizeof(pt_script_run), .read = run_read, .clear = run_clear, .what = "list runs"};

void
pt_store_runs_free(pt_script_run *list, size_t n)
{
    pt_store_sqlite_free_rows(list, n, &run_kind);
}

int
pt_store_run_get(pt_store *st, int64_t id, pt_script_run *out)
{
    sqlite3_stmt *stmt = NULL;
    void *list = NULL;
    size_t n = 0;
    char msg[64];
    int rc;

    memset(out, 0, sizeof *out);
    rc = prepare(st, RUN_COLS("output") "WHERE id = ?1", &stmt, "get run");
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, id);
    rc = pt_store_sqlite_rows(st, stmt, &run_kind, &list, &n);
    if (rc != 0)
        return rc;
    if (n == 0) {
        snprintf(msg, sizeof msg, "no run with id %lld", (long long)id);
        pt_store_sqlite_seterr(st, msg);
        return PT_ENOTFOUND;
    }
    *out = *(pt_script_run *)list;
    free(list); /* the fields moved to *out */
    return 0;
}

/* The filter of pt_store_run_list: ?1 a script id (0: any), ?2 a script name (NULL: any). */
#define RUN_WHERE "WHERE (?1 = 0 OR script_id = ?1) AND (?2 IS NULL OR script = ?2) "

int
pt_store_run_list(pt_store *st, int64_t script_id, const char *script, int64_t limit,
                  int64_t offset, pt_script_run **out, size_t *n, int64_t *total)
{
    sqlite3_stmt *stmt = NULL;
    void *list = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    if (total != NULL) {
        rc = prepare(st, "SELECT count(*) FROM script_runs " RUN_WHERE, &stmt, "count runs");
        if (rc != 0)
            return rc;
        sqlite3_bind_int64(stmt, 1, script_id);
        pt_store_sqlite_bind_opt_text(stmt, 2, script);
        if (sqlite3_step(stmt) == SQLITE_ROW)
            *total = sqlite3_column_int64(stmt, 0);
        else
            rc = pt_store_sqlite_fail(st, "count runs");
        sqlite3_finalize(stmt);
        if (rc != 0)
            return rc;
    }
    rc = prepare(st, RUN_COLS("''") RUN_WHERE "ORDER BY id DESC LIMIT ?3 OFFSET ?4", &stmt,
                 "list runs");
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, script_id);
    pt_store_sqlite_bind_opt_text(stmt, 2, script);
    sqlite3_bind_int64(stmt, 3, limit > 0 ? limit : -1);
    sqlite3_bind_int64(stmt, 4, offset > 0 ? offset : 0);
    rc = pt_store_sqlite_rows(st, stmt, &run_kind, &list, n);
    *out = list;
    return rc;
}
