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
