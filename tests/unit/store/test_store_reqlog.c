/* test_store_reqlog.c - unit tests for store/store_reqlog (the request log file: packed
 * batches, filters, exact pruning) and server/reqlog (the worker's ring and writer thread,
 * across the ring's wrap-around). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "server/reqlog.h"
#include "store/store_reqlog.h"
#include "test.h"

static char *
tmp_datadir(void)
{
    char tmpl[] = "/tmp/pt-reqlog-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d != NULL ? strdup(d) : NULL;
}

/* An entry for request number i: endpoint "ep<i % 3>", status 200 or 500 (every 4th). */
static void
entry(pt_reqlog_entry *e, int i, char *id, size_t idsz, char *ep, size_t epsz)
{
    memset(e, 0, sizeof(*e));
    snprintf(id, idsz, "req-%04d", i);
    snprintf(ep, epsz, "ep%d", i % 3);
    e->ts_ms = 1000000 + i;
    e->status = i % 4 == 0 ? 500 : 200;
    e->duration_ms = 1.5;
    e->bytes_in = i;
    e->bytes_out = 2 * i;
    e->s[PT_RL_REQUEST_ID] = id;
    e->len[PT_RL_REQUEST_ID] = strlen(id);
    e->s[PT_RL_ENDPOINT] = ep;
    e->len[PT_RL_ENDPOINT] = strlen(ep);
    e->s[PT_RL_METHOD] = "GET";
    e->len[PT_RL_METHOD] = 3;
    e->s[PT_RL_PATH] = "/x";
    e->len[PT_RL_PATH] = 2;
    if (i % 4 == 0) {
        e->s[PT_RL_TRACEBACK] = "Traceback\nValueError";
        e->len[PT_RL_TRACEBACK] = 20;
    }
}

/* Stores requests [from, to) as one batch of worker 1. */
static int
store_batch(pt_store_reqlog *db, int from, int to)
{
    static char buf[1 << 16] __attribute__((aligned(8)));
    size_t len = 0;
    for (int i = from; i < to; i++) {
        pt_reqlog_entry e;
        char id[32], ep[16];
        entry(&e, i, id, sizeof(id), ep, sizeof(ep));
        pt_store_reqlog_rec_write(buf + len, &e);
        len += pt_store_reqlog_rec_size(&e);
    }
    pt_reqlog_batch b = {buf, len, (size_t)(to - from), 1};
    return pt_store_reqlog_insert(db, &b, 1);
}

TEST(reqlog_store_filters_and_pages)
{
    char *dir = tmp_datadir(), err[256];
    pt_store_reqlog *db = NULL;
    pt_reqlog_row *rows = NULL;
    size_t n = 0;
    ASSERT_TRUE(dir != NULL);
    ASSERT_EQ(pt_store_reqlog_open(dir, 0, &db, err, sizeof(err)), 0);
    ASSERT_EQ(store_batch(db, 0, 10), 0);
    ASSERT_EQ(store_batch(db, 10, 20), 0);

    pt_reqlog_filter all = {.limit = 100, .with_output = 1};
    ASSERT_EQ(pt_store_reqlog_query(db, &all, &rows, &n), 0);
    ASSERT_EQ(n, 20);
    ASSERT_STREQ(rows[0].request_id, "req-0019"); /* newest first */
    ASSERT_STREQ(rows[19].request_id, "req-0000");
    ASSERT_EQ(rows[19].status, 500);
    ASSERT_STREQ(rows[19].traceback, "Traceback\nValueError");
    ASSERT_TRUE(rows[18].traceback == NULL);
    ASSERT_EQ(rows[5].bytes_out, 28);
    ASSERT_EQ(rows[0].id, pt_store_reqlog_last_id(db));
    long long third = rows[2].id;
    pt_store_reqlog_rows_free(rows, n);

    pt_reqlog_filter f = {.endpoint = "ep1", .status_min = 200, .status_max = 299, .limit = 100};
    ASSERT_EQ(pt_store_reqlog_query(db, &f, &rows, &n), 0);
    ASSERT_EQ(n, 5); /* 1 4 7 10 13 16 19 are ep1; 4 and 16 are 500s */
    ASSERT_STREQ(rows[0].request_id, "req-0019");
    ASSERT_TRUE(rows[0].printed == NULL && rows[0].traceback == NULL); /* without output */
    pt_store_reqlog_rows_free(rows, n);

    pt_reqlog_filter page = {.before_id = third, .limit = 3};
    ASSERT_EQ(pt_store_reqlog_query(db, &page, &rows, &n), 0);
    ASSERT_EQ(n, 3);
    ASSERT_STREQ(rows[0].request_id, "req-0016");
    pt_store_reqlog_rows_free(rows, n);

    pt_reqlog_filter follow = {.after_id = third, .limit = 10};
    ASSERT_EQ(pt_store_reqlog_query(db, &follow, &rows, &n), 0);
    ASSERT_EQ(n, 2);
    ASSERT_STREQ(rows[0].request_id, "req-0018"); /* oldest first */
    pt_store_reqlog_rows_free(rows, n);

    pt_reqlog_filter one = {.request_id = "req-0007", .since_ms = 1000005, .limit = 5};
    ASSERT_EQ(pt_store_reqlog_query(db, &one, &rows, &n), 0);
    ASSERT_EQ(n, 1);
    pt_store_reqlog_rows_free(rows, n);
    pt_store_reqlog_close(db);
    pt_test_rm_tree(dir);
    free(dir);
}

