/* test_ratelimit.c - unit tests for auth/ratelimit: parsing, the GCRA arithmetic, and one
 * table shared by several processes (as the workers share it). */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth/ratelimit.h"
#include "core/err.h"
#include "test.h"

#define SEC 1000000000ULL

TEST(rate_parse_and_format)
{
    pt_rate r = {0, 0};
    char out[32];

    ASSERT_EQ(pt_ratelimit_parse("100/min", &r), 0);
    ASSERT_EQ(r.count, 100);
    ASSERT_EQ(r.period, 60);
    pt_ratelimit_format(&r, out, sizeof out);
    ASSERT_STREQ(out, "100/min");
    ASSERT_EQ(pt_ratelimit_parse("5/s", &r), 0);
    ASSERT_EQ(r.period, 1);
    ASSERT_EQ(pt_ratelimit_parse("7/hour", &r), 0);
    ASSERT_EQ(r.period, 3600);
    pt_ratelimit_format(&r, out, sizeof out);
    ASSERT_STREQ(out, "7/h");
    ASSERT_EQ(pt_ratelimit_parse("1/day", &r), 0);
    ASSERT_EQ(r.period, 86400);
    const char *bad[] = {"",      "100", "0/min",         "-1/min", "1/week", "/min",
                         "x/min", "1/",  "10000000000/s", "1.5/s",  " 1/s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pt_rate keep = {42, 42};
        if (pt_ratelimit_parse(bad[i], &keep) == 0 || keep.count != 42)
            pt_test_fail(__FILE__, __LINE__, "accepted '%s'", bad[i]);
    }
}

TEST(ratelimit_admits_a_burst_then_the_rate)
{
    pt_ratelimit *rl = pt_ratelimit_new(64);
    pt_rate r = {5, 60};
    uint64_t now = 1000 * SEC, wait = 0;
    uint64_t key = pt_ratelimit_key("token", "abc");

    ASSERT_TRUE(rl != NULL);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(pt_ratelimit_hit(rl, key, &r, now, &wait), 0);
    ASSERT_EQ(pt_ratelimit_hit(rl, key, &r, now, &wait), 1);
    ASSERT_EQ(wait, 12 * SEC); /* one request every 60 s / 5 */
    ASSERT_EQ(pt_ratelimit_hit(rl, key, &r, now + 11 * SEC, &wait), 1);
    ASSERT_EQ(wait, 1 * SEC);
    ASSERT_EQ(pt_ratelimit_hit(rl, key, &r, now + 12 * SEC, &wait), 0);
    ASSERT_EQ(pt_ratelimit_hit(rl, key, &r, now + 12 * SEC, &wait), 1);
    /* Another caller has its own allowance. */
    ASSERT_EQ(pt_ratelimit_hit(rl, pt_ratelimit_key("apikey", "abc"), &r, now, &wait), 0);
    /* After a whole quiet period the full burst is back. */
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(pt_ratelimit_hit(rl, key, &r, now + 200 * SEC, &wait), 0);
    ASSERT_EQ(pt_ratelimit_hit(rl, key, &r, now + 200 * SEC, &wait), 1);
    /* No limit. */
    pt_rate none = {0, 0};
    ASSERT_EQ(pt_ratelimit_hit(rl, key, &none, now, &wait), 0);
    pt_ratelimit_free(rl);
}

TEST(ratelimit_full_table_fails_open)
{
    pt_ratelimit *rl = pt_ratelimit_new(1);
    pt_rate r = {1, 60};
    uint64_t wait;

    ASSERT_TRUE(rl != NULL);
    ASSERT_EQ(pt_ratelimit_hit(rl, 11, &r, SEC, &wait), 0);
    ASSERT_EQ(pt_ratelimit_hit(rl, 11, &r, SEC, &wait), 1);
    /* The only slot is taken: key 12 cannot be tracked and is admitted every time. */
    ASSERT_EQ(pt_ratelimit_hit(rl, 12, &r, SEC, &wait), 0);
    ASSERT_EQ(pt_ratelimit_hit(rl, 12, &r, SEC, &wait), 0);
    pt_ratelimit_free(rl);
}

