/* store_runs.c - the record of script runs in the SQLite store (table script_runs, created by
 * schema version 3: see store_schema.c). Writes here never bump the change
 * counter (invariant 7). */
#include "store/store_runs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "store/store_int.h"

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
    pt_db_stmt *stmt = NULL;
    int rc;

    if (r->script == NULL || r->script[0] == '\0' || r->trigger == NULL || r->trigger[0] == '\0') {
        pt_store_seterr(st, "a run needs a script and a trigger");
        return PT_EINVAL;
    }
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    r->started = now_ms();
    rc = pt_store_prepare(
        st,
        "INSERT INTO script_runs(script_id, script, version, trigger, status, started) "
        "VALUES (?1, ?2, ?3, ?4, 'running', ?5) RETURNING id",
        &stmt);
    if (rc == 0) {
        if (r->script_id != 0)
            pt_db_bind_int64(stmt, 1, r->script_id);
        else
            pt_db_bind_null(stmt, 1);
        pt_db_bind_text(stmt, 2, r->script, (size_t)-1);
        pt_db_bind_int64(stmt, 3, r->version);
        pt_db_bind_text(stmt, 4, r->trigger, (size_t)-1);
        pt_db_bind_int64(stmt, 5, r->started);
        rc = pt_db_step(stmt);
        if (rc == PT_DB_ROW) {
            r->id = pt_db_column_int64(stmt, 0);
            rc = pt_db_run(stmt);
        }
        if (rc != 0)
            rc = pt_store_fail(st, rc, "record run");
        pt_db_finalize(stmt);
    }
    return pt_store_finish_quiet(st, rc);
}

