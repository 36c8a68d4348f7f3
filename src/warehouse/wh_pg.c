/* wh_pg.c - the PostgreSQL warehouse driver (libpq): schemas are native, rows stream in
 * single-row mode, values come back as tagged pt_values. */

/*
 * Design notes
 *
 * 1. One pt_wh is one PGconn in autocommit mode, with the session set up for predictable text
 *    output: DateStyle ISO, TimeZone UTC (pq's `tz` changes it per fetch), bytea as hex,
 *    client_encoding UTF8. The same setup runs again after a reconnect.
 *
 * 2. Reconnects. Before each statement a connection that is known to be dead is reset: libpq
 *    marked it broken, or the server closed it while it sat idle (a restart sends "terminating
 *    connection" first; input waiting on an idle connection is read to find out). A statement
 *    is retried on a fresh connection only when it never left (libpq could not send it), and
 *    never once it was sent: the server may have run and committed it before the connection
 *    died, and running it again would do it twice. Nor when a transaction was open: the fresh
 *    connection has none, so the statement would run outside it; a connection found dead inside
 *    a transaction is reset and the statement fails. A server that cannot be reached gives
 *    PT_EUNAVAIL.
 *
 * 3. Rows. pt_wh_exec sends the statement and waits for its first result, so that SQL errors
 *    ("relation does not exist") are reported by pt_wh_exec itself; rows then arrive one by one
 *    (single-row mode) as pt_wh_cursor_next asks for them, so a million-row result never sits
 *    in memory. While a cursor is reading, the connection is busy: a cursor must be freed before
 *    the next statement (wh.h says so for every driver); freeing one early cancels the query.
 *    A cursor read with pt_wh_cursor_next_nowait (the body stream on the worker's event loop)
 *    never waits: before each PQgetResult, PQconsumeInput takes what the socket holds and
 *    PQisBusy says whether a whole result is in; if not, it returns PT_EAGAIN and the caller
 *    watches PQsocket. Freeing such a cursor early must not wait either, yet PQcancel (libpq
 *    15 has no non-blocking form) connects to the server and waits for its answer, and
 *    draining waits until the server acts on it. So the cancel request goes out from a
 *    detached thread of its own (it only uses the PGcancel copy, never the connection), and
 *    instead of being drained the connection is marked stale: reset before its next
 *    statement, or simply closed, which is what the body stream does next.
 *
 * 4. Values are read in text format and converted by column type (OID): integers, floats and
 *    booleans to numbers, numeric to PT_V_NUMERIC text, bytea (hex) to bytes, date/time types to
 *    ISO 8601 text, json/jsonb to PT_V_JSON, and the arrays of those types to a JSON array
 *    (PT_V_JSON; date and time elements are ISO 8601 strings in it, as the columns would be).
 *    Every other type is text as PostgreSQL prints it. Converted text lives in
 *    one scratch buffer per column, valid until the next row.
 *
 * 5. Parameters: $1..$N as PostgreSQL writes them; `?` placeholders (SQLite style) are
 *    rewritten to $N when the statement has no $N of its own, outside quotes and comments.
 *    Integers are sent as int8, floats as float8, booleans as bool, bytes in binary as bytea,
 *    everything else as text of unknown type (the server infers it from the context).
 */
#include <ctype.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "warehouse/wh_int.h"

#define CONNECT_TIMEOUT "10"

/* Type OIDs (pg_type.dat); stable across PostgreSQL versions. */
enum {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_OID = 26,
    OID_JSON = 114,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_DATE = 1082,
    OID_TIME = 1083,
    OID_TIMESTAMP = 1114,
    OID_TIMESTAMPTZ = 1184,
    OID_TIMETZ = 1266,
    OID_NUMERIC = 1700,
    OID_JSONB = 3802,
};

/* How a column's text is read. */
enum kind {
    K_TEXT,
    K_BOOL,
    K_INT,
    K_FLOAT,
    K_NUMERIC,
    K_BYTEA,
    K_DATE,
    K_TIME,
    K_TIMESTAMP,
    K_JSON,
    /* Arrays, by element kind: converted to a JSON array. */
    K_ARR_NUM,
    K_ARR_BOOL,
    K_ARR_JSON,
    K_ARR_TEXT,
    K_ARR_DATETIME, /* elements written the ISO 8601 way, as date/time columns are */
};

typedef struct pg_cursor pg_cursor;

typedef struct pg_wh {
    pt_wh base; /* first */
    PGconn *conn;
    char *dsn;         /* owned; needed to reconnect */
    pg_cursor *active; /* the cursor whose rows are still arriving, or NULL */
    unsigned stmt_seq; /* names of prepared statements */
    int sent_in_txn;   /* the last statement was sent inside a transaction block */
    int stale;         /* STALE_*: a cancelled query's results were left unread */
} pg_wh;

enum { STALE_NO, STALE_YES, STALE_IN_TXN };

struct pg_cursor {
    pt_wh_cursor base; /* first */
    PGresult *res;     /* the result holding the current row */
    int row, nrows;    /* current row in res, rows in res */
    int streaming;     /* more results are arriving on the connection */
    int done;
    int nowait; /* read with pt_wh_cursor_next_nowait: never wait, not even when freed */
    int err;    /* the first error among the results read so far (0: none) */
    enum kind *kinds;
    pt_buf *scratch; /* per column: converted text of the current row */
};

typedef struct pg_stmt {
    pt_wh_stmt base; /* first */
    char name[32];
} pg_stmt;

static const pt_wh_driver pg_driver;

/* ---- connection --------------------------------------------------------------------------- */

/* Copies libpq's message (possibly several lines) as one line into the connection's error. */
static void
set_conn_error(pg_wh *w, const char *prefix)
{
    char msg[400];
    size_t i;

    snprintf(msg, sizeof msg, "%s", PQerrorMessage(w->conn));
    for (i = 0; msg[i] != '\0'; i++)
        if (msg[i] == '\n')
            msg[i] = ' ';
    while (i > 0 && msg[i - 1] == ' ')
        msg[--i] = '\0';
    pt_wh_set_error(&w->base, "%s%s", prefix, msg);
}