TEST(ratelimit_is_shared_between_processes)
{
    /* 4 processes x 200 attempts against 150/h, started together: exactly 150 pass. */
    enum { PROCS = 4, TRIES = 200, LIMIT = 150 };
    pt_ratelimit *rl = pt_ratelimit_new(1024);
    pt_rate r = {LIMIT, 3600};
    uint64_t key = pt_ratelimit_key("token", "shared");
    pid_t pids[PROCS];
    int pipes[PROCS][2], total = 0;

    ASSERT_TRUE(rl != NULL);
    for (int p = 0; p < PROCS; p++) {
        ASSERT_EQ(pipe(pipes[p]), 0);
        pids[p] = fork();
        ASSERT_TRUE(pids[p] >= 0);
        if (pids[p] == 0) {
            int ok = 0;
            uint64_t wait;
            for (int i = 0; i < TRIES; i++)
                ok += pt_ratelimit_hit(rl, key, &r, 5 * SEC, &wait) == 0;
            ssize_t w = write(pipes[p][1], &ok, sizeof ok);
            _exit(w == (ssize_t)sizeof ok ? 0 : 1);
        }
        close(pipes[p][1]);
    }
    for (int p = 0; p < PROCS; p++) {
        int ok = 0, status = 0;
        ASSERT_EQ(read(pipes[p][0], &ok, sizeof ok), (ssize_t)sizeof ok);
        close(pipes[p][0]);
        waitpid(pids[p], &status, 0);
        ASSERT_EQ(status, 0);
        total += ok;
    }
    ASSERT_EQ(total, LIMIT);
    pt_ratelimit_free(rl);
}

/* ---- cluster mode: two nodes leasing from one budget ------------------------------------- */

/* The store's side of a lease (store/store_ratelimit.c's UPDATE), for the tests. */
typedef struct fake_store {
    uint64_t tat;
    int fail;
} fake_store;

static int64_t
fake_lease(fake_store *fs, const pt_rate *r, int64_t want, uint64_t now, uint64_t *wait)
{
    uint64_t period = (uint64_t)r->period * SEC, interval = period / r->count;
    uint64_t base = fs->tat > now ? fs->tat : now;
    int64_t g = (int64_t)((now + period - base) / interval);

    g = g < want ? g : want;
    fs->tat = base + (uint64_t)g * interval;
    *wait = g < want && fs->tat + interval - period > now ? fs->tat + interval - period - now : 0;
    return g;
}

static int wakes;

static void
count_wake(void *ctx)
{
    (void)ctx;
    wakes++;
}

/* Runs every lease node rl has queued against fs at now, as its lease thread would. */
static void
run_leases(pt_ratelimit *rl, fake_store *fs, uint64_t now)
{
    pt_ratelimit_lease l;

    while (pt_ratelimit_lease_next(rl, &l)) {
        uint64_t wait = 0;
        int64_t g = fs->fail ? 0 : fake_lease(fs, &l.rate, l.want, now, &wait);
        pt_ratelimit_lease_done(rl, &l, fs->fail ? PT_EUNAVAIL : 0, g, wait, now);
    }
}

TEST(ratelimit_slices_and_credit)
{
    ASSERT_EQ(pt_ratelimit_credit(1), 1);
    ASSERT_EQ(pt_ratelimit_credit(100), 2);
    ASSERT_EQ(pt_ratelimit_credit(1000), 20);
    /* First slice: 1% of the rate; doubled while leases come back fast, up to 10%. */
    ASSERT_EQ(pt_ratelimit_slice_next(0, 100, 0), 1);
    ASSERT_EQ(pt_ratelimit_slice_next(0, 10000, 0), 100);
    ASSERT_EQ(pt_ratelimit_slice_next(4, 100, SEC / 10), 8);
    ASSERT_EQ(pt_ratelimit_slice_next(8, 100, SEC / 10), 10);
    ASSERT_EQ(pt_ratelimit_slice_next(10, 100, SEC / 10), 10);
    /* Neither fast nor slow: kept; slow: halved, never below 1. */
    ASSERT_EQ(pt_ratelimit_slice_next(8, 100, SEC), 8);
    ASSERT_EQ(pt_ratelimit_slice_next(8, 100, 3 * SEC), 4);
    ASSERT_EQ(pt_ratelimit_slice_next(1, 100, 3 * SEC), 1);
    ASSERT_EQ(pt_ratelimit_slice_next(1, 5, SEC / 10), 1);
}

