/* store_reqlog.c - the stored request log in DATA/logs/requests.db (see store_reqlog.h for why
 * it is a file of its own and holds batches): the record format, appending batches, pruning
 * from the old end, and reading with filters. */
#include "store/store_reqlog.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"

struct pt_store_reqlog {
    sqlite3 *db;
    sqlite3_stmt *insert; /* prepared once: the writer inserts every row with it */
    char err[256];
};

/* A batch: its records in one blob, the first `first_index` of which pruning removed. */
static const char schema_sql[] = "CREATE TABLE IF NOT EXISTS batches ("
                                 " id INTEGER PRIMARY KEY,"
                                 " worker INTEGER NOT NULL,"
                                 " first_index INTEGER NOT NULL,"
                                 " n INTEGER NOT NULL,"
                                 " min_ts INTEGER NOT NULL,"
                                 " max_ts INTEGER NOT NULL,"
                                 " recs BLOB NOT NULL);"
                                 "PRAGMA user_version = 1;";

#define ID_SHIFT 16 /* a request's id: batch id << 16 | index in the batch */

static size_t
align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

size_t
pt_store_reqlog_rec_size(const pt_reqlog_entry *e)
{
    size_t need = sizeof(pt_reqlog_rec);
    for (int i = 0; i < PT_RL_NFIELDS; i++)
        if (e->s[i] != NULL)
            need += e->len[i] + 1;
    need = align8(need);
    return need <= UINT32_MAX ? need : 0;
}

void
pt_store_reqlog_rec_write(void *dst, const pt_reqlog_entry *e)
{
    pt_reqlog_rec *r = dst;
    size_t size = pt_store_reqlog_rec_size(e);
    /* Every byte is written, padding included: records are stored as they are (a batch is one
     * blob), and no uninitialised byte may reach the file. */
    memset(r, 0, sizeof *r);
    r->size = (uint32_t)size;
    r->pad = 0;
    r->ts_ms = e->ts_ms;
    r->duration_ms = e->duration_ms;
    r->bytes_in = e->bytes_in;
    r->bytes_out = e->bytes_out;
    r->status = e->status;
    char *p = (char *)(r + 1);
    for (int i = 0; i < PT_RL_NFIELDS; i++) {
        if (e->s[i] == NULL) {
            r->len[i] = UINT32_MAX;
            continue;
        }
        r->len[i] = (uint32_t)e->len[i];
        memcpy(p, e->s[i], e->len[i]);
        p[e->len[i]] = '\0';
        p += e->len[i] + 1;
    }
    memset(p, 0, (size_t)((char *)dst + size - p)); /* up to the 8-byte boundary */
}

/* The strings of the record at r (borrowed from it; NULL when absent). Returns 0, or -1 when
 * the record is malformed (its strings overrun its size). */
static int
rec_fields(const pt_reqlog_rec *r, const char *f[PT_RL_NFIELDS])
{
    const char *p = (const char *)(r + 1), *end = (const char *)r + r->size;
    for (int i = 0; i < PT_RL_NFIELDS; i++) {
        f[i] = NULL;
        if (r->len[i] == UINT32_MAX)
            continue;
        if ((size_t)(end - p) < (size_t)r->len[i] + 1)
            return -1;
        f[i] = p;
        p += r->len[i] + 1;
    }
    return 0;
}

/* Walks the records of blob[0..len): offsets of at most max records into off. Returns how
 * many, stopping at a malformed one. */
static size_t
rec_offsets(const char *blob, size_t len, uint32_t *off, size_t max)
{
    size_t n = 0, pos = 0;
    while (n < max && pos + sizeof(pt_reqlog_rec) <= len) {
        const pt_reqlog_rec *r = (const pt_reqlog_rec *)(blob + pos);
        if (r->size < sizeof(pt_reqlog_rec) || r->size > len - pos || (r->size & 7) != 0)
            break;
        off[n++] = (uint32_t)pos;
        pos += r->size;
    }
    return n;
}

