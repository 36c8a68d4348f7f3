/* rows.c - rows serialized from a cursor in C: JSON, NDJSON and CSV, in bounded chunks, and the
 * body stream that sends them from the worker's loop thread. */

/*
 * Design notes
 *
 * 1. Same bytes as Python. A handler that returns fetch() rows unchanged gets exactly what it
 *    would get if pq had built the list of dicts and the response serializer had printed it:
 *    keys in column order (a name used twice keeps its first position and its last value, as
 *    in a dict), ", " and ": " separators, floats as repr(), NULL as null or fillna_with. The
 *    per-type rules are in pt_rows_json_value and docs/HANDLERS.md (type mapping table).
 *
 * 2. Chunks. pt_rows_write stops after the chunk size is passed, at a row boundary, so a
 *    caller holds at most one chunk plus one row in memory whatever the result size.
 *
 * 3. The stream owns its connection, its cursor and its writer; it runs on the loop thread,
 *    where nothing else touches that connection (the Python side gave it up). It never waits
 *    for the database there: it reads with pt_wh_cursor_next_nowait, and when a PostgreSQL
 *    server has not sent the next rows yet, next() returns PT_STREAM_WAIT with what it wrote
 *    so far, and the worker watches the connection's socket (wait_fd) before asking again.
 *    Freeing the stream early does not wait for the server either (wh_pg.c, design note 3).
 *    Each stream still holds a database connection until its body is sent, so
 *    PT_ROWS_MAX_STREAMS caps the streams of a process, and results past the cap are written
 *    whole by the handler thread (pq_rows.c).
 */
#include "warehouse/rows.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "core/json.h"

typedef struct emit {
    size_t value_col; /* column whose value is written */
    size_t key_off;   /* offset of the key text in keys ("{\"a\": " / ", \"b\": ") */
    size_t key_len;
} emit;

struct pt_rows {
    pt_wh_cursor *cur; /* borrowed */
    pt_rows_opts opts; /* strings owned */
    emit *emits;
    size_t nemits;
    pt_buf keys; /* JSON: key texts; CSV: the header line */
    int started;
    int finished;
    int64_t nrows;
};

/* ---- value writers ----------------------------------------------------------------------- */

