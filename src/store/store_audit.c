/* store_audit.c - the audit log in the SQLite store (table audit, created by schema
 * version 5, store_schema.c). Entries are appended, never changed. */
#include "store/store_audit.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "store/store_sqlite_int.h"

int
pt_store_audit_add(pt_store *st, const char *actor, const char *action, const char *object,
                   const char *detail)
{
    sqlite3_stmt *stmt = NULL;
    struct timespec ts;
    int rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (sqlite3_prepare_v2(pt_store_sqlite_db(st),
                           "INSERT INTO audit(time, actor, action, object, detail) "
                           "VALUES (?1, ?2, ?3, ?4, ?5)",
                           -1, &stmt, NULL) != SQLITE_OK)
        rc = pt_store_sqlite_fail(st, "write audit entry");
    if (rc == 0) {
        sqlite3_bind_int64(stmt, 1, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        sqlite3_bind_text(stmt, 2, actor, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, action, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, object != NULL ? object : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 5, detail != NULL ? detail : "{}", -1, SQLITE_STATIC);
        rc = pt_store_sqlite_run(st, stmt, "write audit entry");
    }
    return pt_store_sqlite_finish_quiet(st, rc);
}

static char *
coldup(sqlite3_stmt *stmt, int i)
{
    const unsigned char *s = sqlite3_column_text(stmt, i);
    return strdup(s != NULL ? (const char *)s : "");
}

static int
read_entry(pt_store *st, sqlite3_stmt *stmt, void *elem)
{
    pt_audit_entry *e = elem;
    (void)st;
    e->id = sqlite3_column_int64(stmt, 0);
    e->time = sqlite3_column_int64(stmt, 1);
    e->actor = coldup(stmt, 2);
    e->action = coldup(stmt, 3);
    e->object = coldup(stmt, 4);
    e->detail = coldup(stmt, 5);
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

static const pt_store_rowkind entry_kind = {sizeof(pt_audit_entry), read_entry, clear_entry,
                                            "list audit entries"};

int
pt_store_audit_list(pt_store *st, int64_t since, const char *actor, int64_t limit,
                    pt_audit_entry **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(pt_store_sqlite_db(st),
                           "SELECT id, time, actor, action, object, detail FROM audit "
                           "WHERE time >= ?1 AND (?2 IS NULL OR actor = ?2) "
                           "ORDER BY id DESC LIMIT ?3",
                           -1, &stmt, NULL) != SQLITE_OK)
        return pt_store_sqlite_fail(st, "list audit entries");
    sqlite3_bind_int64(stmt, 1, since);
    pt_store_sqlite_bind_opt_text(stmt, 2, actor);
    sqlite3_bind_int64(stmt, 3, limit > 0 ? limit : -1);
    return pt_store_sqlite_rows(st, stmt, &entry_kind, (void **)out, n);
}

void
pt_store_audit_free(pt_audit_entry *list, size_t n)
{
    pt_store_sqlite_free_rows(list, n, &entry_kind);
}
