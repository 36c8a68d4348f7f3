/* db_pg.c - the SQL driver on PostgreSQL (libpq): ?N rewritten to $N, text-format values with
 * types the server infers, one global write lock per transaction, errors mapped by SQLSTATE. */

/*
 * Design notes
 *
 * Statements. pt_db_prepare rewrites `?N` to `$N` (never inside a string literal, a quoted
 * identifier or a comment) and keeps the text; the first pt_db_step sends it with its values
 * in one round trip (PQexecParams) and reads every row, which the following steps hand out.
 * A persistent statement (pt_db_prepare_persistent) is prepared on the server once, as a named
 * statement, and re-prepared after a reconnect. Values go as text, blobs in binary, and the
 * server infers each parameter's type from where it stands, so "?2" compares with a BIGINT
 * column and a TEXT column alike, as on SQLite. Results come back as text: integers are
 * parsed, booleans read as 0/1, bytea is unescaped on demand.
 *
 * Transactions. pt_db_begin is BEGIN plus pg_advisory_xact_lock(PG_WRITE_LOCK): the store's
 * writers serialise, as they do on SQLite (BEGIN IMMEDIATE), so the store's read-then-write
 * steps (version numbers, name checks) stay correct across nodes, and two nodes migrating
 * a fresh database at the same moment take turns: the second finds the work done. Readers
 * take no lock. The busy timeout is lock_timeout; 0 means "do not wait" (the try variant).
 * The lock is released with the transaction, even when a node dies (its session ends).
 *
 * Foreign keys are checked per statement unless they were declared {deferrable} (db.h) and
 * pt_db_defer_constraints ran (SET CONSTRAINTS ALL DEFERRED).
 *
 * The schema version lives in a one-row table, portico_schema(version).
 *
 * Connection loss: a statement that fails because the connection broke, outside a
 * transaction, is sent once more on a new connection (the typical case is a server restart
 * while the connection was idle). Inside a transaction the error is PT_EUNAVAIL and the next
 * statement after the rollback reconnects.
 *
 * The DSN may hold a password: it is never copied into an error message (libpq's messages
 * name the host and port, never the password).
 */
#include "store/db.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/err.h"
#include "store/db_int.h"

/* The advisory lock every store writer holds for its transaction: "port" in ASCII and the
 * store's schema, so the nodes of one install take turns while installs kept in other schemas
 * of the same database do not wait for each other. */
#define PG_WRITE_LOCK "1886351988, hashtext(coalesce(current_schema(), ''))"

/* Type oids the results need (pg_type.h is server-side only). */
#define OID_BOOL 16
#define OID_BYTEA 17

typedef struct pg_db {
    pt_db base;
    PGconn *c;
    int busy_ms;
    int durable;
    int in_tx;          /* between pt_db_begin and commit/rollback */
    int readonly;       /* every transaction read-only */
    unsigned gen;       /* bumped at each reconnect: persistent statements re-prepare */
    unsigned next_name; /* names of persistent statements */
    int64_t changes;
} pg_db;

typedef struct pg_stmt {
    pt_db_stmt base;
    char *sql; /* rewritten to $N; owned */
    int nparams;
    const char **vals; /* borrowed (or pointing into ints) */
    int *lens;
    int *fmts;
    char (*ints)[24];      /* integer values as text */
    char **owned;          /* copies of text values, NUL-terminated; owned */
    char name[32];         /* persistent: the server-side name, "" when not prepared */
    unsigned gen;          /* the connection generation name was prepared on */
    PGresult *res;         /* the rows of the current run, NULL before the first step */
    int row;               /* current row, -1 before the first */
    unsigned char **blobs; /* unescaped bytea of the current row, per column; owned */
    size_t *blob_lens;
    int ncols;
} pg_stmt;

static pg_db *
D(pt_db *db)
{
    return (pg_db *)db;
}

static pg_stmt *
S(pt_db_stmt *s)
{
    return (pg_stmt *)s;
}

/* ---- errors ------------------------------------------------------------------------------ */

