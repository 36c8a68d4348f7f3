/* test_cache.c - unit tests for server/cache: hits, expiry, replacement, eviction, and the
 * per-endpoint bulkhead's places (server/bulkhead). */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "server/bulkhead.h"
#include "server/cache.h"
#include "test.h"

/* Stores a 200 with body `body` and one header under key. */
static int
put(pt_cache *c, const char *key, const char *body, double now, double ttl)
{
    pt_response r;
    pt_response_init(&r, 0);
    r.content_type = "application/json";
    pt_buf_puts(&r.body, body);
    pt_response_add_header(&r, "x-a", 3, "1", 1);
    int rc = pt_cache_put(c, key, strlen(key), now, ttl, &r);
    pt_response_free(&r);
    return rc;
}

/* Looks key up; returns 1 with the body in out (NUL-terminated), 0 on a miss. */
static int
get(pt_cache *c, const char *key, double now, char *out, size_t outsz)
{
    pt_response r;
    double age;
    pt_response_init(&r, 0);
    int hit = pt_cache_get(c, key, strlen(key), now, &r, &age);
    if (hit == 1)
        snprintf(out, outsz, "%.*s", (int)r.body.len, r.body.data);
    pt_response_free(&r);
    return hit;
}

TEST(cache_hit_expiry_and_replacement)
{
    pt_cache *c = pt_cache_create(PT_CACHE_SIZE_MIN);
    char body[64];
    ASSERT_TRUE(c != NULL);
    ASSERT_EQ(get(c, "k", 1, body, sizeof body), 0);
    ASSERT_EQ(put(c, "k", "{\"v\": 1}", 1, 10), 0);
    ASSERT_EQ(get(c, "k", 2, body, sizeof body), 1);
    ASSERT_STREQ(body, "{\"v\": 1}");
    ASSERT_EQ(put(c, "k", "{\"v\": 2}", 3, 10), 0);
    ASSERT_EQ(get(c, "k", 4, body, sizeof body), 1);
    ASSERT_STREQ(body, "{\"v\": 2}");
    ASSERT_EQ(get(c, "k", 13.5, body, sizeof body), 0); /* expired */
    ASSERT_EQ(get(c, "other", 4, body, sizeof body), 0);
    pt_response r;
    double age = 0;
    pt_response_init(&r, 0);
    ASSERT_EQ(put(c, "h", "x", 100, 10), 0);
    ASSERT_EQ(pt_cache_get(c, "h", 1, 103, &r, &age), 1);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ((int)age, 3);
    ASSERT_MEMSTR(r.headers.data, 12, "content-type");
    pt_response_free(&r);
}

TEST(cache_evicts_oldest_and_refuses_huge)
{
    pt_cache *c = pt_cache_create(PT_CACHE_SIZE_MIN);
    static char big[64 * 1024];
    char key[32], body[8];
    memset(big, 'x', sizeof big - 1);
    /* 64 KiB records in a 1 MiB ring: the first ones go as the ring fills. */
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ASSERT_EQ(put(c, key, big, 1, 100), 0);
    }
    ASSERT_EQ(get(c, "k0", 2, body, sizeof body), 0);
    ASSERT_EQ(get(c, "k39", 2, body, sizeof body), 1);
    static char huge[200 * 1024];
    memset(huge, 'y', sizeof huge - 1);
    ASSERT_EQ(put(c, "huge", huge, 1, 100), PT_EINVAL); /* more than an eighth */
    pt_buf out;
    pt_buf_init(&out, 0);
    ASSERT_EQ(pt_cache_render(c, &out), 0);
    ASSERT_TRUE(strstr(pt_buf_cstr(&out), "portico_cache_evictions_total ") != NULL);
    pt_buf_free(&out);
}

TEST(bulkhead_places_and_forget)
{
    pt_bulkhead *b = pt_bulkhead_create(3);
    ASSERT_TRUE(b != NULL);
    int row = pt_bulkhead_row(b, "slow");
    ASSERT_GE(row, 0);
    ASSERT_EQ(pt_bulkhead_row(b, "slow"), row);
    ASSERT_NE(pt_bulkhead_row(b, "other"), row);
    ASSERT_EQ(pt_bulkhead_enter(b, row, 0, 2), 1);
    ASSERT_EQ(pt_bulkhead_enter(b, row, 1, 2), 1);
    ASSERT_EQ(pt_bulkhead_enter(b, row, 2, 2), 0); /* full across processes */
    pt_bulkhead_leave(b, row, 0);
    ASSERT_EQ(pt_bulkhead_enter(b, row, 2, 2), 1);
    /* Process 1 dies holding a place: the master gives it back. */
    pt_bulkhead_forget(b, 1);
    ASSERT_EQ(pt_bulkhead_enter(b, row, 0, 2), 1);
    ASSERT_EQ(pt_bulkhead_enter(b, row, 0, 2), 0);
    ASSERT_EQ(pt_bulkhead_running(b, row), 2);
}
