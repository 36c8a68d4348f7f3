/* store_audit.c - the audit log in the metadata store (table audit, created by schema
 * version 5, store_schema.c), over the SQL driver. Entries are appended, never changed. */
#include "store/store_audit.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "core/err.h"
#include "store/store_int.h"

int
pt_store_audit_add(pt_store *st, const char *actor, const char *action, const char *object,
                   const char *detail)
{
    pt_db_stmt *stmt = NULL;
    struct timespec ts;
    int rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    clock_gettime(CLOCK_REALTIME, &ts);
    rc = pt_store_prepare(st,
                          "INSERT INTO audit(time, actor, action, object, detail) "
                          "VALUES (?1, ?2, ?3, ?4, ?5)",
                          &stmt);
    if (rc == 0) {
        pt_db_bind_int64(stmt, 1, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        pt_db_bind_text(stmt, 2, actor, (size_t)-1);
        pt_db_bind_text(stmt, 3, action, (size_t)-1);
        pt_db_bind_text(stmt, 4, object != NULL ? object : "", (size_t)-1);
        pt_db_bind_text(stmt, 5, detail != NULL ? detail : "{}", (size_t)-1);
        rc = pt_store_run_stmt(st, stmt, "write audit entry");
    }
    return pt_store_finish_quiet(st, rc);
}

static int
read_entry(pt_store *st, pt_db_stmt *stmt, void *elem)
{
    pt_audit_entry *e = elem;
    (void)st;
    e->id = pt_db_column_int64(stmt, 0);
    e->time = pt_db_column_int64(stmt, 1);
    e->actor = pt_store_coldup(stmt, 2);
    e->action = pt_store_coldup(stmt, 3);
    e->object = pt_store_coldup(stmt, 4);
    e->detail = pt_store_coldup(stmt, 5);
    return e->actor && e->action && e->object && e->detail ? 0 : PT_ENOMEM;
}

static void
clear_entry(void *elem)
{
    pt_audit_entry *e = elem;
    free(e->actor);
    free(e->action);
    free(e->object);
    free(e->detail);
}

static const pt_store_kind entry_kind = {.size = sizeof(pt_audit_entry),
                                         .read = read_entry,
                                         .clear = clear_entry,
                                         .what = "list audit entries"};

int
pt_store_audit_list(pt_store *st, int64_t since, const char *actor, int64_t limit,
                    pt_audit_entry **out, size_t *n)
{
    pt_db_stmt *stmt = NULL;
    void *list = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    /* "" stands for any actor: a typed parameter both engines compare without a cast. */
    rc = pt_store_prepare(st,
                          "SELECT id, time, actor, action, object, detail FROM audit "
                          "WHERE time >= ?1 AND (?2 = '' OR actor = ?2) "
                          "ORDER BY id DESC LIMIT ?3",
                          &stmt);
    if (rc != 0)
        return rc;
    pt_db_bind_int64(stmt, 1, since);
    pt_db_bind_text(stmt, 2, actor != NULL ? actor : "", (size_t)-1);
    pt_db_bind_int64(stmt, 3, limit > 0 ? limit : INT64_MAX);
    rc = pt_store_collect(st, stmt, &entry_kind, &list, n);
    *out = list;
    return rc;
}

void
pt_store_audit_free(pt_audit_entry *list, size_t n)
{
    pt_store_free_rows(list, n, &entry_kind);
}