/* The pt_err of SQLSTATE code (NULL: no server answer, i.e. the connection). */
static int
map_sqlstate(const char *code)
{
    if (code == NULL || strlen(code) != 5)
        return PT_EUNAVAIL;
    if (strcmp(code, "23503") == 0)
        return PT_ENOTFOUND; /* foreign key, as db_sqlite.c */
    if (strncmp(code, "23", 2) == 0)
        return PT_EEXIST; /* unique, check, not null: constraints */
    if (strncmp(code, "08", 2) == 0 || strcmp(code, "57P01") == 0 || strcmp(code, "57P02") == 0 ||
        strcmp(code, "57P03") == 0 || strcmp(code, "55P03") == 0 || strcmp(code, "40001") == 0 ||
        strcmp(code, "40P01") == 0 || strcmp(code, "53300") == 0)
        return PT_EUNAVAIL; /* connection, shutdown, lock timeout, conflicts, too many clients */
    if (strcmp(code, "53100") == 0 || strncmp(code, "58", 2) == 0)
        return PT_EIO; /* disk full, I/O */
    if (strcmp(code, "53200") == 0)
        return PT_ENOMEM;
    if (strcmp(code, "54000") == 0)
        return PT_ETOOBIG;
    return PT_EDB;
}

/* Copies a libpq message into db's error, without its trailing newline. */
static void
set_msg(pt_db *db, const char *msg)
{
    size_t n;

    pt_db_seterr(db, "%s", msg != NULL && msg[0] != '\0' ? msg : "no answer from PostgreSQL");
    n = strlen(db->err);
    while (n > 0 && (db->err[n - 1] == '\n' || db->err[n - 1] == ' '))
        db->err[--n] = '\0';
}

/* Records res's error (or the connection's when res is NULL) and returns its pt_err. */
static int
fail_res(pt_db *db, const PGresult *res)
{
    const char *code = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (res != NULL && PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) != NULL)
        set_msg(db, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    else
        set_msg(db, PQerrorMessage(D(db)->c));
    if (code == NULL && PQstatus(D(db)->c) == CONNECTION_OK && res != NULL)
        return PT_EDB; /* a client-side error on a healthy connection */
    return map_sqlstate(code);
}

static int
res_ok(const PGresult *res)
{
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
}

/* Did res fail because the connection is gone (not because of the statement)? */
static int
conn_lost(pg_db *d, const PGresult *res)
{
    const char *code = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (PQstatus(d->c) == CONNECTION_BAD)
        return 1;
    return code != NULL && (strncmp(code, "08", 2) == 0 || strcmp(code, "57P01") == 0);
}

/* ---- the session ------------------------------------------------------------------------- */

static void
quiet_notices(void *arg, const char *msg)
{
    (void)arg; /* "relation already exists, skipping" and the like are not for the log */
    (void)msg;
}

/* Applies the session settings: lock timeout, durability, read-only. */
static int
session_setup(pg_db *d)
{
    char sql[256];
    PGresult *res;
    int rc = 0;

    snprintf(sql, sizeof sql,
             "SET lock_timeout = %d; SET synchronous_commit = %s; "
             "SET default_transaction_read_only = %s; SET client_min_messages = warning",
             d->busy_ms > 0 ? d->busy_ms : 1, d->durable ? "on" : "off",
             d->readonly ? "on" : "off");
    res = PQexec(d->c, sql);
    if (!res_ok(res))
        rc = fail_res(&d->base, res);
    PQclear(res);
    return rc;
}

/* Reconnects once (outside a transaction). Returns 0 or PT_EUNAVAIL. */
static int
reconnect(pg_db *d)
{
    PQreset(d->c);
    if (PQstatus(d->c) != CONNECTION_OK) {
        set_msg(&d->base, PQerrorMessage(d->c));
        return PT_EUNAVAIL;
    }
    PQsetNoticeProcessor(d->c, quiet_notices, NULL);
    d->gen++;
    return session_setup(d);
}