int
pt_rows_base64(pt_buf *b, const void *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    size_t i, o = b->len;
    int rc = pt_buf_reserve(b, (n + 2) / 3 * 4 + 1);

    if (rc != 0)
        return rc;
    for (i = 0; i + 2 < n; i += 3) {
        b->data[o++] = tbl[s[i] >> 2];
        b->data[o++] = tbl[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        b->data[o++] = tbl[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
        b->data[o++] = tbl[s[i + 2] & 63];
    }
    if (i < n) {
        b->data[o++] = tbl[s[i] >> 2];
        if (i + 1 < n) {
            b->data[o++] = tbl[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
            b->data[o++] = tbl[(s[i + 1] & 15) << 2];
        } else {
            b->data[o++] = tbl[(s[i] & 3) << 4];
            b->data[o++] = '=';
        }
        b->data[o++] = '=';
    }
    b->len = o;
    b->data[o] = '\0';
    return 0;
}

static int
json_emit(pt_buf *b, json_t *j, int depth)
{
    int rc = 0;

    if (depth > 512)
        return PT_EINVAL;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        int first = 1;
        rc = pt_buf_putc(b, '{');
        json_object_foreach(j, key, val)
        {
            if (rc == 0 && !first)
                rc = pt_buf_puts(b, ", ");
            first = 0;
            if (rc == 0)
                rc = pt_json_string(b, key, strlen(key));
            if (rc == 0)
                rc = pt_buf_puts(b, ": ");
            if (rc == 0)
                rc = json_emit(b, val, depth + 1);
        }
        return rc != 0 ? rc : pt_buf_putc(b, '}');
    }
    case JSON_ARRAY: {
        size_t i;
        rc = pt_buf_putc(b, '[');
        for (i = 0; rc == 0 && i < json_array_size(j); i++) {
            if (i > 0)
                rc = pt_buf_puts(b, ", ");
            if (rc == 0)
                rc = json_emit(b, json_array_get(j, i), depth + 1);
        }
        return rc != 0 ? rc : pt_buf_putc(b, ']');
    }
    case JSON_STRING:
        return pt_json_string(b, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        return pt_json_int(b, json_integer_value(j));
    case JSON_REAL:
        return pt_json_double(b, json_real_value(j));
    case JSON_TRUE:
        return pt_buf_puts(b, "true");
    case JSON_FALSE:
        return pt_buf_puts(b, "false");
    case JSON_NULL:
        return pt_buf_puts(b, "null");
    }
    return 0;
}

int
pt_rows_json_emit(pt_buf *b, json_t *j)
{
    return json_emit(b, j, 0);
}

int
pt_rows_text_value(pt_buf *b, const pt_value *v)
{
    static const char hex[] = "0123456789abcdef";
    char num[40];
    size_t i;

    switch (v->type) {
    case PT_V_NULL:
        return pt_buf_puts(b, "NULL");
    case PT_V_INT:
        return pt_buf_printf(b, "%" PRId64, v->u.i);
    case PT_V_BOOL:
        return pt_buf_puts(b, v->u.i ? "true" : "false");
    case PT_V_FLOAT:
        pt_json_format_double(v->u.f, num);
        return pt_buf_puts(b, num);
    case PT_V_TEXT:
    case PT_V_NUMERIC:
    case PT_V_DATE:
    case PT_V_TIME:
    case PT_V_TIMESTAMP:
    case PT_V_JSON:
        for (i = 0; i < v->u.s.n; i++) {
            unsigned char c = (unsigned char)v->u.s.p[i];
            int rc;
            if (c == '\n')
                rc = pt_buf_puts(b, "\\n");
            else if (c == '\t')
                rc = pt_buf_puts(b, "\\t");
            else if (c == '\r')
                rc = pt_buf_puts(b, "\\r");
            else if (c < 0x20 || c == 0x7f)
                rc = pt_buf_printf(b, "\\x%02x", c);
            else
                rc = pt_buf_putc(b, (char)c);
            if (rc != 0)
                return rc;
        }
        return 0;
    case PT_V_BLOB:
        if (pt_buf_puts(b, "X'") != 0)
            return PT_ENOMEM;
        for (i = 0; i < v->u.s.n; i++) {
            unsigned char c = (unsigned char)v->u.s.p[i];
            if (pt_buf_putc(b, hex[c >> 4]) != 0 || pt_buf_putc(b, hex[c & 15]) != 0)
                return PT_ENOMEM;
        }
        return pt_buf_putc(b, '\'');
    }
    return 0;
}

int
pt_rows_json_normalize(pt_buf *b, const char *s, size_t n)
{
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    size_t mark = b->len;
    int rc;

    if (j == NULL)
        return pt_buf_append(b, s, n);
    rc = json_emit(b, j, 0);
    json_decref(j);
    if (rc == PT_EINVAL) { /* nested too deeply for us: as the database printed it */
        b->len = mark;
        rc = pt_buf_append(b, s, n);
    }
    return rc;
}

/* A numeric value as pq gives it to Python: a float, as Peliqan gives numeric and decimal
 * columns (12 is 12.0), printed as Python prints that float. */
static int
numeric_json(pt_buf *b, const char *s, size_t n)
{
    char tmp[128];

    if (n >= sizeof tmp)
        return pt_json_string(b, s, n);
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return pt_json_double(b, strtod(tmp, NULL));
}

int
pt_rows_json_value(pt_buf *b, const pt_value *v, int python_types)
{
    switch (v->type) {
    case PT_V_NULL:
        return pt_buf_puts(b, "null");
    case PT_V_INT:
        return pt_json_int(b, v->u.i);
    case PT_V_BOOL:
        return pt_buf_puts(b, v->u.i ? "true" : "false");
    case PT_V_FLOAT:
        return pt_json_double(b, v->u.f);
    case PT_V_TEXT:
    case PT_V_DATE:
    case PT_V_TIME:
    case PT_V_TIMESTAMP:
        return pt_json_string(b, v->u.s.p, v->u.s.n);
    case PT_V_NUMERIC:
        return python_types ? numeric_json(b, v->u.s.p, v->u.s.n)
                            : pt_json_string(b, v->u.s.p, v->u.s.n);
    case PT_V_JSON:
        return python_types ? pt_rows_json_normalize(b, v->u.s.p, v->u.s.n)
                            : pt_json_string(b, v->u.s.p, v->u.s.n);
    case PT_V_BLOB: {
        int rc = pt_buf_putc(b, '"');
        if (rc == 0)
            rc = pt_rows_base64(b, v->u.s.p, v->u.s.n);
        return rc != 0 ? rc : pt_buf_putc(b, '"');
    }
    }
    return 0;
}

int
pt_rows_csv_field(pt_buf *b, const char *s, size_t n)
{
    size_t i;
    int rc;

    if (n > 0 && memchr(s, ',', n) == NULL && memchr(s, '"', n) == NULL &&
        memchr(s, '\r', n) == NULL && memchr(s, '\n', n) == NULL)
        return pt_buf_append(b, s, n);
    rc = pt_buf_putc(b, '"');
    for (i = 0; rc == 0 && i < n; i++) {
        if (s[i] == '"')
            rc = pt_buf_putc(b, '"');
        if (rc == 0)
            rc = pt_buf_putc(b, s[i]);
    }
    return rc != 0 ? rc : pt_buf_putc(b, '"');
}

int
pt_rows_csv_value(pt_buf *b, const pt_value *v, int python_types)
{
    pt_buf tmp;
    int rc;

    switch (v->type) {
    case PT_V_NULL:
        return 0;
    case PT_V_INT:
    case PT_V_BOOL:
    case PT_V_FLOAT:
        return pt_rows_json_value(b, v, python_types);
    case PT_V_TEXT:
    case PT_V_DATE:
    case PT_V_TIME:
    case PT_V_TIMESTAMP:
        return pt_rows_csv_field(b, v->u.s.p, v->u.s.n);
    case PT_V_NUMERIC:
        if (!python_types)
            return pt_rows_csv_field(b, v->u.s.p, v->u.s.n);
        return numeric_json(b, v->u.s.p, v->u.s.n);
    case PT_V_JSON:
        if (!python_types)
            return pt_rows_csv_field(b, v->u.s.p, v->u.s.n);
        pt_buf_init(&tmp, 0);
        rc = pt_rows_json_normalize(&tmp, v->u.s.p, v->u.s.n);
        if (rc == 0)
            rc = pt_rows_csv_field(b, tmp.data != NULL ? tmp.data : "", tmp.len);
        pt_buf_free(&tmp);
        return rc;
    case PT_V_BLOB:
        return pt_rows_base64(b, v->u.s.p, v->u.s.n);
    }
    return 0;
}

/* ---- the writer -------------------------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

void
pt_rows_free(pt_rows *r)
{
    if (r == NULL)
        return;
    free((char *)r->opts.null_json);
    free((char *)r->opts.null_csv);
    free((char *)r->opts.nat_json);
    free((char *)r->opts.nat_csv);
    free(r->emits);
    pt_buf_free(&r->keys);
    free(r);
}

int
pt_rows_new(pt_wh_cursor *cur, const pt_rows_opts *opts, pt_rows **out)
{
    size_t ncols = pt_wh_cursor_ncols(cur), i, j;
    pt_rows *r = calloc(1, sizeof *r);
    int rc = 0;

    *out = NULL;
    if (r == NULL)
        return PT_ENOMEM;
    r->cur = cur;
    r->opts = *opts;
    r->opts.null_json = dup_or_null(opts->null_json);
    r->opts.null_csv = dup_or_null(opts->null_csv);
    r->opts.nat_json = dup_or_null(opts->nat_json);
    r->opts.nat_csv = dup_or_null(opts->nat_csv);
    pt_buf_init(&r->keys, 0);
    r->emits = calloc(ncols > 0 ? ncols : 1, sizeof *r->emits);
    if (r->emits == NULL || (opts->null_json != NULL && r->opts.null_json == NULL) ||
        (opts->null_csv != NULL && r->opts.null_csv == NULL) ||
        (opts->nat_json != NULL && r->opts.nat_json == NULL) ||
        (opts->nat_csv != NULL && r->opts.nat_csv == NULL))
        goto nomem;
    /* One key per distinct name, at its first position, with the value of its last column. */
    for (i = 0; i < ncols; i++) {
        const char *name = pt_wh_cursor_colname(cur, i);
        emit *e;
        for (j = 0; j < r->nemits; j++)
            if (strcmp(pt_wh_cursor_colname(cur, r->emits[j].value_col), name) == 0)
                break;
        if (j < r->nemits) {
            r->emits[j].value_col = i;
            continue;
        }
        e = &r->emits[r->nemits];
        e->value_col = i;
        e->key_off = r->keys.len;
        if (opts->format == PT_ROWS_CSV) {
            if (r->nemits > 0)
                rc |= pt_buf_putc(&r->keys, ',');
            rc |= pt_rows_csv_field(&r->keys, name, strlen(name));
        } else {
            rc |= pt_buf_puts(&r->keys, r->nemits == 0 ? "{" : ", ");
            rc |= pt_json_string(&r->keys, name, strlen(name));
            rc |= pt_buf_puts(&r->keys, ": ");
        }
        e->key_len = r->keys.len - e->key_off;
        r->nemits++;
    }
    if (opts->format == PT_ROWS_CSV && ncols > 0)
        rc |= pt_buf_puts(&r->keys, "\r\n");
    if (rc != 0)
        goto nomem;
    *out = r;
    return 0;
nomem:
    pt_rows_free(r);
    return PT_ENOMEM;
}

/* Appends one row (the cursor is on it). */
static int
write_row(pt_rows *r, pt_buf *b)
{
    const pt_rows_opts *o = &r->opts;
    size_t i;
    int rc = 0;

    for (i = 0; rc == 0 && i < r->nemits; i++) {
        const emit *e = &r->emits[i];
        pt_value v;
        pt_wh_cursor_value(r->cur, e->value_col, &v);
        if (o->format == PT_ROWS_CSV) {
            if (i > 0)
                rc = pt_buf_putc(b, ',');
            if (rc != 0)
                break;
            if (v.type == PT_V_NULL) {
                const char *fill =
                    PT_V_IS_DATETIME(pt_wh_cursor_coltype(r->cur, e->value_col)) && o->nat_csv
                        ? o->nat_csv
                        : o->null_csv;
                if (fill != NULL)
                    rc = pt_buf_puts(b, fill);
                continue;
            }
            rc = pt_rows_csv_value(b, &v, o->python_types); /* "" stays apart from NULL */
            continue;
        }
        rc = pt_buf_append(b, r->keys.data + e->key_off, e->key_len);
        if (rc != 0)
            break;
        if (v.type == PT_V_NULL) {
            const char *fill =
                PT_V_IS_DATETIME(pt_wh_cursor_coltype(r->cur, e->value_col)) && o->nat_json
                    ? o->nat_json
                    : o->null_json;
            rc = pt_buf_puts(b, fill != NULL ? fill : "null");
            continue;
        }
        rc = pt_rows_json_value(b, &v, o->python_types);
    }
    if (rc != 0)
        return rc;
    switch (o->format) {
    case PT_ROWS_CSV:
        return pt_buf_puts(b, "\r\n");
    case PT_ROWS_NDJSON:
        return pt_buf_puts(b, r->nemits > 0 ? "}\n" : "{}\n");
    case PT_ROWS_JSON:
        return pt_buf_puts(b, r->nemits > 0 ? "}" : "{}");
    }
    return 0;
}

/* pt_rows_write; with nowait set, rows are read with pt_wh_cursor_next_nowait, and PT_EAGAIN
 * says that the next row has not arrived: b holds whole rows only, and a later call goes on
 * from there. */
static int
write_rows(pt_rows *r, pt_buf *b, size_t chunk, int nowait)
{
    size_t start = b->len;
    int rc;

    if (r->finished)
        return 0;
    if (!r->started) {
        r->started = 1;
        if (r->opts.format == PT_ROWS_JSON)
            rc = pt_buf_putc(b, '[');
        else if (r->opts.format == PT_ROWS_CSV)
            rc = pt_buf_append(b, r->keys.data != NULL ? r->keys.data : "", r->keys.len);
        else
            rc = 0;
        if (rc != 0)
            return rc;
    }
    while (chunk == 0 || b->len - start < chunk) {
        rc = nowait ? pt_wh_cursor_next_nowait(r->cur) : pt_wh_cursor_next(r->cur);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            r->finished = 1;
            return r->opts.format == PT_ROWS_JSON ? pt_buf_putc(b, ']') : 0;
        }
        if (r->opts.format == PT_ROWS_JSON && r->nrows > 0 && (rc = pt_buf_puts(b, ", ")) != 0)
            return rc;
        rc = write_row(r, b);
        if (rc != 0)
            return rc;
        r->nrows++;
    }
    return 1;
}