/* The session settings of design note 1. Returns 0 or PT_EUNAVAIL. */
static int
session_setup(pg_wh *w)
{
    PGresult *res = PQexec(w->conn, "SET DateStyle = 'ISO, MDY'; SET TimeZone = 'UTC'; "
                                    "SET bytea_output = 'hex'; SET client_encoding = 'UTF8'");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

    if (!ok)
        pt_wh_set_error(&w->base, "PostgreSQL connection '%s': session setup failed: %s",
                        w->base.name, PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : PT_EUNAVAIL;
}

/* Has the server sent anything on this idle connection (or closed it)? Never waits. */
static int
input_waiting(pg_wh *w)
{
    struct pollfd pfd = {.fd = PQsocket(w->conn), .events = POLLIN};

    return pfd.fd >= 0 && poll(&pfd, 1, 0) > 0 && pfd.revents != 0;
}

/* Makes sure the connection is up before a statement is sent (design note 2): a connection that
 * libpq knows is broken is reset, and so is one whose server went away while it sat idle (a
 * restarting server says "terminating connection" and closes the socket; reading that input
 * shows it). Nothing has been sent yet, so resetting loses nothing, except a transaction the
 * connection had open: then the statement must not run outside it, so this fails. */
static int
ensure_connected(pg_wh *w)
{
    char prefix[128];
    int had_txn = 0, stale = 0;

    snprintf(prefix, sizeof prefix, "PostgreSQL connection '%s' is unavailable: ", w->base.name);
    if (w->stale != STALE_NO) {
        /* A cancelled query's results are still arriving (design note 3): start afresh. */
        had_txn = w->stale == STALE_IN_TXN;
        stale = 1;
        w->stale = STALE_NO;
        if (had_txn)
            pt_wh_set_error(&w->base, "%sa query inside the transaction was abandoned", prefix);
    } else if (PQstatus(w->conn) == CONNECTION_OK && input_waiting(w)) {
        PGTransactionStatusType ts = PQtransactionStatus(w->conn);
        PGnotify *note;
        had_txn = ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
        /* Read and parse what came (PQisBusy parses; an error on an idle connection goes to the
         * notice processor), until the end of the input, which marks the connection bad. */
        for (int i = 0; i < 8 && PQstatus(w->conn) == CONNECTION_OK && input_waiting(w); i++) {
            if (!PQconsumeInput(w->conn))
                break;
            (void)PQisBusy(w->conn);
        }
        while ((note = PQnotifies(w->conn)) != NULL)
            PQfreemem(note);
    }
    if (PQstatus(w->conn) == CONNECTION_OK && !stale)
        return 0;
    if (had_txn && !stale)
        set_conn_error(w, prefix);
    PQreset(w->conn);
    if (PQstatus(w->conn) != CONNECTION_OK) {
        set_conn_error(w, prefix);
        return PT_EUNAVAIL;
    }
    if (session_setup(w) != 0)
        return PT_EUNAVAIL;
    if (had_txn) {
        /* The message of the lost connection, said the way a caller can act on. */
        char msg[sizeof w->base.err];
        snprintf(msg, sizeof msg, "%s", w->base.err);
        pt_wh_set_error(&w->base, "%s (the open transaction was lost and rolled back)", msg);
        return PT_EUNAVAIL;
    }
    return 0;
}

/* Notices ("schema already exists, skipping") are not errors: keep them out of the log. */
static void
ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int
pt_wh_pg_open(const char *name, const char *dsn, pt_wh **out, char *err, size_t errsz)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {dsn, CONNECT_TIMEOUT, "portico", NULL};
    char *perr = NULL;
    PQconninfoOption *opts;
    pg_wh *w = NULL;
    int rc;

    *out = NULL;
    /* Parse first: a malformed DSN is a usage error, not an unreachable server. */
    opts = PQconninfoParse(dsn, &perr);
    if (opts == NULL) {
        snprintf(err, errsz, "invalid PostgreSQL connection string: %s",
                 perr != NULL ? perr : "out of memory");
        for (size_t i = 0; err[i] != '\0'; i++)
            if (err[i] == '\n')
                err[i] = ' ';
        PQfreemem(perr);
        return PT_EINVAL;
    }
    PQconninfoFree(opts);
    w = calloc(1, sizeof *w);
    if (w == NULL || (w->base.name = strdup(name)) == NULL || (w->dsn = strdup(dsn)) == NULL) {
        snprintf(err, errsz, "out of memory");
        rc = PT_ENOMEM;
        goto fail;
    }
    w->base.drv = &pg_driver;
    /* expand_dbname: dsn may be a URI or key=value string; the later keys are defaults only
     * when the DSN does not set them (libpq gives precedence to values from the expansion). */
    w->conn = PQconnectdbParams(keys, vals, 1);
    if (w->conn == NULL) {
        snprintf(err, errsz, "out of memory");
        rc = PT_ENOMEM;
        goto fail;
    }
    if (PQstatus(w->conn) != CONNECTION_OK) {
        char prefix[128];
        if (name[0] != '\0')
            snprintf(prefix, sizeof prefix,
                     "cannot connect to PostgreSQL (connection '%s'): ", name);
        else
            snprintf(prefix, sizeof prefix, "cannot connect to PostgreSQL: ");
        set_conn_error(w, prefix);
        snprintf(err, errsz, "%s", w->base.err);
        rc = PT_EUNAVAIL;
        goto fail;
    }
    PQsetNoticeProcessor(w->conn, ignore_notice, NULL);
    rc = session_setup(w);
    if (rc != 0) {
        snprintf(err, errsz, "%s", w->base.err);
        goto fail;
    }
    *out = &w->base;
    return 0;
fail:
    if (w != NULL)
        pg_driver.close(&w->base);
    return rc;
}

int
pt_wh_pg_check(const char *dsn, char *err, size_t errsz)
{
    pt_wh *wh = NULL;
    int rc = pt_wh_pg_open("", dsn, &wh, err, errsz);

    pt_wh_close(wh);
    return rc;
}

void
pt_wh_dsn_redact(const char *dsn, char *out, size_t outsz)
{
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL), *o;
    size_t len = 0;

    out[0] = '\0';
    if (opts == NULL) {
        snprintf(out, outsz, "(invalid connection string)");
        return;
    }
    for (o = opts; o->keyword != NULL; o++) {
        const char *v = o->val;
        int n;
        if (v == NULL || v[0] == '\0')
            continue;
        /* libpq marks its secret options (password, sslpassword, and any later ones) with
         * dispchar "*" ("hide the value"): never show those. */
        if (o->dispchar != NULL && strchr(o->dispchar, '*') != NULL)
            v = "***";
        n = snprintf(out + len, outsz - len, "%s%s=%s", len > 0 ? " " : "", o->keyword, v);
        if (n < 0 || (size_t)n >= outsz - len)
            break;
        len += (size_t)n;
    }
    PQconninfoFree(opts);
}

static void
pg_close(pt_wh *wh)
{
    pg_wh *w = (pg_wh *)wh;

    PQfinish(w->conn);
    free(w->dsn);
    free(w->base.name);
    free(w);
}