static int
fail(pt_store_reqlog *db, const char *what)
{
    snprintf(db->err, sizeof(db->err), "%s: %s", what, sqlite3_errmsg(db->db));
    return PT_EDB;
}

int
pt_store_reqlog_open(const char *datadir, int readonly, pt_store_reqlog **out, char *err,
                     size_t errsz)
{
    char path[4096];
    pt_store_reqlog *db = NULL;
    int rc = PT_EDB;

    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/logs", datadir) >= (int)sizeof(path)) {
        snprintf(err, errsz, "data dir path too long");
        return PT_EINVAL;
    }
    if (!readonly && mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create %s: %s", path, strerror(errno));
        return PT_EIO;
    }
    strcat(path, "/requests.db");
    if (readonly && access(path, F_OK) != 0) {
        snprintf(err, errsz, "no request log yet (%s): the server writes it", path);
        return PT_ENOTFOUND;
    }
    if ((db = calloc(1, sizeof(*db))) == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    /* Read-only users open it read-write too: WAL readers need the -shm file, which a reader
     * may have to create; they never write rows. */
    if (sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, errsz, "cannot open %s: %s", path,
                 db->db != NULL ? sqlite3_errmsg(db->db) : "out of memory");
        goto fail;
    }
    /* A writer thread waits for another worker's batch; readers for a checkpoint. */
    sqlite3_busy_timeout(db->db, 5000);
    /* Switching to WAL takes the file exclusively and does not wait for a busy handler: when
     * several workers start at once, try again for a while. */
    for (int tries = 0;; tries++) {
        /* auto_vacuum takes effect in a file without tables only (a new log): pruning by
         * size can then give free pages back (pt_store_reqlog_prune). journal_size_limit
         * shrinks the WAL file after a checkpoint that followed a large batch. */
        int x = sqlite3_exec(db->db,
                             "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; "
                             "PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=4194304;",
                             NULL, NULL, NULL);
        if (x == SQLITE_OK && !readonly)
            x = sqlite3_exec(db->db, schema_sql, NULL, NULL, NULL);
        if (x == SQLITE_OK)
            break;
        if ((x != SQLITE_BUSY && x != SQLITE_LOCKED) || tries >= 200) {
            snprintf(err, errsz, "cannot set up %s: %s", path, sqlite3_errmsg(db->db));
            goto fail;
        }
        struct timespec pause = {0, 10000000L};
        nanosleep(&pause, NULL);
    }
    *out = db;
    return 0;
fail:
    pt_store_reqlog_close(db);
    return rc;
}

void
pt_store_reqlog_close(pt_store_reqlog *db)
{
    if (db == NULL)
        return;
    sqlite3_finalize(db->insert);
    sqlite3_close(db->db);
    free(db);
}

const char *
pt_store_reqlog_error(pt_store_reqlog *db)
{
    return db->err;
}

/* The smallest and largest time of the records in blob[0..len). */
static void
ts_range(const char *blob, size_t len, int64_t *lo, int64_t *hi)
{
    *lo = INT64_MAX;
    *hi = 0;
    for (size_t pos = 0; pos + sizeof(pt_reqlog_rec) <= len;) {
        const pt_reqlog_rec *r = (const pt_reqlog_rec *)(blob + pos);
        if (r->size < sizeof(pt_reqlog_rec))
            break;
        *lo = r->ts_ms < *lo ? r->ts_ms : *lo;
        *hi = r->ts_ms > *hi ? r->ts_ms : *hi;
        pos += r->size;
    }
    if (*lo == INT64_MAX)
        *lo = 0;
}