TEST(reqlog_store_prunes_exactly_and_keeps_ids)
{
    char *dir = tmp_datadir(), err[256];
    pt_store_reqlog *db = NULL;
    pt_reqlog_row *rows = NULL;
    size_t n = 0;
    long long gone = 0;
    ASSERT_TRUE(dir != NULL);
    ASSERT_EQ(pt_store_reqlog_open(dir, 0, &db, err, sizeof(err)), 0);
    for (int b = 0; b < 5; b++)
        ASSERT_EQ(store_batch(db, b * 10, b * 10 + 10), 0);
    pt_reqlog_filter all = {.limit = 100};
    ASSERT_EQ(pt_store_reqlog_query(db, &all, &rows, &n), 0);
    long long id_of_25 = rows[50 - 1 - 25].id;
    pt_store_reqlog_rows_free(rows, n);

    /* 23 rows kept: the batch holding 27 is cut in the middle. */
    ASSERT_EQ(pt_store_reqlog_prune(db, 0, 23, 0, &gone), 0);
    ASSERT_EQ(gone, 27);
    ASSERT_EQ(pt_store_reqlog_query(db, &all, &rows, &n), 0);
    ASSERT_EQ(n, 23);
    ASSERT_STREQ(rows[22].request_id, "req-0027");
    ASSERT_EQ(rows[22 - 2].id, id_of_25 + 4); /* req-0029: ids did not move */
    pt_store_reqlog_rows_free(rows, n);

    /* By age: everything before request 41 goes. */
    ASSERT_EQ(pt_store_reqlog_prune(db, 1000041, 0, 0, &gone), 0);
    ASSERT_EQ(gone, 14);
    ASSERT_EQ(pt_store_reqlog_query(db, &all, &rows, &n), 0);
    ASSERT_EQ(n, 9);
    ASSERT_STREQ(rows[8].request_id, "req-0041");
    pt_store_reqlog_rows_free(rows, n);
    ASSERT_EQ(pt_store_reqlog_prune(db, 0, 100, 0, &gone), 0);
    ASSERT_EQ(gone, 0);
    pt_store_reqlog_close(db);
    pt_test_rm_tree(dir);
    free(dir);
}

TEST(reqlog_store_prunes_to_a_size)
{
    char *dir = tmp_datadir(), err[256];
    pt_store_reqlog *db = NULL;
    pt_reqlog_row *rows = NULL;
    size_t n = 0;
    long long gone = 0, bound = 1 << 20;
    ASSERT_TRUE(dir != NULL);
    ASSERT_EQ(pt_store_reqlog_open(dir, 0, &db, err, sizeof(err)), 0);
    for (int b = 0; b < 400; b++) /* 40000 requests, several MiB */
        ASSERT_EQ(store_batch(db, b * 100, b * 100 + 100), 0);
    ASSERT_TRUE(pt_store_reqlog_used_bytes(db) > 3 * bound);
    /* Each prune goes by the average row: a few rounds at most bring the data within. */
    for (int round = 0; round < 5 && pt_store_reqlog_used_bytes(db) > bound; round++)
        ASSERT_EQ(pt_store_reqlog_prune(db, 0, 0, bound, &gone), 0);
    ASSERT_TRUE(pt_store_reqlog_used_bytes(db) <= bound);
    ASSERT_TRUE(gone > 0);
    pt_reqlog_filter newest = {.limit = 1};
    ASSERT_EQ(pt_store_reqlog_query(db, &newest, &rows, &n), 0);
    ASSERT_EQ(n, 1);
    ASSERT_STREQ(rows[0].request_id, "req-39999");
    pt_store_reqlog_rows_free(rows, n);
    /* Within the bound, nothing more goes. */
    ASSERT_EQ(pt_store_reqlog_prune(db, 0, 0, bound, &gone), 0);
    ASSERT_EQ(gone, 0);
    pt_store_reqlog_close(db);
    pt_test_rm_tree(dir);
    free(dir);
}