/* ---- errors ------------------------------------------------------------------------------- */

/* Maps a failed result to a pt_err with PostgreSQL's own message. */
static int
map_result_error(pg_wh *w, const PGresult *res)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    if (PQstatus(w->conn) != CONNECTION_OK || (state != NULL && strncmp(state, "08", 2) == 0) ||
        (state != NULL && (strcmp(state, "57P01") == 0 || strcmp(state, "57P03") == 0))) {
        char prefix[128];
        snprintf(prefix, sizeof prefix,
                 "PostgreSQL connection '%s' is unavailable: ", w->base.name);
        if (msg != NULL)
            pt_wh_set_error(&w->base, "%s%s", prefix, msg);
        else
            set_conn_error(w, prefix);
        return PT_EUNAVAIL;
    }
    if (msg == NULL) {
        set_conn_error(w, "");
        return PT_EDB;
    }
    pt_wh_set_error(&w->base, "%s", msg);
    if (state != NULL && (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0))
        return PT_ENOTFOUND;
    return PT_EDB;
}

/* ---- parameters --------------------------------------------------------------------------- */

/* Does sql use $N placeholders (outside quotes)? Then `?` is left alone (it may be a jsonb
 * operator). Rewrites ? and ?NNN into $N otherwise. Returns 0 or PT_ENOMEM. */
static int
rewrite_placeholders(const char *sql, pt_buf *out)
{
    size_t i, n = strlen(sql);
    unsigned next = 1;
    int pass, has_dollar = 0;
    int rc = 0;

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < n && rc == 0; i++) {
            char c = sql[i];
            if (c == '\'' || c == '"') {
                size_t j = i + 1;
                while (j < n && sql[j] != c)
                    j++;
                if (pass == 1)
                    rc = pt_buf_append(out, sql + i, j < n ? j - i + 1 : j - i);
                i = j;
                continue;
            }
            if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
                size_t j = i;
                while (j < n && sql[j] != '\n')
                    j++;
                if (pass == 1)
                    rc = pt_buf_append(out, sql + i, j - i);
                i = j - 1;
                continue;
            }
            if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
                const char *e = strstr(sql + i + 2, "*/");
                size_t j = e != NULL ? (size_t)(e - sql) + 2 : n;
                if (pass == 1)
                    rc = pt_buf_append(out, sql + i, j - i);
                i = j - 1;
                continue;
            }
            if (pass == 0) {
                if (c == '$' && i + 1 < n && isdigit((unsigned char)sql[i + 1]))
                    has_dollar = 1;
                continue;
            }
            if (c == '?' && !has_dollar) {
                if (i + 1 < n && isdigit((unsigned char)sql[i + 1])) {
                    rc = pt_buf_putc(out, '$'); /* ?NNN -> $NNN */
                } else {
                    rc = pt_buf_printf(out, "$%u", next++);
                }
                continue;
            }
            rc = pt_buf_putc(out, c);
        }
        if (pass == 0 && has_dollar)
            return pt_buf_append(out, sql, n) != 0 ? PT_ENOMEM : 0;
    }
    if (rc == 0 && out->data == NULL)
        rc = pt_buf_puts(out, "");
    return rc != 0 ? PT_ENOMEM : 0;
}

typedef struct params {
    Oid types[PT_WH_MAX_PARAMS];
    const char *values[PT_WH_MAX_PARAMS];
    int lengths[PT_WH_MAX_PARAMS];
    int formats[PT_WH_MAX_PARAMS];
    pt_buf text; /* numbers as text, NUL-separated */
    size_t offs[PT_WH_MAX_PARAMS];
} params;

/* Fills p from vals (design note 5). Text and blob values are borrowed from vals. */
static int
build_params(pg_wh *w, params *p, const pt_value *vals, size_t n)
{
    size_t i;
    int rc = 0;

    if (n > PT_WH_MAX_PARAMS) {
        pt_wh_set_error(&w->base, "too many parameters (at most %d)", PT_WH_MAX_PARAMS);
        return PT_EINVAL;
    }
    pt_buf_init(&p->text, 0);
    for (i = 0; i < n && rc == 0; i++) {
        const pt_value *v = &vals[i];
        char num[40];
        p->types[i] = 0;
        p->formats[i] = 0;
        p->lengths[i] = 0;
        p->values[i] = NULL;
        p->offs[i] = SIZE_MAX;
        switch (v->type) {
        case PT_V_NULL:
            break;
        case PT_V_INT:
            p->types[i] = OID_INT8;
            p->offs[i] = p->text.len;
            rc = pt_buf_printf(&p->text, "%lld", (long long)v->u.i);
            rc |= pt_buf_putc(&p->text, '\0');
            break;
        case PT_V_BOOL:
            p->types[i] = OID_BOOL;
            p->values[i] = v->u.i ? "true" : "false";
            break;
        case PT_V_FLOAT:
            p->types[i] = OID_FLOAT8;
            pt_json_format_double(v->u.f, num);
            p->offs[i] = p->text.len;
            rc = pt_buf_puts(&p->text, num);
            rc |= pt_buf_putc(&p->text, '\0');
            break;
        case PT_V_BLOB:
            p->types[i] = OID_BYTEA;
            p->formats[i] = 1;
            p->values[i] = v->u.s.p != NULL ? v->u.s.p : "";
            p->lengths[i] = (int)v->u.s.n;
            break;
        case PT_V_TEXT:
        case PT_V_NUMERIC:
        case PT_V_DATE:
        case PT_V_TIME:
        case PT_V_TIMESTAMP:
        case PT_V_JSON:
            if (memchr(v->u.s.p, '\0', v->u.s.n) != NULL) {
                pt_wh_set_error(&w->base, "parameter %zu: PostgreSQL text cannot hold NUL bytes",
                                i + 1);
                return PT_EINVAL;
            }
            /* Text must be NUL-terminated for libpq: copy it. */
            p->offs[i] = p->text.len;
            rc = pt_buf_append(&p->text, v->u.s.p != NULL ? v->u.s.p : "", v->u.s.n);
            rc |= pt_buf_putc(&p->text, '\0');
            break;
        }
    }
    if (rc != 0) {
        pt_wh_set_error(&w->base, "out of memory");
        return PT_ENOMEM;
    }
    for (i = 0; i < n; i++)
        if (p->offs[i] != SIZE_MAX)
            p->values[i] = p->text.data + p->offs[i];
    return 0;
}

/* ---- cursors ------------------------------------------------------------------------------ */

