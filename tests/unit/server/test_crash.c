/* test_crash.c - unit tests for server/crash: the raw HTTP error reply, its escaping and bounds. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "server/crash.h"
#include "test.h"

/* The body of a formatted reply (after the blank line), or NULL. */
static const char *
body_of(const char *msg)
{
    const char *p = strstr(msg, "\r\n\r\n");
    return p != NULL ? p + 4 : NULL;
}

TEST(crash_format_exact)
{
    char msg[PT_CRASH_REPLY_MAX + 1];
    size_t n = pt_crash_format(msg, sizeof(msg), 502, "worker crashed", "abc-1");
    ASSERT_GT(n, 0);
    msg[n] = '\0';
    ASSERT_STREQ(msg, "HTTP/1.1 502 Bad Gateway\r\n"
                      "content-type: application/json\r\n"
                      "connection: close\r\n"
                      "x-request-id: abc-1\r\n"
                      "content-length: 50\r\n"
                      "\r\n"
                      "{\"error\": \"worker crashed\", \"request_id\": \"abc-1\"}");
}

TEST(crash_format_escapes_reason)
{
    char msg[PT_CRASH_REPLY_MAX + 1];
    size_t n =
        pt_crash_format(msg, sizeof(msg), 504, "a \"quoted\" \\ line\r\nx-evil: 1\x01\xc3\xa9",
                        "id\r\nset-cookie: x");
    ASSERT_GT(n, 0);
    msg[n] = '\0';
    /* The header block ends once, before anything of the reason; no header line breaks. */
    const char *end = strstr(msg, "\r\n\r\n");
    ASSERT_TRUE(end != NULL);
    ASSERT_TRUE(strstr(msg, "x-evil") > end);
    ASSERT_TRUE(strstr(msg, "x-request-id: idset-cookie:x\r\n") != NULL);
    const char *body = body_of(msg);
    ASSERT_TRUE(body != NULL);
    json_error_t e;
    json_t *doc = json_loads(body, 0, &e);
    ASSERT_TRUE(doc != NULL);
    ASSERT_STREQ(json_string_value(json_object_get(doc, "error")),
                 "a \"quoted\" \\ line\r\nx-evil: 1\x01??");
    ASSERT_STREQ(json_string_value(json_object_get(doc, "request_id")), "id\r\nset-cookie: x");
    json_decref(doc);
    /* content-length is the body's length. */
    char want[64];
    snprintf(want, sizeof(want), "content-length: %zu\r\n", strlen(body));
    ASSERT_TRUE(strstr(msg, want) != NULL);
}

TEST(crash_format_long_reason_is_cut)
{
    char why[2000], msg[PT_CRASH_REPLY_MAX + 1];
    for (size_t i = 0; i < sizeof(why) - 1; i++)
        why[i] = i % 2 ? '"' : 'x'; /* escapes must never be cut in half */
    why[sizeof(why) - 1] = '\0';
    size_t n = pt_crash_format(msg, sizeof(msg), 502, why, NULL);
    ASSERT_GT(n, 0);
    ASSERT_LE(n, PT_CRASH_REPLY_MAX);
    msg[n] = '\0';
    json_error_t e;
    json_t *doc = json_loads(body_of(msg), 0, &e);
    ASSERT_TRUE(doc != NULL);
    ASSERT_GT(strlen(json_string_value(json_object_get(doc, "error"))), 100);
    ASSERT_STREQ(json_string_value(json_object_get(doc, "request_id")), "");
    json_decref(doc);
}

TEST(crash_format_bounds)
{
    char small[64];
    ASSERT_EQ(pt_crash_format(small, sizeof(small), 502, "worker crashed", "id"), 0);
    char msg[PT_CRASH_REPLY_MAX + 1];
    size_t n = pt_crash_format(msg, sizeof(msg), 42, NULL, NULL); /* not a status: 500 */
    msg[n] = '\0';
    ASSERT_TRUE(strncmp(msg, "HTTP/1.1 500 Internal Server Error\r\n", 36) == 0);
}

TEST(crash_reply_writes_whole_answer)
{
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    ASSERT_EQ(pt_crash_reply(p[1], 503, "worker restarting; retry", "r-9"), 0);
    close(p[1]);
    char got[PT_CRASH_REPLY_MAX + 1], want[PT_CRASH_REPLY_MAX + 1];
    ssize_t n = read(p[0], got, sizeof(got) - 1);
    close(p[0]);
    size_t wn = pt_crash_format(want, sizeof(want), 503, "worker restarting; retry", "r-9");
    ASSERT_MEMEQ(got, n > 0 ? (size_t)n : 0, want, wn);
    ASSERT_EQ(pt_crash_reply(-1, 503, "x", "y"), PT_EIO);
}