int
pt_store_reqlog_insert(pt_store_reqlog *db, const pt_reqlog_batch *batches, size_t nb)
{
    int rc = 0;

    if (nb == 0)
        return 0;
    if (db->insert == NULL &&
        sqlite3_prepare_v2(db->db,
                           "INSERT INTO batches(worker, first_index, n, min_ts, max_ts, recs) "
                           "VALUES (?1, 0, ?2, ?3, ?4, ?5)",
                           -1, &db->insert, NULL) != SQLITE_OK)
        return fail(db, "prepare insert");
    if (sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return fail(db, "begin");
    for (size_t i = 0; i < nb && rc == 0; i++) {
        const pt_reqlog_batch *b = &batches[i];
        int64_t lo, hi;
        if (b->n == 0)
            continue;
        ts_range(b->recs, b->len, &lo, &hi);
        sqlite3_stmt *s = db->insert;
        sqlite3_bind_int(s, 1, b->worker);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)b->n);
        sqlite3_bind_int64(s, 3, lo);
        sqlite3_bind_int64(s, 4, hi);
        sqlite3_bind_blob64(s, 5, b->recs, b->len, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = fail(db, "insert");
        sqlite3_reset(s);
    }
    sqlite3_clear_bindings(db->insert);
    if (rc == 0 && sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = fail(db, "commit");
    if (rc != 0)
        sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Drops the first k records of batch id (blob[0..len), n records, first_index first): the
 * batch is deleted when none remain, else its blob rewritten. */
static int
trim_batch(pt_store_reqlog *db, long long id, const char *blob, size_t len, const uint32_t *off,
           size_t n, long long first, size_t k)
{
    sqlite3_stmt *s = NULL;
    int rc = 0;
    const char *sql = k >= n ? "DELETE FROM batches WHERE id = ?1"
                             : "UPDATE batches SET first_index = ?2, n = ?3, min_ts = ?4, "
                               "max_ts = ?5, recs = ?6 WHERE id = ?1";
    if (sqlite3_prepare_v2(db->db, sql, -1, &s, NULL) != SQLITE_OK)
        return fail(db, "prepare prune");
    sqlite3_bind_int64(s, 1, id);
    if (k < n) {
        int64_t lo, hi;
        ts_range(blob + off[k], len - off[k], &lo, &hi);
        sqlite3_bind_int64(s, 2, first + (long long)k);
        sqlite3_bind_int64(s, 3, (long long)(n - k));
        sqlite3_bind_int64(s, 4, lo);
        sqlite3_bind_int64(s, 5, hi);
        sqlite3_bind_blob64(s, 6, blob + off[k], len - off[k], SQLITE_TRANSIENT);
    }
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = fail(db, "prune");
    sqlite3_finalize(s);
    return rc;
}

/* One integer of a query without parameters, or -1 when it fails. */
static long long
query_ll(pt_store_reqlog *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(db->db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

long long
pt_store_reqlog_used_bytes(pt_store_reqlog *db)
{
    long long pages = query_ll(db, "PRAGMA page_count");
    long long free_pages = query_ll(db, "PRAGMA freelist_count");
    long long page_size = query_ll(db, "PRAGMA page_size");
    if (pages < 0 || free_pages < 0 || page_size < 0)
        return fail(db, "measure");
    return (pages - free_pages) * page_size;
}

/* The row bound that brings the data within max_bytes: when the pages in use hold more, the
 * number of rows that about 90% of max_bytes holds at the log's average row size (rows differ
 * in size: the next prune, a second later, corrects what this one misjudged), at most
 * max_rows. Inside the prune's transaction. Returns the bound (0: none), or a pt_err. */
static long long
rows_within(pt_store_reqlog *db, long long max_rows, long long max_bytes)
{
    if (max_bytes <= 0)
        return max_rows;
    long long used = pt_store_reqlog_used_bytes(db);
    if (used < 0)
        return used;
    if (used <= max_bytes)
        return max_rows;
    long long rows = query_ll(db, "SELECT coalesce(sum(n), 0) FROM batches");
    if (rows < 0)
        return fail(db, "count for prune");
    long long fit = (long long)((double)rows * ((double)max_bytes * 0.9 / (double)used));
    if (fit < 1)
        fit = 1;
    return max_rows > 0 && max_rows < fit ? max_rows : fit;
}

int
pt_store_reqlog_prune(pt_store_reqlog *db, int64_t min_ts_ms, long long max_rows,
                      long long max_bytes, long long *deleted)
{
    /* Newest batch first: count the records to keep; the batch where the count or the age
     * bound is crossed is trimmed, every older one deleted (in one statement). */
    sqlite3_stmt *s = NULL;
    uint32_t *off = NULL;
    long long kept = 0, gone = 0, cut_below = 0;
    int rc = 0, step;

    if (sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return fail(db, "begin");
    if ((max_rows = rows_within(db, max_rows, max_bytes)) < 0) {
        rc = (int)max_rows;
        goto done;
    }
    if (sqlite3_prepare_v2(db->db,
                           "SELECT id, first_index, n, min_ts, max_ts FROM batches "
                           "ORDER BY id DESC",
                           -1, &s, NULL) != SQLITE_OK) {
        rc = fail(db, "prepare prune");
        goto done;
    }
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        long long id = sqlite3_column_int64(s, 0), first = sqlite3_column_int64(s, 1);
        long long n = sqlite3_column_int64(s, 2);
        int64_t lo = sqlite3_column_int64(s, 3), hi = sqlite3_column_int64(s, 4);
        int over_count = max_rows > 0 && kept + n > max_rows;
        int too_old = min_ts_ms > 0 && lo < min_ts_ms;
        if (!over_count && !too_old) {
            kept += n;
            continue;
        }
        if (!over_count && min_ts_ms > 0 && hi < min_ts_ms) {
            cut_below = id + 1; /* the whole batch is too old, and every older one */
            break;
        }
        /* This batch is trimmed: keep its newest records within both bounds. Its blob is read
         * by a query of its own: a column in the scan above would read every batch's blob. */
        sqlite3_finalize(s);
        s = NULL;
        if (sqlite3_prepare_v2(db->db, "SELECT recs FROM batches WHERE id = ?1", -1, &s, NULL) !=
                SQLITE_OK ||
            sqlite3_bind_int64(s, 1, id) != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW) {
            rc = fail(db, "prune");
            goto done;
        }
        const char *blob = sqlite3_column_blob(s, 0);
        size_t len = (size_t)sqlite3_column_bytes(s, 0);
        if ((off = malloc((size_t)(n > 0 ? n : 1) * sizeof(*off))) == NULL) {
            rc = PT_ENOMEM;
            goto done;
        }
        size_t m = rec_offsets(blob, len, off, (size_t)n), k = 0;
        if (max_rows > 0 && kept + (long long)m > max_rows)
            k = m - (size_t)(max_rows - kept);
        while (min_ts_ms > 0 && k < m &&
               ((const pt_reqlog_rec *)(blob + off[k]))->ts_ms < min_ts_ms)
            k++;
        if (k > 0 && (rc = trim_batch(db, id, blob, len, off, m, first, k)) != 0)
            goto done;
        gone += (long long)k;
        cut_below = id;
        step = SQLITE_DONE;
        break;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = fail(db, "prune");
        goto done;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (cut_below > 0) {
        if (sqlite3_prepare_v2(db->db, "DELETE FROM batches WHERE id < ?1 RETURNING n", -1, &s,
                               NULL) != SQLITE_OK) {
            rc = fail(db, "prepare prune");
            goto done;
        }
        sqlite3_bind_int64(s, 1, cut_below);
        while ((step = sqlite3_step(s)) == SQLITE_ROW)
            gone += sqlite3_column_int64(s, 0);
        if (step != SQLITE_DONE)
            rc = fail(db, "prune");
    }
done:
    free(off);
    sqlite3_finalize(s);
    if (rc == 0 && sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = fail(db, "commit");
    if (rc != 0)
        sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
    if (deleted != NULL)
        *deleted = rc == 0 ? gone : 0;
    /* Free pages are reused by the next batches; past a quarter of the bound they go back to
     * the file system, so the file keeps to about max_bytes * 1.25 (a no-op in a file
     * without auto_vacuum, made by an earlier version: there they are only reused). The
     * shorter file reaches the disk at a checkpoint: one is run now (passive: it waits for no
     * reader) instead of whenever the WAL next fills, which may be never on a quiet server. */
    if (rc == 0 && gone > 0 && max_bytes > 0 &&
        query_ll(db, "PRAGMA freelist_count") * query_ll(db, "PRAGMA page_size") > max_bytes / 4) {
        sqlite3_exec(db->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
        sqlite3_wal_checkpoint_v2(db->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    }
    return rc;
}

long long
pt_store_reqlog_last_id(pt_store_reqlog *db)
{
    sqlite3_stmt *s = NULL;
    long long id = 0;

    if (sqlite3_prepare_v2(db->db,
                           "SELECT id, first_index + n - 1 FROM batches ORDER BY id DESC LIMIT 1",
                           -1, &s, NULL) != SQLITE_OK)
        return fail(db, "last id");
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW)
        id = (sqlite3_column_int64(s, 0) << ID_SHIFT) + sqlite3_column_int64(s, 1);
    else if (step != SQLITE_DONE)
        id = fail(db, "last id");
    sqlite3_finalize(s);
    return id;
}

/* A copy of n bytes at p (NUL-terminated), or NULL for NULL; *oom set when it failed. */
static char *
copy(const char *p, uint32_t n, int *oom)
{
    if (p == NULL)
        return NULL;
    char *c = malloc((size_t)n + 1);
    if (c == NULL) {
        *oom = 1;
        return NULL;
    }
    memcpy(c, p, n);
    c[n] = '\0';
    return c;
}

/* Does the record (its strings f) pass f's filters other than the id bounds? */
static int
matches(const pt_reqlog_filter *flt, const pt_reqlog_rec *r, const char *const f[PT_RL_NFIELDS])
{
    if (flt->endpoint != NULL && flt->endpoint[0] != '\0' &&
        (f[PT_RL_ENDPOINT] == NULL || strcmp(f[PT_RL_ENDPOINT], flt->endpoint) != 0))
        return 0;
    if ((flt->status_min > 0 || flt->status_max > 0) &&
        (r->status < flt->status_min || r->status > flt->status_max))
        return 0;
    if (flt->since_ms > 0 && r->ts_ms < flt->since_ms)
        return 0;
    if (flt->request_id != NULL && flt->request_id[0] != '\0' &&
        (f[PT_RL_REQUEST_ID] == NULL || strcmp(f[PT_RL_REQUEST_ID], flt->request_id) != 0))
        return 0;
    return 1;
}

/* Fills row from the record r (strings f) with id `id` of worker `worker`. */
static void
fill_row(pt_reqlog_row *row, long long id, int worker, const pt_reqlog_rec *r,
         const char *const f[PT_RL_NFIELDS], int with_output, int *oom)
{
    row->id = id;
    row->ts_ms = r->ts_ms;
    row->status = r->status;
    row->duration_ms = r->duration_ms;
    row->bytes_in = r->bytes_in;
    row->bytes_out = r->bytes_out;
    row->worker = worker;
    row->request_id = copy(f[PT_RL_REQUEST_ID], r->len[PT_RL_REQUEST_ID], oom);
    row->endpoint = copy(f[PT_RL_ENDPOINT], r->len[PT_RL_ENDPOINT], oom);
    row->method = copy(f[PT_RL_METHOD], r->len[PT_RL_METHOD], oom);
    row->path = copy(f[PT_RL_PATH], r->len[PT_RL_PATH], oom);
    row->caller_type = copy(f[PT_RL_CALLER_TYPE], r->len[PT_RL_CALLER_TYPE], oom);
    row->caller_id = copy(f[PT_RL_CALLER_ID], r->len[PT_RL_CALLER_ID], oom);
    row->caller_name = copy(f[PT_RL_CALLER_NAME], r->len[PT_RL_CALLER_NAME], oom);
    if (with_output) {
        row->printed = copy(f[PT_RL_PRINTED], r->len[PT_RL_PRINTED], oom);
        row->traceback = copy(f[PT_RL_TRACEBACK], r->len[PT_RL_TRACEBACK], oom);
    }
}

int
pt_store_reqlog_query(pt_store_reqlog *db, const pt_reqlog_filter *f, pt_reqlog_row **rows,
                      size_t *n)
{
    /* The batches that may hold matching records, in the order rows are wanted; the records
     * of each are filtered here (see the header: why batches). */
    static const char sql_desc[] =
        "SELECT id, worker, first_index, n, recs FROM batches WHERE (?1 IS NULL OR max_ts >= ?1) "
        "AND (?2 IS NULL OR id <= ?2) AND (?3 IS NULL OR id >= ?3) ORDER BY id DESC";
    static const char sql_asc[] =
        "SELECT id, worker, first_index, n, recs FROM batches WHERE (?1 IS NULL OR max_ts >= ?1) "
        "AND (?2 IS NULL OR id <= ?2) AND (?3 IS NULL OR id >= ?3) ORDER BY id ASC";
    int asc = f->after_id > 0;
    sqlite3_stmt *s = NULL;
    pt_reqlog_row *out = NULL;
    uint32_t *off = NULL;
    size_t count = 0, offcap = 0;
    int limit = f->limit > 0 ? f->limit : 100, oom = 0, rc = 0, step = SQLITE_DONE;

    *rows = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db->db, asc ? sql_asc : sql_desc, -1, &s, NULL) != SQLITE_OK)
        return fail(db, "prepare query");
    if (f->since_ms > 0)
        sqlite3_bind_int64(s, 1, f->since_ms);
    if (f->before_id > 0)
        sqlite3_bind_int64(s, 2, f->before_id >> ID_SHIFT);
    if (f->after_id > 0)
        sqlite3_bind_int64(s, 3, f->after_id >> ID_SHIFT);
    if ((out = calloc((size_t)limit, sizeof(*out))) == NULL) {
        rc = PT_ENOMEM;
        goto done;
    }
    while (count < (size_t)limit && !oom && (step = sqlite3_step(s)) == SQLITE_ROW) {
        long long bid = sqlite3_column_int64(s, 0), first = sqlite3_column_int64(s, 2);
        int worker = sqlite3_column_int(s, 1);
        size_t nrec = (size_t)sqlite3_column_int64(s, 3);
        const char *blob = sqlite3_column_blob(s, 4);
        size_t len = (size_t)sqlite3_column_bytes(s, 4);
        if (nrec > offcap) {
            uint32_t *o = realloc(off, nrec * sizeof(*off));
            if (o == NULL) {
                oom = 1;
                break;
            }
            off = o;
            offcap = nrec;
        }
        size_t m = blob != NULL ? rec_offsets(blob, len, off, nrec) : 0;
        for (size_t k = 0; k < m && count < (size_t)limit && !oom; k++) {
            size_t i = asc ? k : m - 1 - k;
            const pt_reqlog_rec *r = (const pt_reqlog_rec *)(blob + off[i]);
            long long id = (bid << ID_SHIFT) + first + (long long)i;
            const char *fields[PT_RL_NFIELDS];
            if ((f->before_id > 0 && id >= f->before_id) || (f->after_id > 0 && id <= f->after_id))
                continue;
            if (rec_fields(r, fields) != 0 || !matches(f, r, fields))
                continue;
            fill_row(&out[count++], id, worker, r, fields, f->with_output, &oom);
        }
    }
    if (oom)
        rc = PT_ENOMEM;
    else if (count < (size_t)limit && step != SQLITE_DONE)
        rc = fail(db, "query");
done:
    free(off);
    sqlite3_finalize(s);
    if (rc != 0) {
        pt_store_reqlog_rows_free(out, count);
        return rc;
    }
    if (count == 0) {
        free(out);
        out = NULL;
    }
    *rows = out;
    *n = count;
    return 0;
}

void
pt_store_reqlog_rows_free(pt_reqlog_row *rows, size_t n)
{
    for (size_t i = 0; rows != NULL && i < n; i++) {
        pt_reqlog_row *r = &rows[i];
        free(r->request_id);
        free(r->endpoint);
        free(r->method);
        free(r->path);
        free(r->caller_type);
        free(r->caller_id);
        free(r->caller_name);
        free(r->printed);
        free(r->traceback);
    }
    free(rows);
}

int
pt_store_reqlog_parse_status(const char *s, int *min, int *max)
{
    if (s == NULL)
        return PT_EINVAL;
    if (strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') &&
        (s[2] == 'x' || s[2] == 'X')) {
        *min = (s[0] - '0') * 100;
        *max = *min + 99;
        return 0;
    }
    if (strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
        s[2] <= '9') {
        *min = *max = atoi(s);
        return 0;
    }
    return PT_EINVAL;
}

void
pt_store_reqlog_format_time(int64_t ts_ms, char *out, size_t outsz)
{
    time_t secs = (time_t)(ts_ms / 1000);
    struct tm tm;
    char buf[32];

    gmtime_r(&secs, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outsz, "%s.%03dZ", buf, (int)(ts_ms % 1000));
}

/* A JSON string of s[0..n), with '?' for each byte of s that is not ASCII when s is not valid
 * UTF-8 (a raw path may be anything). NULL when out of memory. */
static json_t *
text(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    char *copy;

    if (j != NULL || (copy = malloc(n + 1)) == NULL)
        return j;
    for (size_t i = 0; i < n; i++)
        copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    j = json_stringn(copy, n);
    free(copy);
    return j;
}

/* text() for a possibly absent (NULL) string: null then. */
static json_t *
str_or_null(const char *s)
{
    return s != NULL ? text(s, strlen(s)) : json_null();
}

json_t *
pt_store_reqlog_row_json(const pt_reqlog_row *r, int with_output)
{
    char when[40];
    json_t *o = json_object(), *caller = NULL, *lines = NULL;

    if (o == NULL)
        return NULL;
    pt_store_reqlog_format_time(r->ts_ms, when, sizeof(when));
    if (r->caller_type != NULL)
        caller = json_pack("{s:o, s:o, s:o}", "type", str_or_null(r->caller_type), "id",
                           str_or_null(r->caller_id), "name", str_or_null(r->caller_name));
    int bad = json_object_set_new(o, "id", json_integer(r->id)) ||
              json_object_set_new(o, "time", json_string(when)) ||
              json_object_set_new(o, "request_id", str_or_null(r->request_id)) ||
              json_object_set_new(o, "endpoint", str_or_null(r->endpoint)) ||
              json_object_set_new(o, "method", str_or_null(r->method)) ||
              json_object_set_new(o, "path", str_or_null(r->path)) ||
              json_object_set_new(o, "status", json_integer(r->status)) ||
              json_object_set_new(o, "duration_ms", json_real(r->duration_ms)) ||
              json_object_set_new(o, "bytes_in", json_integer(r->bytes_in)) ||
              json_object_set_new(o, "bytes_out", json_integer(r->bytes_out)) ||
              json_object_set_new(o, "caller", caller != NULL ? caller : json_null()) ||
              json_object_set_new(o, "worker", json_integer(r->worker));
    if (!bad && with_output) {
        lines = json_array();
        for (const char *p = r->printed; !bad && lines != NULL && p != NULL && *p != '\0';) {
            const char *nl = strchr(p, '\n');
            size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
            bad = json_array_append_new(lines, text(p, n)) != 0;
            p += n + (nl != NULL);
        }
        bad = bad || lines == NULL || json_object_set_new(o, "printed", lines) ||
              json_object_set_new(o, "traceback", str_or_null(r->traceback));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