static enum kind
kind_of(Oid t)
{
    switch (t) {
    case OID_BOOL:
        return K_BOOL;
    case OID_INT8:
    case OID_INT2:
    case OID_INT4:
    case OID_OID:
        return K_INT;
    case OID_FLOAT4:
    case OID_FLOAT8:
        return K_FLOAT;
    case OID_NUMERIC:
        return K_NUMERIC;
    case OID_BYTEA:
        return K_BYTEA;
    case OID_DATE:
        return K_DATE;
    case OID_TIME:
    case OID_TIMETZ:
        return K_TIME;
    case OID_TIMESTAMP:
    case OID_TIMESTAMPTZ:
        return K_TIMESTAMP;
    case OID_JSON:
    case OID_JSONB:
        return K_JSON;
    case 1005: /* int2[] */
    case 1007: /* int4[] */
    case 1016: /* int8[] */
    case 1021: /* float4[] */
    case 1022: /* float8[] */
    case 1231: /* numeric[] */
    case 1028: /* oid[] */
        return K_ARR_NUM;
    case 1000: /* bool[] */
        return K_ARR_BOOL;
    case 199:  /* json[] */
    case 3807: /* jsonb[] */
        return K_ARR_JSON;
    case 1182: /* date[] */
    case 1183: /* time[] */
    case 1270: /* timetz[] */
    case 1115: /* timestamp[] */
    case 1185: /* timestamptz[] */
        return K_ARR_DATETIME;
    case 1009: /* text[] */
    case 1015: /* varchar[] */
    case 1014: /* bpchar[] */
    case 2951: /* uuid[] */
    case 1003: /* name[] */
        return K_ARR_TEXT;
    default:
        return K_TEXT;
    }
}

static pt_vtype
vtype_of(enum kind k)
{
    static const pt_vtype map[] = {
        [K_TEXT] = PT_V_TEXT,     [K_BOOL] = PT_V_BOOL,       [K_INT] = PT_V_INT,
        [K_FLOAT] = PT_V_FLOAT,   [K_NUMERIC] = PT_V_NUMERIC, [K_BYTEA] = PT_V_BLOB,
        [K_DATE] = PT_V_DATE,     [K_TIME] = PT_V_TIME,       [K_TIMESTAMP] = PT_V_TIMESTAMP,
        [K_JSON] = PT_V_JSON,     [K_ARR_NUM] = PT_V_JSON,    [K_ARR_BOOL] = PT_V_JSON,
        [K_ARR_JSON] = PT_V_JSON, [K_ARR_TEXT] = PT_V_JSON,   [K_ARR_DATETIME] = PT_V_JSON,
    };
    return map[k];
}

/* Builds the cursor over res (ownership of res moves to the cursor, even on error). */
static int
cursor_new(pg_wh *w, PGresult *res, int streaming, pg_cursor **out)
{
    size_t ncols =
        res != NULL && PQresultStatus(res) != PGRES_COMMAND_OK ? (size_t)PQnfields(res) : 0;
    const char *names[ncols > 0 ? ncols : 1];
    pg_cursor *c = calloc(1, sizeof *c);
    size_t i;

    *out = NULL;
    if (c == NULL) {
        PQclear(res);
        goto nomem;
    }
    c->base.wh = &w->base;
    c->base.ncols = ncols;
    c->res = res;
    c->row = -1;
    c->nrows = res != NULL ? PQntuples(res) : 0;
    c->streaming = streaming;
    if (ncols > 0) {
        for (i = 0; i < ncols; i++)
            names[i] = PQfname(res, (int)i);
        c->base.colnames = pt_wh_names_dup(names, ncols);
        c->base.coltypes = calloc(ncols, sizeof *c->base.coltypes);
        c->kinds = calloc(ncols, sizeof *c->kinds);
        c->scratch = calloc(ncols, sizeof *c->scratch);
        if (c->base.colnames == NULL || c->base.coltypes == NULL || c->kinds == NULL ||
            c->scratch == NULL)
            goto nomem;
        for (i = 0; i < ncols; i++) {
            c->kinds[i] = kind_of(PQftype(res, (int)i));
            c->base.coltypes[i] = vtype_of(c->kinds[i]);
            pt_buf_init(&c->scratch[i], 0);
        }
    }
    if (res != NULL) {
        const char *n = PQcmdTuples(res);
        if (n != NULL && n[0] != '\0')
            c->base.changes = strtoll(n, NULL, 10);
    }
    if (streaming)
        w->active = c;
    else
        c->done = c->nrows == 0;
    *out = c;
    return 0;
nomem:
    if (c != NULL)
        pg_driver.cursor_free(&c->base);
    pt_wh_set_error(&w->base, "out of memory");
    return PT_ENOMEM;
}

/* Reads and drops the results still arriving on the connection. */
static void
drain(pg_wh *w)
{
    PGresult *res;

    while ((res = PQgetResult(w->conn)) != NULL)
        PQclear(res);
}

static void *
cancel_thread(void *arg)
{
    PGcancel *cancel = arg;
    char buf[256];

    PQcancel(cancel, buf, sizeof buf);
    PQfreeCancel(cancel);
    return NULL;
}

/* Sends the cancel request from a detached thread, so that the caller does not wait for the
 * server (design note 3). Takes ownership of cancel (NULL: no-op). When no thread can be
 * started the request is sent from this one: one connection to the server, which answers at
 * once whatever the query is doing. */
static void
cancel_async(PGcancel *cancel)
{
    pthread_attr_t attr;
    pthread_t t;
    sigset_t all, old;
    int started = 0;

    if (cancel == NULL)
        return;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread takes no signals */
    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&t, &attr, cancel_thread, cancel) == 0;
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!started)
        cancel_thread(cancel);
}

/* Stops a cursor whose rows are still arriving: cancels the query and drains, or, for a
 * cursor read without waiting, cancels from another thread and marks the connection stale
 * (design note 3). */
static void
abandon(pg_cursor *c)
{
    pg_wh *w = (pg_wh *)c->base.wh;

    if (c->streaming && c->nowait) {
        cancel_async(PQgetCancel(w->conn));
        w->stale = w->sent_in_txn ? STALE_IN_TXN : STALE_YES;
        c->streaming = 0;
    } else if (c->streaming) {
        PGcancel *cancel = PQgetCancel(w->conn);
        char buf[256];
        if (cancel != NULL) {
            PQcancel(cancel, buf, sizeof buf);
            PQfreeCancel(cancel);
        }
        drain(w);
        c->streaming = 0;
    }
    if (w->active == c)
        w->active = NULL;
    c->done = 1;
}