int
pt_store_run_finish(pt_store *st, const pt_script_run *r)
{
    pt_db_stmt *stmt = NULL;
    size_t len = r->output != NULL ? r->output_len : 0;
    int64_t dropped = r->output_dropped;
    char missing[64];
    int rc;

    if (!valid_status(r->status) || strcmp(r->status, "running") == 0) {
        pt_store_seterr(st, "a finished run is 'success' or 'error'");
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
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = pt_store_prepare(st,
                          "UPDATE script_runs SET status = ?2, finished = ?3, exit_code = ?4, "
                          "output = coalesce(?5, output), "
                          "output_dropped = CASE WHEN ?5 IS NULL THEN output_dropped ELSE ?6 END, "
                          "error = ?7 WHERE id = ?1",
                          &stmt);
    if (rc == 0) {
        pt_db_bind_int64(stmt, 1, r->id);
        pt_db_bind_text(stmt, 2, r->status, (size_t)-1);
        pt_db_bind_int64(stmt, 3, r->finished != 0 ? r->finished : now_ms());
        pt_db_bind_int64(stmt, 4, r->exit_code);
        if (r->output != NULL)
            pt_db_bind_text(stmt, 5, len > 0 ? r->output : "", len);
        else
            pt_db_bind_null(stmt, 5); /* keep what was recorded */
        pt_db_bind_int64(stmt, 6, dropped);
        pt_db_bind_opt_text(stmt, 7, r->error);
        rc = pt_store_run_stmt(st, stmt, "record the end of a run");
    }
    if (rc == 0) {
        snprintf(missing, sizeof missing, "no run with id %lld", (long long)r->id);
        rc = pt_store_changed_one(st, missing);
    }
    return pt_store_finish_quiet(st, rc);
}

int
pt_store_run_output(pt_store *st, int64_t id, const char *more, size_t len, int64_t dropped)
{
    pt_db_stmt *stmt = NULL;
    int rc;

    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    /* `||` is text concatenation in both engines. */
    rc = pt_store_prepare(st,
                          "UPDATE script_runs SET output = output || ?2, output_dropped = ?3 "
                          "WHERE id = ?1 AND status = 'running'",
                          &stmt);
    if (rc == 0) {
        pt_db_bind_int64(stmt, 1, id);
        pt_db_bind_text(stmt, 2, len > 0 ? more : "", len);
        pt_db_bind_int64(stmt, 3, dropped);
        rc = pt_store_run_stmt(st, stmt, "record the output of a run");
    }
    return pt_store_finish_quiet(st, rc);
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

/* The columns run_read reads; ?output is either `output` or `''` (lists). */
#define RUN_COLS(output)                                                                           \
    "SELECT id, coalesce(script_id, 0), script, version, trigger, status, started, "               \
    "coalesce(finished, 0), coalesce(exit_code, -1), " output ", output_dropped, error "           \
    "FROM script_runs "

/* Fills elem (a zeroed pt_script_run) from a row of RUN_COLS. Returns 0 or PT_ENOMEM. */
static int
run_read(pt_store *st, pt_db_stmt *stmt, void *elem)
{
    pt_script_run *r = elem;
    const char *out;
    int oom = 0;

    (void)st;
    r->id = pt_db_column_int64(stmt, 0);
    r->script_id = pt_db_column_int64(stmt, 1);
    r->script = pt_store_colnull(stmt, 2, &oom);
    r->version = (int)pt_db_column_int64(stmt, 3);
    r->trigger = pt_store_colnull(stmt, 4, &oom);
    r->status = pt_store_colnull(stmt, 5, &oom);
    r->started = pt_db_column_int64(stmt, 6);
    r->finished = pt_db_column_int64(stmt, 7);
    r->exit_code = (int)pt_db_column_int64(stmt, 8);
    out = pt_db_column_text(stmt, 9, &r->output_len);
    r->output = malloc(r->output_len + 1);
    if (r->output != NULL) {
        memcpy(r->output, out, r->output_len);
        r->output[r->output_len] = '\0';
    }
    r->output_dropped = pt_db_column_int64(stmt, 10);
    r->error = pt_store_colnull(stmt, 11, &oom);
    if (oom || r->script == NULL || r->trigger == NULL || r->status == NULL || r->output == NULL)
        return PT_ENOMEM;
    return 0;
}

static const pt_store_kind run_kind = {
    .size = sizeof(pt_script_run), .read = run_read, .clear = run_clear, .what = "list runs"};

void
pt_store_runs_free(pt_script_run *list, size_t n)
{
    pt_store_free_rows(list, n, &run_kind);
}

int
pt_store_run_get(pt_store *st, int64_t id, pt_script_run *out)
{
    pt_db_stmt *stmt = NULL;
    void *list = NULL;
    size_t n = 0;
    char msg[64];
    int rc;

    memset(out, 0, sizeof *out);
    rc = pt_store_prepare(st, RUN_COLS("output") "WHERE id = ?1", &stmt);
    if (rc != 0)
        return rc;
    pt_db_bind_int64(stmt, 1, id);
    rc = pt_store_collect(st, stmt, &run_kind, &list, &n);
    if (rc != 0)
        return rc;
    if (n == 0) {
        snprintf(msg, sizeof msg, "no run with id %lld", (long long)id);
        pt_store_seterr(st, "%s", msg);
        return PT_ENOTFOUND;
    }
    *out = *(pt_script_run *)list;
    free(list); /* the fields moved to *out */
    return 0;
}

/* The filter of pt_store_run_list: ?1 a script id (0: any), ?2 a script name (NULL: any). */
#define RUN_WHERE "WHERE (script_id = ?1 OR ?1 = 0) AND (script = ?2 OR ?2 IS NULL) "

int
pt_store_run_list(pt_store *st, int64_t script_id, const char *script, int64_t limit,
                  int64_t offset, pt_script_run **out, size_t *n, int64_t *total)
{
    pt_db_stmt *stmt = NULL;
    void *list = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    if (total != NULL) {
        rc = pt_store_prepare(st, "SELECT count(*) FROM script_runs " RUN_WHERE, &stmt);
        if (rc != 0)
            return rc;
        pt_db_bind_int64(stmt, 1, script_id);
        pt_db_bind_opt_text(stmt, 2, script);
        rc = pt_db_step(stmt);
        if (rc == PT_DB_ROW) {
            *total = pt_db_column_int64(stmt, 0);
            rc = 0;
        } else {
            rc = pt_store_fail(st, rc == PT_DB_DONE ? PT_EDB : rc, "count runs");
        }
        pt_db_finalize(stmt);
        if (rc != 0)
            return rc;
    }
    rc =
        pt_store_prepare(st, RUN_COLS("''") RUN_WHERE "ORDER BY id DESC LIMIT ?3 OFFSET ?4", &stmt);
    if (rc != 0)
        return rc;
    pt_db_bind_int64(stmt, 1, script_id);
    pt_db_bind_opt_text(stmt, 2, script);
    pt_db_bind_int64(stmt, 3, limit > 0 ? limit : INT64_MAX); /* LIMIT -1 is SQLite's */
    pt_db_bind_int64(stmt, 4, offset > 0 ? offset : 0);
    rc = pt_store_collect(st, stmt, &run_kind, &list, n);
    *out = list;
    return rc;
}
