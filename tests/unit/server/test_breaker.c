/* test_breaker.c - unit tests for server/breaker: blame, the count, the cool-down, probation. */
#include <string.h>
#include <time.h>

#include "server/breaker.h"
#include "test.h"

static double
mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Takes slot proc's blame and records it at `now`; returns the cool-down it opened. */
static double
reap(pt_breaker *b, int proc, double now)
{
    char name[PT_BREAKER_NAME_MAX];
    if (!pt_breaker_take_blame(b, proc, name))
        return -1;
    return pt_breaker_record(b, name, now);
}

TEST(breaker_counts_pending_deaths_at_once)
{
    pt_breaker *b = pt_breaker_create(4);
    int retry = 0;
    ASSERT_TRUE(b != NULL);
    ASSERT_EQ(pt_breaker_check(b, "die", &retry), 0);
    pt_breaker_blame(b, 0, "die");
    ASSERT_EQ(pt_breaker_check(b, "die", &retry), 0); /* one death: not yet */
    pt_breaker_blame(b, 1, "die");
    /* Two deaths the master has not reaped yet already pause the endpoint... */
    ASSERT_EQ(pt_breaker_check(b, "die", &retry), 1);
    ASSERT_EQ(retry, (int)PT_BREAKER_COOLDOWN);
    /* ...and no other one. */
    ASSERT_EQ(pt_breaker_check(b, "hello", &retry), 0);
    char name[PT_BREAKER_NAME_MAX];
    ASSERT_EQ(pt_breaker_take_blame(b, 2, name), 0);
}

TEST(breaker_opens_closes_and_reopens_on_probation)
{
    pt_breaker *b = pt_breaker_create(4);
    int retry = 0;
    double now = mono();
    pt_breaker_blame(b, 0, "die");
    ASSERT_EQ(reap(b, 0, now), 0);
    pt_breaker_blame(b, 3, "die");
    ASSERT_EQ(reap(b, 3, now + 1), PT_BREAKER_COOLDOWN);
    ASSERT_EQ(pt_breaker_check(b, "die", &retry), 1);
    ASSERT_GE(retry, 1);
    ASSERT_LE(retry, (int)PT_BREAKER_COOLDOWN + 2);
    /* Deaths that raced the opening are not counted again. */
    pt_breaker_blame(b, 1, "die");
    ASSERT_EQ(reap(b, 1, now + 2), 0);
    /* After the cool-down it closes... */
    ASSERT_EQ(pt_breaker_tick(b, now + 1 + PT_BREAKER_COOLDOWN + 0.5), 1);
    ASSERT_EQ(pt_breaker_check(b, "die", &retry), 0);
    /* ...and one death on probation opens it again, for twice as long. */
    pt_breaker_blame(b, 2, "die");
    ASSERT_EQ(pt_breaker_check(b, "die", &retry), 1);
    ASSERT_EQ(reap(b, 2, now + 1 + PT_BREAKER_COOLDOWN + 1), 2 * PT_BREAKER_COOLDOWN);

    pt_buf out;
    pt_buf_init(&out, 0);
    ASSERT_EQ(pt_breaker_render(b, &out), 0);
    ASSERT_TRUE(strstr(pt_buf_cstr(&out), "portico_breaker_trips_total 2\n") != NULL);
    ASSERT_TRUE(strstr(pt_buf_cstr(&out), "portico_breaker_rejected_total 2\n") != NULL);
    pt_buf_free(&out);
}

TEST(breaker_forgets_deaths_older_than_the_window)
{
    pt_breaker *b = pt_breaker_create(2);
    int retry = 0;
    double now = mono() - PT_BREAKER_WINDOW - 5;
    pt_breaker_blame(b, 0, "flaky");
    ASSERT_EQ(reap(b, 0, now), 0);
    pt_breaker_tick(b, mono());
    pt_breaker_blame(b, 1, "flaky");
    ASSERT_EQ(pt_breaker_check(b, "flaky", &retry), 0);
    ASSERT_EQ(reap(b, 1, mono()), 0);
}