static int
pg_exec(pt_wh *wh, const char *sql, const pt_value *vals, size_t nparams, pt_wh_cursor **out)
{
    pg_wh *w = (pg_wh *)wh;
    PGresult *res = NULL, *last = NULL;
    pg_cursor *c = NULL;
    pt_buf query;
    params p;
    int rc, tries, sent, streaming = 0;

    *out = NULL;
    pt_buf_init(&query, 0);
    pt_buf_init(&p.text, 0);
    if (w->active != NULL)
        abandon(w->active);
    if (nparams > 0) {
        rc = rewrite_placeholders(sql, &query);
        if (rc == 0)
            rc = build_params(w, &p, vals, nparams);
        if (rc != 0) {
            if (rc == PT_ENOMEM)
                pt_wh_set_error(wh, "out of memory");
            goto done;
        }
    }
    for (tries = 0;; tries++) {
        int idle;
        rc = ensure_connected(w);
        if (rc != 0)
            goto done;
        idle = PQtransactionStatus(w->conn) == PQTRANS_IDLE;
        sent = nparams > 0 ? PQsendQueryParams(w->conn, pt_buf_cstr(&query), (int)nparams, p.types,
                                               p.values, p.lengths, p.formats, 0)
                           : PQsendQuery(w->conn, sql);
        if (sent) {
            w->sent_in_txn = !idle;
            break;
        }
        /* Not sent: libpq found the connection dead before the statement left (design note
         * 2), so running it on a fresh connection cannot run it twice. Once, and never inside
         * a transaction, which the fresh connection would not have. */
        if (tries > 0 || !idle || PQstatus(w->conn) == CONNECTION_OK) {
            char prefix[128];
            snprintf(prefix, sizeof prefix,
                     "PostgreSQL connection '%s' is unavailable: ", w->base.name);
            set_conn_error(w, prefix);
            rc = PT_EUNAVAIL;
            goto done;
        }
    }
    /* Sent: whatever happens now is reported, never retried; the server may have run the
     * statement (and committed it) even when the connection dies before its answer. */
    PQsetSingleRowMode(w->conn);
    /* The last result before the end is the cursor; a row result starts streaming. */
    while ((res = PQgetResult(w->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE) {
            PQclear(last);
            last = res;
            streaming = 1;
            break;
        }
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK || st == PGRES_EMPTY_QUERY) {
            PQclear(last);
            last = res;
            continue;
        }
        rc = map_result_error(w, res);
        PQclear(res);
        drain(w);
        break;
    }
    if (rc != 0) {
        PQclear(last);
        goto done;
    }
    rc = cursor_new(w, last, streaming, &c);
    if (rc == 0)
        *out = &c->base;
done:
    pt_buf_free(&query);
    pt_buf_free(&p.text);
    return rc;
}

/* Would PQgetResult wait for the server? Never waits itself. The socket is read only when
 * what libpq holds has no whole result: each read moves the unparsed input to the front of
 * libpq's buffer, and reading on every row would let that buffer grow to the whole result and
 * be moved once a row. A broken connection does not wait: PQgetResult reports it. */
static int
would_wait(pg_wh *w)
{
    return PQisBusy(w->conn) && PQconsumeInput(w->conn) && PQisBusy(w->conn);
}

/* pt_wh_cursor_next, or with nowait set, pt_wh_cursor_next_nowait: it then returns PT_EAGAIN
 * before any PQgetResult that would wait, and picks up where it stopped on the next call. */
static int
step(pg_cursor *c, int nowait)
{
    pg_wh *w = (pg_wh *)c->base.wh;
    PGresult *res;

    if (c->done)
        return 0;
    if (c->row + 1 < c->nrows) {
        c->row++;
        return 1;
    }
    if (!c->streaming) {
        c->done = 1;
        return 0;
    }
    PQclear(c->res);
    c->res = NULL;
    c->row = 0;
    c->nrows = 0;
    for (;;) {
        ExecStatusType st;
        if (nowait && would_wait(w))
            return PT_EAGAIN;
        res = PQgetResult(w->conn);
        if (res == NULL)
            break;
        st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE) {
            c->res = res;
            c->nrows = 1;
            return 1;
        }
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            const char *n = PQcmdTuples(res);
            if (n != NULL && n[0] != '\0')
                c->base.changes = strtoll(n, NULL, 10);
            PQclear(res);
            continue; /* later statements of a multi-statement string */
        }
        if (c->err == 0)
            c->err = map_result_error(w, res);
        PQclear(res);
    }
    c->streaming = 0;
    c->done = 1;
    if (w->active == c)
        w->active = NULL;
    return c->err;
}

static int
pg_next(pt_wh_cursor *cur)
{
    return step((pg_cursor *)cur, 0);
}

static int
pg_next_nowait(pt_wh_cursor *cur)
{
    pg_cursor *c = (pg_cursor *)cur;

    c->nowait = 1;
    return step(c, 1);
}

static int
pg_fd(const pt_wh_cursor *cur)
{
    return PQsocket(((const pg_wh *)cur->wh)->conn);
}

static int
pg_may_block(pt_wh_cursor *cur)
{
    pg_cursor *c = (pg_cursor *)cur;
    pg_wh *w = (pg_wh *)cur->wh;

    if (c->done || c->row + 1 < c->nrows || !c->streaming)
        return 0;
    return would_wait(w);
}