int
pt_rows_write(pt_rows *r, pt_buf *b, size_t chunk)
{
    return write_rows(r, b, chunk, 0);
}

/* ---- the stream -------------------------------------------------------------------------- */

static atomic_int streams_live; /* slots taken (design note 3) */

int
pt_rows_stream_slot(void)
{
    int n = atomic_load(&streams_live);

    while (n < PT_ROWS_MAX_STREAMS)
        if (atomic_compare_exchange_weak(&streams_live, &n, n + 1))
            return 1;
    return 0;
}

void
pt_rows_stream_slot_release(void)
{
    atomic_fetch_sub(&streams_live, 1);
}

int
pt_rows_streams_live(void)
{
    return atomic_load(&streams_live);
}

typedef struct rows_stream {
    pt_body_stream base; /* first */
    pt_wh *wh;
    pt_wh_cursor *cur;
    pt_rows *rows;
    size_t chunk;
} rows_stream;

/* Up to a chunk of rows, whatever arrived of them when the database has not sent the rest
 * (design note 3). */
static int
stream_next(pt_body_stream *s, pt_buf *b)
{
    rows_stream *rs = (rows_stream *)s;
    int rc = write_rows(rs->rows, b, rs->chunk, 1);

    return rc == PT_EAGAIN ? PT_STREAM_WAIT : rc;
}

static int
stream_wait_fd(pt_body_stream *s)
{
    return pt_wh_cursor_fd(((rows_stream *)s)->cur);
}

static void
stream_free(pt_body_stream *s)
{
    rows_stream *rs = (rows_stream *)s;

    pt_rows_free(rs->rows);
    pt_wh_cursor_free(rs->cur); /* a PostgreSQL query still running is cancelled */
    pt_wh_close(rs->wh);
    free(rs);
    pt_rows_stream_slot_release();
}

pt_body_stream *
pt_rows_stream_new(pt_wh *wh, pt_wh_cursor *cur, pt_rows *r, size_t chunk)
{
    rows_stream *rs = calloc(1, sizeof *rs);

    if (rs == NULL) {
        pt_rows_free(r);
        pt_wh_cursor_free(cur);
        pt_wh_close(wh);
        pt_rows_stream_slot_release();
        return NULL;
    }
    rs->base.next = stream_next;
    rs->base.wait_fd = stream_wait_fd;
    rs->base.free = stream_free;
    rs->wh = wh;
    rs->cur = cur;
    rs->rows = r;
    rs->chunk = chunk;
    return &rs->base;
}