TEST(ratelimit_two_nodes_share_one_budget)
{
    /* 100/min through two nodes, alternating, each lease answered one request late (so the
     * nodes run on credit at times): between 100 and 100 + 2 * credit are admitted. */
    pt_ratelimit *node[2] = {pt_ratelimit_new(64), pt_ratelimit_new(64)};
    fake_store fs = {0, 0};
    pt_rate r = {100, 60};
    uint64_t key = pt_ratelimit_key("apikey", "k"), now = 1000 * SEC, wait = 0;
    int admitted = 0, per_node[2] = {0, 0};

    ASSERT_TRUE(node[0] != NULL && node[1] != NULL);
    for (int n = 0; n < 2; n++)
        ASSERT_EQ(pt_ratelimit_cluster(node[n], count_wake, NULL), 0);
    wakes = 0;
    for (int i = 0; i < 300; i++, now += SEC / 1000) {
        int n = i % 2;
        run_leases(node[n], &fs, now); /* the lease queued by this node's previous request */
        if (pt_ratelimit_hit(node[n], key, &r, now, &wait) == 0) {
            admitted++;
            per_node[n]++;
        } else {
            ASSERT_TRUE(wait >= 1);
        }
    }
    ASSERT_TRUE(admitted >= 100);
    ASSERT_TRUE(admitted <= 100 + 2 * pt_ratelimit_credit(100));
    ASSERT_TRUE(per_node[0] > 20 && per_node[1] > 20);
    /* One lease per slice, not per request. */
    ASSERT_TRUE(wakes < 60);
    /* Spent: refused until the store's budget has the next request (0.6 s at 100/min). */
    run_leases(node[0], &fs, now);
    ASSERT_EQ(pt_ratelimit_hit(node[0], key, &r, now, &wait), 1);
    ASSERT_TRUE(wait > 0 && wait <= SEC);
    pt_ratelimit_free(node[0]);
    pt_ratelimit_free(node[1]);
}

TEST(ratelimit_store_down_falls_back_to_the_node_limit)
{
    pt_ratelimit *a = pt_ratelimit_new(64), *b = pt_ratelimit_new(64);
    fake_store fs = {0, 1};
    pt_rate r = {5, 60};
    uint64_t key = pt_ratelimit_key("apikey", "d"), now = 1000 * SEC, wait = 0;
    int ok_a = 0, ok_b = 0;

    ASSERT_TRUE(a != NULL && b != NULL);
    ASSERT_EQ(pt_ratelimit_cluster(a, count_wake, NULL), 0);
    ASSERT_EQ(pt_ratelimit_cluster(b, count_wake, NULL), 0);
    /* Every lease fails: each node admits its own 5, no more. */
    for (int i = 0; i < 8; i++) {
        ok_a += pt_ratelimit_hit(a, key, &r, now, &wait) == 0;
        run_leases(a, &fs, now);
        ok_b += pt_ratelimit_hit(b, key, &r, now, &wait) == 0;
        run_leases(b, &fs, now);
    }
    ASSERT_EQ(ok_a, 5);
    ASSERT_EQ(ok_b, 5);
    /* Still down when the node's own limit has the next request (12 s later): its credit is
     * spent, and the node's limit decides, not the store it cannot reach. */
    now += 13 * SEC;
    ASSERT_EQ(pt_ratelimit_hit(a, key, &r, now, &wait), 0);
    run_leases(a, &fs, now);
    ASSERT_EQ(pt_ratelimit_hit(a, key, &r, now, &wait), 1);
    /* The store is back: a second later the nodes lease again, and the leases succeed. */
    fs.fail = 0;
    now += 2 * SEC;
    pt_ratelimit_hit(a, key, &r, now, &wait);
    run_leases(a, &fs, now);
    ASSERT_TRUE(fs.tat > 0);
    pt_ratelimit_free(a);
    pt_ratelimit_free(b);
}