static int
hexdigit(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Appends one array element (unquoted token or unescaped quoted text) as JSON. */
static int
array_elem(pt_buf *out, enum kind k, const char *s, size_t n, int quoted)
{
    if (!quoted && n == 4 && strncasecmp(s, "NULL", 4) == 0)
        return pt_buf_puts(out, "null");
    switch (k) {
    case K_ARR_NUM:
        return pt_buf_append(out, s, n);
    case K_ARR_BOOL:
        return pt_buf_puts(out, n > 0 && s[0] == 't' ? "true" : "false");
    case K_ARR_JSON:
        return pt_buf_append(out, s, n);
    case K_ARR_DATETIME: {
        char iso[PT_WH_ISO_MAX];
        if (n + 4 >= PT_WH_ISO_MAX) /* not a date or time PostgreSQL writes: as it is */
            return pt_json_string(out, s, n);
        n = pt_wh_iso_datetime(s, n, iso);
        return pt_json_string(out, iso, n);
    }
    default:
        return pt_json_string(out, s, n);
    }
}

/* Converts PostgreSQL's array text ("{1,2,NULL}", "{{a,\"b c\"},{d,e}}") into a JSON array.
 * Returns 0 or a pt_buf error. */
static int
array_to_json(const char *s, size_t n, enum kind k, pt_buf *out, pt_buf *tmp)
{
    size_t i = 0;
    int rc = 0;

    if (n > 0 && s[0] == '[') { /* explicit bounds: "[0:1]={...}" */
        while (i < n && s[i] != '=')
            i++;
        i++;
    }
    for (; i < n && rc == 0; i++) {
        char ch = s[i];
        if (ch == '{') {
            rc = pt_buf_putc(out, '[');
        } else if (ch == '}') {
            rc = pt_buf_putc(out, ']');
        } else if (ch == ',') {
            rc = pt_buf_puts(out, ", ");
        } else if (ch == '"') {
            pt_buf_reset(tmp);
            for (i++; i < n && s[i] != '"' && rc == 0; i++) {
                if (s[i] == '\\' && i + 1 < n)
                    i++;
                rc = pt_buf_putc(tmp, s[i]);
            }
            if (rc == 0)
                rc = array_elem(out, k, tmp->len > 0 ? tmp->data : "", tmp->len, 1);
        } else {
            size_t start = i;
            while (i < n && s[i] != ',' && s[i] != '}')
                i++;
            rc = array_elem(out, k, s + start, i - start, 0);
            i--;
        }
    }
    return rc;
}

static void
pg_value(const pt_wh_cursor *cur, size_t i, pt_value *v)
{
    const pg_cursor *c = (const pg_cursor *)cur;
    int col = (int)i;
    const char *s;
    size_t n, k;
    pt_buf *sc;

    v->type = PT_V_NULL;
    if (c->done || c->row < 0 || c->row >= c->nrows || i >= cur->ncols ||
        PQgetisnull(c->res, c->row, col))
        return;
    s = PQgetvalue(c->res, c->row, col);
    n = (size_t)PQgetlength(c->res, c->row, col);
    sc = &c->scratch[i];
    v->u.s.p = s;
    v->u.s.n = n;
    switch (c->kinds[i]) {
    case K_TEXT:
        v->type = PT_V_TEXT;
        break;
    case K_BOOL:
        v->type = PT_V_BOOL;
        v->u.i = s[0] == 't';
        break;
    case K_INT:
        v->type = PT_V_INT;
        v->u.i = strtoll(s, NULL, 10);
        break;
    case K_FLOAT:
        v->type = PT_V_FLOAT;
        v->u.f = strtod(s, NULL);
        break;
    case K_NUMERIC:
        v->type = PT_V_NUMERIC;
        break;
    case K_JSON:
        v->type = PT_V_JSON;
        break;
    case K_BYTEA:
        /* Hex format (session setting): "\x" then two digits a byte. */
        pt_buf_reset(sc);
        v->type = PT_V_BLOB;
        for (k = 2; k + 1 < n; k += 2) {
            int hi = hexdigit((unsigned char)s[k]), lo = hexdigit((unsigned char)s[k + 1]);
            if (hi < 0 || lo < 0 || pt_buf_putc(sc, (char)(hi * 16 + lo)) != 0)
                break;
        }
        v->u.s.p = sc->data != NULL ? sc->data : "";
        v->u.s.n = sc->len;
        break;
    case K_DATE:
    case K_TIME:
    case K_TIMESTAMP:
        v->type = c->kinds[i] == K_DATE   ? PT_V_DATE
                  : c->kinds[i] == K_TIME ? PT_V_TIME
                                          : PT_V_TIMESTAMP;
        pt_buf_reset(sc);
        if (pt_buf_reserve(sc, PT_WH_ISO_MAX) == 0) {
            v->u.s.n = pt_wh_iso_datetime(s, n, sc->data);
            v->u.s.p = sc->data;
        }
        break;
    case K_ARR_NUM:
    case K_ARR_BOOL:
    case K_ARR_JSON:
    case K_ARR_TEXT:
    case K_ARR_DATETIME: {
        pt_buf tmp;
        pt_buf_init(&tmp, 0);
        pt_buf_reset(sc);
        if (array_to_json(s, n, c->kinds[i], sc, &tmp) == 0 && sc->data != NULL) {
            v->type = PT_V_JSON;
            v->u.s.p = sc->data;
            v->u.s.n = sc->len;
        } else {
            v->type = PT_V_TEXT;
        }
        pt_buf_free(&tmp);
        break;
    }
    }
}

static void
pg_cursor_free(pt_wh_cursor *cur)
{
    pg_cursor *c = (pg_cursor *)cur;
    size_t i;

    abandon(c);
    PQclear(c->res);
    if (c->scratch != NULL)
        for (i = 0; i < cur->ncols; i++)
            pt_buf_free(&c->scratch[i]);
    free(c->scratch);
    free(c->kinds);
    free(c->base.colnames);
    free(c->base.coltypes);
    free(c);
}

/* ---- helpers over exec -------------------------------------------------------------------- */

/* Runs sql with one text parameter and returns the first column of every row through cb. */
static int
query_text(pg_wh *w, const char *sql, const char *param, void (*cb)(void *, const pt_value *),
           void *arg)
{
    pt_value v = {.type = PT_V_TEXT, .u.s = {param, strlen(param)}};
    pt_wh_cursor *c = NULL;
    pt_value out;
    int rc = pg_exec(&w->base, sql, &v, 1, &c);

    while (rc == 0) {
        int more = pg_next(c);
        if (more <= 0) {
            rc = more;
            break;
        }
        pg_value(c, 0, &out);
        cb(arg, &out);
    }
    if (c != NULL)
        pg_cursor_free(c);
    return rc;
}

static void
set_flag(void *arg, const pt_value *v)
{
    *(int *)arg = v->type == PT_V_BOOL && v->u.i != 0;
}

/* "schema"."table" for to_regclass(); names are validated identifiers. */
static void
qualified(char *out, size_t outsz, const char *schema, const char *table)
{
    snprintf(out, outsz, "\"%s\".\"%s\"", schema, table);
}

static int
pg_schema_exists(pt_wh *wh, const char *schema)
{
    int exists = 0;
    int rc = query_text((pg_wh *)wh, "SELECT count(*) > 0 FROM pg_namespace WHERE nspname = $1",
                        schema, set_flag, &exists);

    return rc != 0 ? rc : exists;
}

static int
pg_create_schema(pt_wh *wh, const char *schema)
{
    char sql[128];
    pt_wh_cursor *c = NULL;
    int rc;

    /* CREATE SCHEMA IF NOT EXISTS checks the CREATE privilege on the database before it looks
     * for the schema, so it fails for a role that may only use an existing schema: look first. */
    rc = pg_schema_exists(wh, schema);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS \"%s\"", schema);
    rc = pg_exec(wh, sql, NULL, 0, &c);
    if (c != NULL)
        pg_cursor_free(c);
    return rc;
}

