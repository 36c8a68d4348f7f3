/* store_listen.c - LISTEN on a PostgreSQL store's change channel through libpq, on a
 * connection of its own (store_nodes.h): how a node hears at once of a change made through
 * another node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/err.h"
#include "store/store_nodes.h"

struct pt_store_listener {
    PGconn *c;
    char *schema; /* the store's schema (current_schema()): the payload of its notifications */
};

/* Copies libpq's message (without its trailing newline) into err. */
static void
pg_reason(PGconn *c, char *err, size_t errsz)
{
    const char *msg = c != NULL ? PQerrorMessage(c) : "out of memory";
    size_t n;

    snprintf(err, errsz, "%s", msg != NULL && msg[0] != '\0' ? msg : "no answer from PostgreSQL");
    n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
}

static void
quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

int
pt_store_listen(const char *dsn, pt_store_listener **out, char *err, size_t errsz)
{
    /* With expand_dbname, later keywords win: dsn's own connect_timeout overrides ours. */
    const char *const keys[] = {"connect_timeout", "dbname", NULL};
    const char *const vals[] = {"5", dsn, NULL};
    pt_store_listener *l = calloc(1, sizeof *l);
    PGresult *res = NULL;
    int rc = PT_EUNAVAIL;

    *out = NULL;
    if (l == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    l->c = PQconnectdbParams(keys, vals, 1);
    if (l->c == NULL || PQstatus(l->c) != CONNECTION_OK) {
        pg_reason(l->c, err, errsz);
        goto done;
    }
    PQsetNoticeProcessor(l->c, quiet, NULL);
    res = PQexec(l->c, "LISTEN " PT_STORE_CHANGES_CHANNEL ";"
                       "SELECT coalesce(current_schema(), '')");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        pg_reason(l->c, err, errsz);
        goto done;
    }
    l->schema = strdup(PQgetvalue(res, 0, 0));
    if (l->schema == NULL) {
        snprintf(err, errsz, "out of memory");
        rc = PT_ENOMEM;
        goto done;
    }
    *out = l;
    l = NULL;
    rc = 0;
done:
    PQclear(res);
    pt_store_listener_close(l);
    return rc;
}

int
pt_store_listener_fd(const pt_store_listener *l)
{
    return PQsocket(l->c);
}

int
pt_store_listener_drain(pt_store_listener *l, char *err, size_t errsz)
{
    PGnotify *n;
    int count = 0;

    if (PQconsumeInput(l->c) == 0 || PQstatus(l->c) != CONNECTION_OK) {
        pg_reason(l->c, err, errsz);
        return PT_EUNAVAIL;
    }
    while ((n = PQnotifies(l->c)) != NULL) {
        if (n->extra != NULL && strcmp(n->extra, l->schema) == 0)
            count++;
        PQfreemem(n);
    }
    return count;
}

void
pt_store_listener_close(pt_store_listener *l)
{
    if (l == NULL)
        return;
    PQfinish(l->c);
    free(l->schema);
    free(l);
}
