/* store_reqlog.h - the stored request log: what each answered public request was (endpoint,
 * status, timing, caller, what the handler printed and its traceback), in its own SQLite file,
 * DATA/logs/requests.db, apart from the metadata store.
 *
 * Why a file of its own: every request is logged, so the log is by far the busiest writer of an
 * install; in portico.db its batches would take the store's one write lock from under CLI and
 * admin changes, and its churn (pruning) would bloat the metadata file. A separate file is also
 * what a multi-node store on PostgreSQL keeps local: each node logs what it served. WAL mode
 * lets readers (`portico logs`, the admin API) run beside the workers' writer threads.
 *
 * Why batches: a row per request costs SQLite 2 to 3 us of CPU (record encoding, B-tree, an
 * index on the request id, and as much again to prune it), which is 10 to 15% of a hello
 * request. So the file holds one row per batch a worker's writer commits (table `batches`): its
 * records, exactly as the worker's buffer holds them (struct pt_reqlog_rec below), in one blob.
 * Writing a batch is one insert; reading filters the records in C, newest first, which for the
 * log's bounded size (--log-max-rows) is a scan of a few tens of megabytes at most. Appending
 * and pruning cost well under a microsecond per request. (Two things measured worse: 64 KiB
 * pages, because every worker writes this file and each commit of another makes a writer read
 * its pages again; and any scan of `batches` that names `recs`, since SQLite then reads every
 * blob it steps over: pruning never does.)
 *
 * A request's id is its batch's row id times 65536 plus its index in the batch: ids grow with
 * commit order, so newest first is id order, paging is "ids below", following is "ids above".
 * Pruning drops whole batches, and the oldest records of the batch at the boundary (the blob
 * rewritten, its first_index moved on, so that the other records keep their ids). */
#ifndef PT_STORE_REQLOG_H
#define PT_STORE_REQLOG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct pt_store_reqlog pt_store_reqlog;

/* One logged request. Strings are NUL-terminated; NULL when absent (endpoint of a request no
 * endpoint matched, caller of a public endpoint, printed and traceback when none). Rows read
 * back own their strings (pt_store_reqlog_rows_free); rows given to insert are borrowed. */
typedef struct pt_reqlog_row {
    long long id;  /* row id; ignored by insert */
    int64_t ts_ms; /* when the request arrived, unix milliseconds */
    char *request_id;
    char *endpoint;
    char *method;
    char *path; /* without the query string; webhook tokens redacted */
    int status;
    double duration_ms;
    long long bytes_in, bytes_out;
    char *caller_type; /* "jwt" or "apikey" */
    char *caller_id;
    char *caller_name;
    int worker;
    char *printed; /* print() lines, each ending in '\n' (truncation marked inside) */
    char *traceback;
} pt_reqlog_row;

/* What to read. Zero fields do not filter. */
typedef struct pt_reqlog_filter {
    const char *endpoint;
    int status_min, status_max; /* both 0: any status */
    int64_t since_ms;           /* rows with ts_ms >= since_ms */
    const char *request_id;
    long long before_id; /* rows with id < before_id (paging newest first) */
    long long after_id;  /* rows with id > after_id, oldest first (following) */
    int limit;           /* at most this many rows; 0 means 100 */
    int with_output;     /* read printed and traceback too */
} pt_reqlog_filter;

/* The strings of one logged request, in this order (pt_reqlog_entry.s and .len). */
enum pt_reqlog_field {
    PT_RL_REQUEST_ID,
    PT_RL_ENDPOINT, /* absent (NULL) when no endpoint matched */
    PT_RL_METHOD,
    PT_RL_PATH,
    PT_RL_CALLER_TYPE,
    PT_RL_CALLER_ID,
    PT_RL_CALLER_NAME,
    PT_RL_PRINTED,
    PT_RL_TRACEBACK,
    PT_RL_NFIELDS
};

/* One request to log. Strings are borrowed, s[i] NULL when absent (len ignored then). */
typedef struct pt_reqlog_entry {
    int worker;    /* the number of the worker that answered it (server/reqlog.h) */
    int64_t ts_ms; /* unix milliseconds */
    int status;
    double duration_ms;
    long long bytes_in, bytes_out;
    const char *s[PT_RL_NFIELDS];
    size_t len[PT_RL_NFIELDS];
} pt_reqlog_entry;

/* A record: this header, then each present string and a NUL, the whole padded to 8 bytes. A
 * header with pad set is not a request (the worker's buffer skips to its start there) and is
 * never stored. The file keeps records in this layout (PRAGMA user_version 1). */