/* Runs sql (no parameters) with one reconnect when the connection was found broken outside a
 * transaction. Returns the result (caller clears) or NULL with the error recorded in *rc. */
static PGresult *
exec_retry(pg_db *d, const char *sql, int *rc)
{
    PGresult *res = NULL;

    for (int attempt = 0; attempt < 2; attempt++) {
        PQclear(res);
        if (!d->in_tx && PQstatus(d->c) == CONNECTION_BAD && (*rc = reconnect(d)) != 0)
            return NULL;
        res = PQexec(d->c, sql);
        if (res_ok(res) || d->in_tx || !conn_lost(d, res))
            break;
    }
    if (!res_ok(res)) {
        *rc = fail_res(&d->base, res);
        PQclear(res);
        return NULL;
    }
    *rc = 0;
    return res;
}

/* Remembers the row count of an INSERT, UPDATE or DELETE (what pt_db_changes reports). */
static void
note_changes(pg_db *d, PGresult *res)
{
    const char *tag = PQcmdStatus(res), *n = PQcmdTuples(res);

    if (strncmp(tag, "INSERT", 6) == 0 || strncmp(tag, "UPDATE", 6) == 0 ||
        strncmp(tag, "DELETE", 6) == 0 || strncmp(tag, "MERGE", 5) == 0)
        d->changes = strtoll(n, NULL, 10);
}

/* ---- the driver -------------------------------------------------------------------------- */

