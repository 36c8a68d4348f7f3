/* store_sqlite_compat.c - store_sqlite_int.h's compatibility names over store_int.h, for
 * record-kind files written against the raw SQLite connection. */
#include "store/store_sqlite_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/db_int.h"
#include "store/store_int.h"

sqlite3 *
pt_store_sqlite_db(pt_store *st)
{
    return pt_db_sqlite_handle(st->db);
}

int
pt_store_sqlite_fail(pt_store *st, const char *what)
{
    sqlite3 *h = pt_store_sqlite_db(st);

    pt_store_seterr(st, "metadata store: %s: %s", what,
                    h != NULL ? sqlite3_errmsg(h) : "not an SQLite store");
    return PT_EDB;
}

void
pt_store_sqlite_seterr(pt_store *st, const char *msg)
{
    pt_store_seterr(st, "%s", msg);
}

int
pt_store_sqlite_begin(pt_store *st)
{
    return pt_store_begin(st);
}

int
pt_store_sqlite_finish(pt_store *st, int rc)
{
    return pt_store_finish(st, rc);
}

int
pt_store_sqlite_finish_quiet(pt_store *st, int rc)
{
    return pt_store_finish_quiet(st, rc);
}

int
pt_store_sqlite_run(pt_store *st, sqlite3_stmt *stmt, const char *what)
{
    int rc;

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        ;
    rc = rc == SQLITE_DONE ? 0 : pt_store_sqlite_fail(st, what);
    sqlite3_finalize(stmt);
    return rc;
}

int
pt_store_sqlite_changed_one(pt_store *st, const char *missing)
{
    return pt_store_changed_one(st, missing);
}

void
pt_store_sqlite_bind_opt_text(sqlite3_stmt *stmt, int i, const char *s)
{
    if (s != NULL && s[0] != '\0')
        sqlite3_bind_text(stmt, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, i);
}

void
pt_store_sqlite_free_rows(void *list, size_t n, const pt_store_rowkind *kind)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        kind->clear((char *)list + i * kind->size);
    free(list);
}

int
pt_store_sqlite_rows(pt_store *st, sqlite3_stmt *stmt, const pt_store_rowkind *kind, void **out,
                     size_t *n)
{
    void *list = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        void *elem = pt_store_rows_add(&list, len, &cap, kind->size);

        if (elem == NULL) {
            rc = PT_ENOMEM;
            break;
        }
        len++; /* counted before it is read, so that a half-read element is cleared too */
        rc = kind->read(st, stmt, elem);
        if (rc != 0)
            break;
    }
    if (rc == SQLITE_DONE)
        rc = 0;
    else if (rc == PT_ENOMEM)
        pt_store_seterr(st, "out of memory");
    else if (rc > 0)
        rc = pt_store_sqlite_fail(st, kind->what);
    sqlite3_finalize(stmt);
    if (rc != 0) {
        pt_store_sqlite_free_rows(list, len, kind);
        return rc;
    }
    *out = list;
    *n = len;
    return 0;
}