typedef struct pt_reqlog_rec {
    uint32_t size; /* the whole record, a multiple of 8 */
    uint32_t pad;
    int64_t ts_ms;
    double duration_ms;
    int64_t bytes_in, bytes_out;
    int32_t status;
    uint32_t len[PT_RL_NFIELDS]; /* UINT32_MAX: absent */
} pt_reqlog_rec;

/* The size of e's record (a multiple of 8), or 0 when it is too large for one (4 GiB). */
size_t pt_store_reqlog_rec_size(const pt_reqlog_entry *e);
/* Writes e's record into dst, which holds pt_store_reqlog_rec_size(e) bytes, 8-aligned. */
void pt_store_reqlog_rec_write(void *dst, const pt_reqlog_entry *e);

/* Opens (creating DATA/logs/ and the table unless readonly) the log of datadir. Returns 0
 * (caller frees *out with pt_store_reqlog_close), or PT_EDB / PT_EIO / PT_ENOTFOUND (readonly,
 * no log yet) with the reason in err. Any thread; one handle per thread. */
int pt_store_reqlog_open(const char *datadir, int readonly, pt_store_reqlog **out, char *err,
                         size_t errsz);
/* NULL is a no-op. */
void pt_store_reqlog_close(pt_store_reqlog *db);
/* The most records one stored batch holds (ids keep 16 bits for a record's index). */
#define PT_REQLOG_BATCH_MAX 65535

/* One batch to append: n records (at most PT_REQLOG_BATCH_MAX, no pad records) in recs[0..len),
 * 8-aligned, from worker `worker`. Borrowed. */
typedef struct pt_reqlog_batch {
    const void *recs;
    size_t len;
    size_t n;
    int worker;
} pt_reqlog_batch;

/* Appends batches[0..nb) in one transaction. Returns 0 or PT_EDB (message in
 * pt_store_reqlog_error). */
int pt_store_reqlog_insert(pt_store_reqlog *db, const pt_reqlog_batch *batches, size_t nb);
/* Deletes the rows older than min_ts_ms (0: no age bound), all but the newest max_rows (0: no
 * count bound), and, when the file's pages in use hold more than max_bytes (0: no size bound),
 * the oldest rows until about 90% of max_bytes stay, going by the average size of a row;
 * free pages past a quarter of max_bytes are then given back to the file system (a file
 * made with auto_vacuum incremental: every file this version creates). *deleted (may be
 * NULL) gets how many went. Returns 0 or PT_EDB. */
int pt_store_reqlog_prune(pt_store_reqlog *db, int64_t min_ts_ms, long long max_rows,
                          long long max_bytes, long long *deleted);
/* The bytes of the file's pages in use (page_count - freelist_count, times page_size), or a
 * negative pt_err. */
long long pt_store_reqlog_used_bytes(pt_store_reqlog *db);
/* Reads the rows f selects: newest first, or oldest first after f->after_id. Returns 0 with
 * *rows (caller frees with pt_store_reqlog_rows_free; NULL when none) and *n, or PT_EDB /
 * PT_ENOMEM. */
int pt_store_reqlog_query(pt_store_reqlog *db, const pt_reqlog_filter *f, pt_reqlog_row **rows,
                          size_t *n);
/* The newest row id (0 when the log is empty), or a negative pt_err. */
long long pt_store_reqlog_last_id(pt_store_reqlog *db);
/* Frees rows read by pt_store_reqlog_query. NULL is a no-op. */
void pt_store_reqlog_rows_free(pt_reqlog_row *rows, size_t n);
/* The last error's message (borrowed, valid until the next call on db). */
const char *pt_store_reqlog_error(pt_store_reqlog *db);

/* The row as JSON: {"id", "time" (ISO 8601 UTC, ms), "request_id", "endpoint", "method",
 * "path", "status", "duration_ms", "bytes_in", "bytes_out", "caller" ({"type", "id", "name"} or
 * null), "worker"} and, with_output, "printed" (a list of lines) and "traceback" (or null). New
 * reference (json_decref), NULL when out of memory. */
json_t *pt_store_reqlog_row_json(const pt_reqlog_row *r, int with_output);
/* Formats unix milliseconds as "2026-12-04T12:48:57.653Z" into out (at least 32 bytes). */
void pt_store_reqlog_format_time(int64_t ts_ms, char *out, size_t outsz);

/* Parses a --status filter: "5xx", "4xx" (any class 1xx-5xx) or one status "500" into
 * [*min, *max]. Returns 0 or PT_EINVAL. */
int pt_store_reqlog_parse_status(const char *s, int *min, int *max);

#endif
