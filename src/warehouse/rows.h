/* rows.h - serializing a cursor's rows as JSON, NDJSON or CSV straight from the database
 * values ("rows at C speed"), whole or in bounded chunks, and the body stream that sends a
 * large result while the rows are still being read.
 *
 * The JSON is byte for byte what json.dumps prints for the rows pq.fetch() would return (a
 * list of dicts in column order, default separators, non-ASCII kept). */
#ifndef PT_ROWS_H
#define PT_ROWS_H

#include <stddef.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/stream.h"
#include "warehouse/wh.h"

typedef enum pt_rows_format {
    PT_ROWS_JSON,   /* [{"a": 1}, {"a": 2}] */
    PT_ROWS_NDJSON, /* {"a": 1}\n{"a": 2}\n */
    PT_ROWS_CSV,    /* a,b\r\n1,x\r\n (RFC 4180) */
} pt_rows_format;

typedef struct pt_rows_opts {
    pt_rows_format format;
    int python_types; /* 1: numeric as numbers, JSON parsed; 0: both as their text */
    /* What NULL becomes (JSON text / CSV field); NULL pointers mean null / empty. In date and
     * time columns the nat_* ones are used when set. Copied by pt_rows_new. */
    const char *null_json, *null_csv;
    const char *nat_json, *nat_csv;
} pt_rows_opts;

typedef struct pt_rows pt_rows;

/* A writer over cur (borrowed: it must outlive the writer). Returns 0 or PT_ENOMEM. Caller
 * frees with pt_rows_free. */
int pt_rows_new(pt_wh_cursor *cur, const pt_rows_opts *opts, pt_rows **out);
void pt_rows_free(pt_rows *r); /* NULL is a no-op */

/* Appends output to b, reading rows until b has grown by at least `chunk` bytes (0: no limit)
 * or the rows end. Returns 1 when rows remain, 0 once the output is complete, or a pt_err:
 * PT_EDB / PT_EUNAVAIL from the cursor (message in pt_wh_errmsg), PT_ENOMEM / PT_ETOOBIG from
 * b. */
int pt_rows_write(pt_rows *r, pt_buf *b, size_t chunk);

/* Most row streams alive at once in a process (a worker). Each holds a database connection of
 * its own until its body is sent: the cap bounds the connections a worker keeps that way. */
#define PT_ROWS_MAX_STREAMS 8

/* Takes one of the PT_ROWS_MAX_STREAMS stream slots: 1 when it got one (give it to
 * pt_rows_stream_new, or back with pt_rows_stream_slot_release), 0 when all are in use.
 * Thread-safe. */
int pt_rows_stream_slot(void);
void pt_rows_stream_slot_release(void);
/* Streams alive now (slots taken). */
int pt_rows_streams_live(void);

/* A body stream (stream.h) that goes on where r stopped: takes ownership of wh, cur, r and a
 * slot taken with pt_rows_stream_slot, even on error (NULL when out of memory). Each call of
 * next() appends about `chunk` bytes, or fewer and PT_STREAM_WAIT when a PostgreSQL server
 * has not sent the next rows yet (wait_fd: the connection's socket). Freeing the stream gives
 * the slot back, and never waits for the server. */
pt_body_stream *pt_rows_stream_new(pt_wh *wh, pt_wh_cursor *cur, pt_rows *r, size_t chunk);

/* ---- value writers, shared with the Python serializer (src/py/response.c) ---------------- */

/* Appends v as JSON (the text json.dumps prints for the Python value pq gives). */
int pt_rows_json_value(pt_buf *b, const pt_value *v, int python_types);
/* Appends v as one CSV field. */
int pt_rows_csv_value(pt_buf *b, const pt_value *v, int python_types);
/* Appends s[0..n) as a CSV field, in double quotes when it holds , " CR or LF or is empty. */
int pt_rows_csv_field(pt_buf *b, const char *s, size_t n);
/* Appends p[0..n) in standard base64 (with padding). */
int pt_rows_base64(pt_buf *b, const void *p, size_t n);
/* Appends the JSON document s[0..n) as json.dumps prints json.loads(s); text that jansson
 * cannot parse (NaN, integers past 64 bits) is appended unchanged. */
int pt_rows_json_normalize(pt_buf *b, const char *s, size_t n);
/* Appends j (borrowed) as json.dumps prints it (", " and ": ", floats as Python prints them).
 * Returns 0, PT_ENOMEM, or PT_EINVAL when it nests deeper than 512. */
int pt_rows_json_emit(pt_buf *b, json_t *j);
/* Appends v as display text on one line, as `portico db query` shows a cell: NULL, true,
 * false, numbers, text with \n \t \r and other control characters escaped, blobs as X'hex'. */
int pt_rows_text_value(pt_buf *b, const pt_value *v);

#endif