static int
pg_table_exists(pt_wh *wh, const char *schema, const char *table)
{
    char q[160];
    int exists = 0, rc;

    qualified(q, sizeof q, schema, table);
    rc = query_text((pg_wh *)wh, "SELECT to_regclass($1) IS NOT NULL", q, set_flag, &exists);
    return rc != 0 ? rc : exists;
}

typedef struct name_list {
    char *names[1024];
    size_t n;
    int nomem;
} name_list;

static void
add_name(void *arg, const pt_value *v)
{
    name_list *l = arg;

    if (!PT_V_IS_TEXTLIKE(v->type) || l->n >= 1024)
        return;
    l->names[l->n] = strndup(v->u.s.p, v->u.s.n);
    if (l->names[l->n] == NULL)
        l->nomem = 1;
    else
        l->n++;
}

static int
need_table(pt_wh *wh, const char *schema, const char *table)
{
    int rc = pg_table_exists(wh, schema, table);

    if (rc == 0) {
        pt_wh_set_error(wh, "table %s.%s not found", schema, table);
        return PT_ENOTFOUND;
    }
    return rc < 0 ? rc : 0;
}

static int
pg_primary_key(pt_wh *wh, const char *schema, const char *table, char *out, size_t outsz)
{
    name_list l = {.n = 0};
    char q[160];
    size_t i;
    int rc = need_table(wh, schema, table);

    if (rc != 0)
        return rc;
    qualified(q, sizeof q, schema, table);
    rc = query_text((pg_wh *)wh,
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
                    "i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) "
                    "AND i.indisprimary",
                    q, add_name, &l);
    if (rc == 0 && l.n != 1) {
        pt_wh_set_error(wh, "table %s.%s has %s primary key", schema, table,
                        l.n == 0 ? "no" : "a multi-column");
        rc = PT_ENOTFOUND;
    }
    if (rc == 0)
        snprintf(out, outsz, "%s", l.names[0]);
    for (i = 0; i < l.n; i++)
        free(l.names[i]);
    return rc;
}

static int
pg_columns(pt_wh *wh, const char *schema, const char *table, char ***names, size_t *n)
{
    name_list l = {.n = 0};
    char q[160];
    size_t i;
    int rc = need_table(wh, schema, table);

    if (rc != 0)
        return rc;
    qualified(q, sizeof q, schema, table);
    rc = query_text((pg_wh *)wh,
                    "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND "
                    "attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    q, add_name, &l);
    if (rc == 0 && l.nomem)
        rc = PT_ENOMEM;
    if (rc == 0) {
        *names = pt_wh_names_dup((const char *const *)l.names, l.n);
        *n = l.n;
        if (*names == NULL)
            rc = PT_ENOMEM;
    }
    if (rc == PT_ENOMEM)
        pt_wh_set_error(wh, "out of memory");
    for (i = 0; i < l.n; i++)
        free(l.names[i]);
    return rc;
}

static int
pg_in_transaction(pt_wh *wh)
{
    PGTransactionStatusType st = PQtransactionStatus(((pg_wh *)wh)->conn);

    return st == PQTRANS_INTRANS || st == PQTRANS_INERROR;
}

/* ---- prepared statements ------------------------------------------------------------------ */

static int
pg_prepare(pt_wh *wh, const char *sql, pt_wh_stmt **out)
{
    pg_wh *w = (pg_wh *)wh;
    PGresult *res = NULL;
    pg_stmt *s = NULL;
    pt_buf query;
    int rc;

    *out = NULL;
    pt_buf_init(&query, 0);
    if (w->active != NULL)
        abandon(w->active);
    rc = rewrite_placeholders(sql, &query);
    if (rc == 0)
        rc = ensure_connected(w);
    if (rc != 0)
        goto done;
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        rc = PT_ENOMEM;
        pt_wh_set_error(wh, "out of memory");
        goto done;
    }
    s->base.wh = wh;
    snprintf(s->name, sizeof s->name, "pt_stmt_%u", ++w->stmt_seq);
    res = PQprepare(w->conn, s->name, pt_buf_cstr(&query), 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = map_result_error(w, res);
        goto done;
    }
    *out = &s->base;
    s = NULL;
done:
    PQclear(res);
    free(s);
    pt_buf_free(&query);
    return rc;
}