static const char *const pg_fragments[][2] = {
    {"id", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"},
    {"blob", "BYTEA"},
    /* No rowid: ctid orders rows of a table nobody updated by insertion; a tie-break only. */
    {"rowid", "ctid"},
    {"deferrable", "DEFERRABLE INITIALLY IMMEDIATE"},
    /* A row locked by another transaction is passed over (queues: the webhook claim). */
    {"skip_locked", "FOR UPDATE SKIP LOCKED"},
    {NULL, NULL},
};

static void
pg_close(pt_db *db)
{
    PQfinish(D(db)->c);
    free(db);
}

static int
pg_exec(pt_db *db, const char *sql)
{
    int rc;
    PGresult *res = exec_retry(D(db), sql, &rc);

    if (res != NULL)
        note_changes(D(db), res);
    PQclear(res);
    return rc;
}

/* Rewrites ?N to $N outside literals, identifiers and comments. Returns a new string (caller
 * frees) or NULL when out of memory; *nparams gets the highest N. */
static char *
rewrite(const char *sql, int *nparams)
{
    size_t n = strlen(sql);
    char *out = malloc(n + 1), *o = out;
    const char *p = sql;

    *nparams = 0;
    if (out == NULL)
        return NULL;
    while (*p != '\0') {
        if (*p == '\'' || *p == '"') {
            char q = *p;
            *o++ = *p++;
            while (*p != '\0') {
                if (*p == q && p[1] == q) {
                    *o++ = *p++;
                    *o++ = *p++;
                } else if (*p == q) {
                    *o++ = *p++;
                    break;
                } else {
                    *o++ = *p++;
                }
            }
        } else if (p[0] == '-' && p[1] == '-') {
            while (*p != '\0' && *p != '\n')
                *o++ = *p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            size_t len = end != NULL ? (size_t)(end + 2 - p) : strlen(p);
            memcpy(o, p, len);
            o += len;
            p += len;
        } else if (*p == '?' && isdigit((unsigned char)p[1])) {
            long v = strtol(p + 1, NULL, 10);
            if (v > *nparams && v < 65536)
                *nparams = (int)v;
            *o++ = '$';
            p++;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

static void
clear_row(pg_stmt *s)
{
    for (int i = 0; s->blobs != NULL && i < s->ncols; i++) {
        PQfreemem(s->blobs[i]);
        s->blobs[i] = NULL;
    }
}

static void
clear_result(pg_stmt *s)
{
    clear_row(s);
    free(s->blobs);
    free(s->blob_lens);
    s->blobs = NULL;
    s->blob_lens = NULL;
    s->ncols = 0;
    PQclear(s->res);
    s->res = NULL;
    s->row = -1;
}

static void
pg_finalize(pt_db_stmt *st)
{
    pg_stmt *s = S(st);
    pg_db *d = D(st->db);

    clear_result(s);
    if (s->name[0] != '\0' && s->gen == d->gen && PQstatus(d->c) == CONNECTION_OK &&
        PQtransactionStatus(d->c) == PQTRANS_IDLE) {
        char sql[64];
        snprintf(sql, sizeof sql, "DEALLOCATE %s", s->name);
        PQclear(PQexec(d->c, sql));
    }
    for (int i = 0; s->owned != NULL && i < s->nparams; i++)
        free(s->owned[i]);
    free(s->owned);
    free(s->sql);
    free(s->vals);
    free(s->lens);
    free(s->fmts);
    free(s->ints);
    free(s);
}

/* Prepares a persistent statement on the server under its name. */
static int
server_prepare(pg_stmt *s)
{
    pg_db *d = D(s->base.db);
    PGresult *res = NULL;
    int rc = 0;

    for (int attempt = 0; attempt < 2; attempt++) {
        PQclear(res);
        if (!d->in_tx && PQstatus(d->c) == CONNECTION_BAD && (rc = reconnect(d)) != 0)
            return rc;
        snprintf(s->name, sizeof s->name, "pt_%u", ++d->next_name);
        res = PQprepare(d->c, s->name, s->sql, 0, NULL);
        if (res_ok(res) || d->in_tx || !conn_lost(d, res))
            break;
    }
    if (!res_ok(res)) {
        rc = fail_res(&d->base, res);
        s->name[0] = '\0';
    } else {
        s->gen = d->gen;
    }
    PQclear(res);
    return rc;
}

static int
pg_prepare(pt_db *db, const char *sql, int persistent, pt_db_stmt **out)
{
    pg_stmt *s = calloc(1, sizeof *s);
    int n = 0, rc;

    if (s == NULL || (s->sql = rewrite(sql, &n)) == NULL)
        goto oom;
    s->base.db = db;
    s->nparams = n;
    s->row = -1;
    if (n > 0) {
        s->vals = calloc((size_t)n, sizeof *s->vals);
        s->lens = calloc((size_t)n, sizeof *s->lens);
        s->fmts = calloc((size_t)n, sizeof *s->fmts);
        s->ints = calloc((size_t)n, sizeof *s->ints);
        s->owned = calloc((size_t)n, sizeof *s->owned);
        if (s->vals == NULL || s->lens == NULL || s->fmts == NULL || s->ints == NULL ||
            s->owned == NULL)
            goto oom;
    }
    if (persistent) {
        rc = server_prepare(s);
        if (rc != 0) {
            pg_finalize(&s->base);
            return rc;
        }
    }
    *out = &s->base;
    return 0;
oom:
    if (s != NULL) {
        s->base.db = db;
        pg_finalize(&s->base);
    }
    pt_db_seterr(db, "out of memory");
    return PT_ENOMEM;
}

static void
pg_reset(pt_db_stmt *st)
{
    pg_stmt *s = S(st);

    clear_result(s);
    for (int i = 0; i < s->nparams; i++) {
        free(s->owned[i]);
        s->owned[i] = NULL;
        s->vals[i] = NULL;
        s->lens[i] = 0;
        s->fmts[i] = 0;
    }
}

static int
check_param(pt_db_stmt *st, int i)
{
    if (i >= 1 && i <= S(st)->nparams)
        return 0;
    pt_db_seterr(st->db, "bind: column index out of range");
    return PT_EINVAL;
}

/* As check_param, for a text or blob value of len bytes (PT_ETOOBIG past what libpq takes). */
static int
check_value(pt_db_stmt *st, int i, size_t len)
{
    int rc = check_param(st, i);

    if (rc == 0 && len > INT32_MAX / 2) {
        pt_db_seterr(st->db, "bind: string or blob too big");
        rc = PT_ETOOBIG;
    }
    return rc;
}

static int
pg_bind_text(pt_db_stmt *st, int i, const char *p, size_t len)
{
    pg_stmt *s = S(st);
    int rc = check_value(st, i, len);

    if (rc != 0)
        return rc;
    if (memchr(p, '\0', len) != NULL) {
        pt_db_seterr(st->db, "bind: text holds a NUL byte, which PostgreSQL text cannot");
        return PT_EINVAL;
    }
    /* Text-format values are read up to their NUL: a copy, as p[len] need not be one. */
    free(s->owned[i - 1]);
    s->owned[i - 1] = malloc(len + 1);
    if (s->owned[i - 1] == NULL) {
        pt_db_seterr(st->db, "out of memory");
        return PT_ENOMEM;
    }
    memcpy(s->owned[i - 1], p, len);
    s->owned[i - 1][len] = '\0';
    s->vals[i - 1] = s->owned[i - 1];
    s->lens[i - 1] = (int)len;
    s->fmts[i - 1] = 0;
    return 0;
}

static int
pg_bind_blob(pt_db_stmt *st, int i, const void *p, size_t len)
{
    pg_stmt *s = S(st);
    int rc = check_value(st, i, len);

    if (rc != 0)
        return rc;
    s->vals[i - 1] = len > 0 ? p : "";
    s->lens[i - 1] = (int)len;
    s->fmts[i - 1] = 1;
    return 0;
}

static int
pg_bind_int64(pt_db_stmt *st, int i, int64_t v)
{
    pg_stmt *s = S(st);
    int rc = check_param(st, i);

    if (rc != 0)
        return rc;
    snprintf(s->ints[i - 1], sizeof s->ints[i - 1], "%" PRId64, v);
    s->vals[i - 1] = s->ints[i - 1];
    s->lens[i - 1] = (int)strlen(s->ints[i - 1]);
    s->fmts[i - 1] = 0;
    return 0;
}

static int
pg_bind_null(pt_db_stmt *st, int i)
{
    pg_stmt *s = S(st);
    int rc = check_param(st, i);

    if (rc != 0)
        return rc;
    s->vals[i - 1] = NULL;
    s->lens[i - 1] = 0;
    s->fmts[i - 1] = 0;
    return 0;
}

static int
pg_param_count(pt_db_stmt *st)
{
    return S(st)->nparams;
}

/* Sends s with its values, once more on a new connection when the old one was found broken
 * outside a transaction. */
static int
run(pg_stmt *s)
{
    pg_db *d = D(s->base.db);
    PGresult *res = NULL;
    int rc = 0;

    for (int attempt = 0; attempt < 2; attempt++) {
        PQclear(res);
        res = NULL;
        if (!d->in_tx && PQstatus(d->c) == CONNECTION_BAD && (rc = reconnect(d)) != 0)
            return rc;
        if (s->name[0] != '\0' && s->gen != d->gen && (rc = server_prepare(s)) != 0)
            return rc;
        if (s->name[0] != '\0')
            res = PQexecPrepared(d->c, s->name, s->nparams, s->vals, s->lens, s->fmts, 0);
        else
            res = PQexecParams(d->c, s->sql, s->nparams, NULL, s->vals, s->lens, s->fmts, 0);
        if (res_ok(res) || d->in_tx || !conn_lost(d, res))
            break;
    }
    if (!res_ok(res)) {
        rc = fail_res(&d->base, res);
        PQclear(res);
        return rc;
    }
    note_changes(d, res);
    s->res = res;
    s->ncols = PQnfields(res);
    if (s->ncols > 0) {
        s->blobs = calloc((size_t)s->ncols, sizeof *s->blobs);
        s->blob_lens = calloc((size_t)s->ncols, sizeof *s->blob_lens);
        if (s->blobs == NULL || s->blob_lens == NULL) {
            clear_result(s);
            pt_db_seterr(&d->base, "out of memory");
            return PT_ENOMEM;
        }
    }
    return 0;
}

static int
pg_step(pt_db_stmt *st)
{
    pg_stmt *s = S(st);

    if (s->res == NULL) {
        int rc = run(s);
        if (rc != 0)
            return rc;
    }
    clear_row(s);
    if (s->row + 1 < PQntuples(s->res)) {
        s->row++;
        return PT_DB_ROW;
    }
    s->row = PQntuples(s->res);
    return PT_DB_DONE;
}

/* Is there a current row with column i? */
static int
has_col(pg_stmt *s, int i)
{
    return s->res != NULL && s->row >= 0 && s->row < PQntuples(s->res) && i >= 0 && i < s->ncols;
}

static int
pg_column_is_null(pt_db_stmt *st, int i)
{
    pg_stmt *s = S(st);

    return !has_col(s, i) || PQgetisnull(s->res, s->row, i);
}

static int64_t
pg_column_int64(pt_db_stmt *st, int i)
{
    pg_stmt *s = S(st);
    const char *v;

    if (pg_column_is_null(st, i))
        return 0;
    v = PQgetvalue(s->res, s->row, i);
    if (PQftype(s->res, i) == OID_BOOL)
        return v[0] == 't';
    return strtoll(v, NULL, 10);
}

static const char *
pg_column_text(pt_db_stmt *st, int i, size_t *len)
{
    pg_stmt *s = S(st);

    if (pg_column_is_null(st, i)) {
        if (len != NULL)
            *len = 0;
        return "";
    }
    if (len != NULL)
        *len = (size_t)PQgetlength(s->res, s->row, i);
    return PQgetvalue(s->res, s->row, i);
}

static const void *
pg_column_blob(pt_db_stmt *st, int i, size_t *len)
{
    pg_stmt *s = S(st);

    if (len != NULL)
        *len = 0;
    if (pg_column_is_null(st, i))
        return NULL;
    if (PQftype(s->res, i) != OID_BYTEA)
        return pg_column_text(st, i, len);
    if (s->blobs[i] == NULL) {
        s->blobs[i] =
            PQunescapeBytea((const unsigned char *)PQgetvalue(s->res, s->row, i), &s->blob_lens[i]);
        if (s->blobs[i] == NULL)
            return NULL;
    }
    if (len != NULL)
        *len = s->blob_lens[i];
    return s->blobs[i];
}

static int64_t
pg_changes(pt_db *db)
{
    return D(db)->changes;
}

static int
pg_begin(pt_db *db)
{
    pg_db *d = D(db);
    PGresult *res;
    int rc;

    if (d->in_tx) {
        pt_db_seterr(db, "a transaction is already open");
        return PT_EINVAL;
    }
    /* BEGIN is where an idle connection is found broken: exec_retry reconnects once. */
    res = exec_retry(d,
                     d->busy_ms > 0 ? "BEGIN; SELECT pg_advisory_xact_lock(" PG_WRITE_LOCK ")"
                                    : "BEGIN; SELECT pg_try_advisory_xact_lock(" PG_WRITE_LOCK ")",
                     &rc);
    d->in_tx = 1;
    if (res != NULL && d->busy_ms <= 0 && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] != 't') {
        pt_db_seterr(db, "the store's write lock is held by another connection");
        rc = PT_EUNAVAIL;
    }
    PQclear(res);
    if (rc != 0) {
        PQclear(PQexec(d->c, "ROLLBACK"));
        d->in_tx = 0;
    }
    return rc;
}

static int
pg_commit(pt_db *db)
{
    pg_db *d = D(db);
    PGresult *res = PQexec(d->c, "COMMIT");
    int rc = 0;

    if (!res_ok(res))
        rc = fail_res(db, res);
    else if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
        /* COMMIT of a failed transaction rolls back and says so, without an error */
        pt_db_seterr(db, "the transaction failed and was rolled back");
        rc = PT_EDB;
    }
    PQclear(res);
    d->in_tx = 0;
    return rc;
}

static void
pg_rollback(pt_db *db)
{
    pg_db *d = D(db);

    if (PQtransactionStatus(d->c) == PQTRANS_INTRANS ||
        PQtransactionStatus(d->c) == PQTRANS_INERROR)
        PQclear(PQexec(d->c, "ROLLBACK"));
    d->in_tx = 0;
}

static int
pg_in_transaction(pt_db *db)
{
    return D(db)->in_tx;
}

static int
pg_defer_constraints(pt_db *db)
{
    return pg_exec(db, "SET CONSTRAINTS ALL DEFERRED");
}

static void
pg_set_busy_timeout(pt_db *db, int ms)
{
    pg_db *d = D(db);
    char sql[64];

    d->busy_ms = ms;
    snprintf(sql, sizeof sql, "SET lock_timeout = %d", ms > 0 ? ms : 1);
    if (PQstatus(d->c) == CONNECTION_OK)
        PQclear(PQexec(d->c, sql)); /* a broken connection gets it at reconnect */
}

static int
pg_set_durable(pt_db *db, int durable)
{
    D(db)->durable = durable;
    return pg_exec(db, durable ? "SET synchronous_commit = on" : "SET synchronous_commit = off");
}

static int
pg_schema_version(pt_db *db, int64_t *version)
{
    int rc;
    PGresult *res = exec_retry(D(db), "SELECT to_regclass('portico_schema') IS NOT NULL", &rc);

    *version = 0;
    if (res == NULL)
        return rc;
    if (PQgetvalue(res, 0, 0)[0] == 't') {
        PQclear(res);
        res = exec_retry(D(db), "SELECT coalesce(max(version), 0) FROM portico_schema", &rc);
        if (res == NULL)
            return rc;
        *version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    return 0;
}

static int
pg_set_schema_version(pt_db *db, int64_t version)
{
    char sql[256];

    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS portico_schema(version BIGINT NOT NULL); "
             "DELETE FROM portico_schema; INSERT INTO portico_schema VALUES (%" PRId64 ")",
             version);
    return pg_exec(db, sql);
}

static const pt_db_driver pg_driver = {
    .engine = "postgres",
    .fragments = pg_fragments,
    .close = pg_close,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .reset = pg_reset,
    .bind_text = pg_bind_text,
    .bind_blob = pg_bind_blob,
    .bind_int64 = pg_bind_int64,
    .bind_null = pg_bind_null,
    .param_count = pg_param_count,
    .step = pg_step,
    .column_is_null = pg_column_is_null,
    .column_int64 = pg_column_int64,
    .column_text = pg_column_text,
    .column_blob = pg_column_blob,
    .changes = pg_changes,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .in_transaction = pg_in_transaction,
    .defer_constraints = pg_defer_constraints,
    .set_busy_timeout = pg_set_busy_timeout,
    .set_durable = pg_set_durable,
    .schema_version = pg_schema_version,
    .set_schema_version = pg_set_schema_version,
};

int
pt_db_open_pg(const char *dsn, int flags, int busy_ms, pt_db **out, char *err, size_t errsz)
{
    /* Later keywords override earlier ones: the DSN's own settings win. */
    const char *keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *vals[] = {"10", "portico", dsn, NULL};
    pg_db *d;
    int rc;

    *out = NULL;
    d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    d->base.drv = &pg_driver;
    d->busy_ms = busy_ms;
    d->durable = 1;
    d->readonly = (flags & PT_DB_READONLY) != 0;
    d->c = PQconnectdbParams(keys, vals, 1);
    if (d->c == NULL || PQstatus(d->c) != CONNECTION_OK) {
        set_msg(&d->base, d->c != NULL ? PQerrorMessage(d->c) : "out of memory");
        snprintf(err, errsz, "cannot connect to the PostgreSQL store: %s", d->base.err);
        rc = PT_EUNAVAIL;
        goto fail;
    }
    PQsetNoticeProcessor(d->c, quiet_notices, NULL);
    rc = session_setup(d);
    if (rc != 0) {
        snprintf(err, errsz, "PostgreSQL store: %s", d->base.err);
        goto fail;
    }
    *out = &d->base;
    return 0;
fail:
    pg_close(&d->base);
    return rc;
}