TEST(reqlog_status_filter_parse)
{
    int lo = 0, hi = 0;
    ASSERT_EQ(pt_store_reqlog_parse_status("5xx", &lo, &hi), 0);
    ASSERT_EQ(lo, 500);
    ASSERT_EQ(hi, 599);
    ASSERT_EQ(pt_store_reqlog_parse_status("404", &lo, &hi), 0);
    ASSERT_EQ(lo, 404);
    ASSERT_EQ(hi, 404);
    ASSERT_EQ(pt_store_reqlog_parse_status("6xx", &lo, &hi), PT_EINVAL);
    ASSERT_EQ(pt_store_reqlog_parse_status("50", &lo, &hi), PT_EINVAL);
    ASSERT_EQ(pt_store_reqlog_parse_status("5x0", &lo, &hi), PT_EINVAL);
}

/* Waits (at most 10 s) until the log holds n rows; returns how many it holds. */
static size_t
wait_rows(pt_store_reqlog *db, size_t want)
{
    pt_reqlog_filter all = {.limit = 10000};
    pt_reqlog_row *rows = NULL;
    size_t n = 0;
    for (int i = 0; i < 1000; i++) {
        if (pt_store_reqlog_query(db, &all, &rows, &n) == 0)
            pt_store_reqlog_rows_free(rows, n);
        if (n >= want)
            break;
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    return n;
}

TEST(reqlog_ring_wraps_around_and_drops_what_does_not_fit)
{
    char *dir = tmp_datadir(), err[256];
    pt_reqlog *rl = NULL;
    pt_store_reqlog *db = NULL;
    pt_reqlog_row *rows = NULL;
    size_t n = 0;
    char big[5000];
    ASSERT_TRUE(dir != NULL);
    /* Started as a spare (worker 0), the log labels batches with the number its entries carry:
     * a promoted spare's rows name the worker it became. */
    pt_reqlog_config cfg = {.datadir = dir, .worker = 0, .buffer_bytes = 1000};
    ASSERT_EQ(pt_reqlog_start(&cfg, &rl, err, sizeof(err)), 0);
    ASSERT_EQ(pt_store_reqlog_open(dir, 0, &db, err, sizeof(err)), 0);
    /* 60 records of about 150 bytes through a 4 KiB ring (the least): it wraps many times.
     * Each one waits until stored, so none is dropped. */
    for (int i = 0; i < 60; i++) {
        pt_reqlog_entry e;
        char id[32], ep[16];
        entry(&e, i, id, sizeof(id), ep, sizeof(ep));
        e.worker = 3;
        ASSERT_EQ(pt_reqlog_append(rl, &e), 0);
        ASSERT_EQ(wait_rows(db, (size_t)i + 1), (size_t)i + 1);
    }
    /* A record larger than the ring is dropped and counted, never waited for. */
    pt_reqlog_entry e;
    char id[32], ep[16];
    entry(&e, 60, id, sizeof(id), ep, sizeof(ep));
    memset(big, 'x', sizeof(big));
    e.s[PT_RL_PRINTED] = big;
    e.len[PT_RL_PRINTED] = sizeof(big);
    ASSERT_EQ(pt_reqlog_append(rl, &e), PT_ETOOBIG);
    ASSERT_EQ(pt_reqlog_dropped(rl), 1);
    pt_reqlog_stop(rl);

    pt_reqlog_filter all = {.limit = 100, .with_output = 1};
    ASSERT_EQ(pt_store_reqlog_query(db, &all, &rows, &n), 0);
    ASSERT_EQ(n, 60);
    for (size_t k = 0; k < n; k++) {
        char want[32];
        snprintf(want, sizeof(want), "req-%04d", (int)(59 - k));
        ASSERT_STREQ(rows[k].request_id, want);
        ASSERT_EQ(rows[k].worker, 3);
        ASSERT_EQ(rows[k].bytes_in, 59 - (long long)k);
    }
    pt_store_reqlog_rows_free(rows, n);
    pt_store_reqlog_close(db);
    pt_test_rm_tree(dir);
    free(dir);
}