static int
pg_stmt_run(pt_wh_stmt *st, const pt_value *vals, size_t nparams)
{
    pg_stmt *s = (pg_stmt *)st;
    pg_wh *w = (pg_wh *)st->wh;
    PGresult *res = NULL;
    params p;
    int rc;

    pt_buf_init(&p.text, 0);
    rc = build_params(w, &p, vals, nparams);
    if (rc != 0)
        goto done;
    res = PQexecPrepared(w->conn, s->name, (int)nparams, p.values, p.lengths, p.formats, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = map_result_error(w, res);
done:
    PQclear(res);
    pt_buf_free(&p.text);
    return rc;
}

static void
pg_stmt_free(pt_wh_stmt *st)
{
    pg_stmt *s = (pg_stmt *)st;
    pg_wh *w = (pg_wh *)st->wh;
    char sql[64];

    if (PQstatus(w->conn) == CONNECTION_OK && w->active == NULL) {
        snprintf(sql, sizeof sql, "DEALLOCATE %s", s->name);
        PQclear(PQexec(w->conn, sql));
    }
    free(s);
}

/* ---- catalog ------------------------------------------------------------------------------ */

/* Text of value v (an int or bool printed), borrowed or in buf. */
static const char *
cat_text(const pt_value *v, char *buf, size_t bufsz)
{
    if (v->type == PT_V_NULL)
        return NULL;
    if (v->type == PT_V_INT || v->type == PT_V_BOOL) {
        snprintf(buf, bufsz, "%lld", (long long)v->u.i);
        return buf;
    }
    snprintf(buf, bufsz, "%.*s", (int)v->u.s.n, v->u.s.p);
    return buf;
}

static int
cat_int(const pt_value *v)
{
    if (v->type == PT_V_INT || v->type == PT_V_BOOL)
        return (int)v->u.i;
    if (v->type == PT_V_NULL || v->u.s.n == 0)
        return 0;
    return v->u.s.p[0] == 't' ? 1 : atoi(v->u.s.p);
}

/* One statement over pg_catalog: a row per column (or per table, or per schema without tables),
 * in schema, table, column order. Schemas the role may not use, pg_* and information_schema
 * are left out, and so are partitions (their parent is listed). A column's place in the primary
 * key is its 1-based position in pg_index.indkey, an int2vector whose subscripts start at 0. */
#define CAT_FROM                                                                                   \
    " FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN "        \
    "('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition AND $3 AND ($2::text IS NULL OR "          \
    "c.relname = $2) "
#define CAT_WHERE                                                                                  \
    " WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' AND "                \
    "has_schema_privilege(n.oid, 'USAGE') AND ($1::text IS NULL OR n.nspname = $1) "

static const char cat_fields_sql[] =
    "SELECT n.nspname, c.relname, c.relkind IN ('v', 'm'), a.attname, "
    "format_type(a.atttypid, a.atttypmod), a.attnotnull, "
    "COALESCE(array_position(i.indkey::int2[], a.attnum) - array_lower(i.indkey::int2[], 1) + 1, "
    "0)" CAT_FROM
    "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary" CAT_WHERE
    "ORDER BY n.nspname, c.relname, a.attnum";

static const char cat_tables_sql[] =
    "SELECT n.nspname, c.relname, c.relkind IN ('v', 'm'), "
    "NULL, NULL, NULL, NULL" CAT_FROM CAT_WHERE "ORDER BY n.nspname, c.relname";

static int
pg_catalog(pt_wh *wh, const char *schema, const char *table, pt_wh_cat_level level,
           pt_wh_catalog *cat)
{
    pt_value args[3];
    pt_wh_cursor *cur = NULL;
    char last_schema[256] = "", last_table[256] = "", buf[3][256];
    int rc, have_schema = 0, have_table = 0;

    args[0].type = schema != NULL ? PT_V_TEXT : PT_V_NULL;
    args[0].u.s.p = schema;
    args[0].u.s.n = schema != NULL ? strlen(schema) : 0;
    args[1].type = table != NULL ? PT_V_TEXT : PT_V_NULL;
    args[1].u.s.p = table;
    args[1].u.s.n = table != NULL ? strlen(table) : 0;
    args[2].type = PT_V_BOOL;
    args[2].u.i = level >= PT_WH_CAT_TABLES;
    rc = pt_wh_exec(wh, "SELECT current_database()", NULL, 0, &cur);
    if (rc == 0 && (rc = pt_wh_cursor_next(cur)) == 1) {
        pt_value v;
        pt_wh_cursor_value(cur, 0, &v);
        if (cat_text(&v, buf[0], sizeof buf[0]) != NULL && (cat->database = strdup(buf[0])) == NULL)
            rc = PT_ENOMEM;
        else
            rc = 0;
    }
    pt_wh_cursor_free(cur);
    cur = NULL;
    if (rc == 0)
        rc = pt_wh_exec(wh, level == PT_WH_CAT_FIELDS ? cat_fields_sql : cat_tables_sql, args, 3,
                        &cur);
    while (rc == 0 && (rc = pt_wh_cursor_next(cur)) == 1) {
        pt_value v[7];
        const char *s, *t, *f;
        for (size_t i = 0; i < 7; i++)
            pt_wh_cursor_value(cur, i, &v[i]);
        rc = 0;
        s = cat_text(&v[0], buf[0], sizeof buf[0]);
        t = cat_text(&v[1], buf[1], sizeof buf[1]);
        f = cat_text(&v[3], buf[2], sizeof buf[2]);
        if (s == NULL)
            continue;
        if (!have_schema || strcmp(s, last_schema) != 0) {
            rc = pt_wh_catalog_add_schema(wh, cat, s);
            snprintf(last_schema, sizeof last_schema, "%s", s);
            have_schema = 1;
            have_table = 0;
        }
        if (rc == 0 && t != NULL && (!have_table || strcmp(t, last_table) != 0)) {
            rc = pt_wh_catalog_add_table(wh, cat, t, cat_int(&v[2]));
            snprintf(last_table, sizeof last_table, "%s", t);
            have_table = 1;
        }
        if (rc == 0 && t != NULL && f != NULL) {
            char type[256];
            rc = pt_wh_catalog_add_field(wh, cat, f, cat_text(&v[4], type, sizeof type),
                                         cat_int(&v[6]), cat_int(&v[5]));
        }
    }
    pt_wh_cursor_free(cur);
    if (rc == PT_ENOMEM)
        pt_wh_set_error(wh, "out of memory");
    return rc;
}

/* DROP SCHEMA ... CASCADE: a schema goes with its tables, as Peliqan's delete_schema does. */
static int
pg_drop_schema(pt_wh *wh, const char *schema)
{
    pt_wh_cursor *cur = NULL;
    char sql[128];
    int rc = pg_schema_exists(wh, schema);

    if (rc < 0)
        return rc;
    if (rc == 0) {
        pt_wh_set_error(wh, "schema %s not found", schema);
        return PT_ENOTFOUND;
    }
    snprintf(sql, sizeof sql, "DROP SCHEMA \"%s\" CASCADE", schema); /* a valid identifier */
    rc = pt_wh_exec(wh, sql, NULL, 0, &cur);
    pt_wh_cursor_free(cur);
    return rc;
}

static const char *const pg_types[][2] = {
    {"int", "BIGINT"},
    {"float", "DOUBLE PRECISION"},
    {"numeric", "NUMERIC"},
    {"text", "TEXT"},
    {"bool", "BOOLEAN"},
    {"date", "DATE"},
    {"time", "TIME"},
    {"timestamp", "TIMESTAMP"},
    {"timestamptz", "TIMESTAMPTZ"},
    {"json", "JSONB"},
    {"bytes", "BYTEA"},
    {NULL, NULL},
};

static const pt_wh_driver pg_driver = {
    .kind = "postgres",
    .type_int = "BIGINT",
    .type_real = "DOUBLE PRECISION",
    .type_text = "TEXT",
    .close = pg_close,
    .exec = pg_exec,
    .next = pg_next,
    .may_block = pg_may_block,
    .next_nowait = pg_next_nowait,
    .fd = pg_fd,
    .value = pg_value,
    .cursor_free = pg_cursor_free,
    .create_schema = pg_create_schema,
    .table_exists = pg_table_exists,
    .schema_exists = pg_schema_exists,
    .prepare = pg_prepare,
    .stmt_run = pg_stmt_run,
    .stmt_free = pg_stmt_free,
    .primary_key = pg_primary_key,
    .columns = pg_columns,
    .in_transaction = pg_in_transaction,
    .types = pg_types,
    .catalog = pg_catalog,
    .drop_schema = pg_drop_schema,
};

const char *
pt_wh_pg_dbname(const pt_wh *wh)
{
    const pg_wh *pw = (const pg_wh *)wh;
    const char *db = pw->conn != NULL ? PQdb(pw->conn) : NULL;

    return db != NULL ? db : wh->name;
}
