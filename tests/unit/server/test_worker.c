/* test_worker.c - unit tests for the worker's security helpers: percent-decoding of path
 * parameters (worker_job.c) and the webhook token's redaction (worker_hook.c). */
#include <stdio.h>
#include <string.h>

#include "server/worker_int.h"
#include "test.h"

/* Decodes the C string s; returns the result in a static buffer, its length in *n. */
static const char *
decode(const char *s, size_t *n)
{
    static char out[256];
    *n = pt_job_percent_decode(out, s, strlen(s));
    out[*n] = '\0';
    return out;
}

TEST(percent_decode_plain_and_escapes)
{
    size_t n;
    const char *d = decode("plain", &n);
    ASSERT_MEMSTR(d, n, "plain");
    d = decode("a%20b%2Fc%2fd", &n);
    ASSERT_MEMSTR(d, n, "a b/c/d");
    d = decode("%C3%A9t%C3%A9", &n); /* UTF-8 bytes go through as they are */
    ASSERT_MEMSTR(d, n, "\xc3\xa9t\xc3\xa9");
    d = decode("a+b", &n); /* a path, not a form: '+' stays */
    ASSERT_MEMSTR(d, n, "a+b");
    d = decode("", &n);
    ASSERT_EQ(n, 0);
}

TEST(percent_decode_malformed_is_kept)
{
    size_t n;
    const char *d = decode("100%", &n);
    ASSERT_MEMSTR(d, n, "100%");
    d = decode("%4", &n); /* cut at the end */
    ASSERT_MEMSTR(d, n, "%4");
    d = decode("%zz%4g%g4", &n);
    ASSERT_MEMSTR(d, n, "%zz%4g%g4");
    d = decode("%%41", &n); /* the first '%' is not an escape; the second is */
    ASSERT_MEMSTR(d, n, "%A");
    d = decode("%2541", &n); /* decoded once only: no double decoding */
    ASSERT_MEMSTR(d, n, "%41");
}

TEST(percent_decode_dangerous_values_are_data)
{
    /* The decoder decodes everything, never cutting a value short; which values may reach a
     * handler is pt_job_param_ok's decision (tested below). */
    size_t n;
    const char *d = decode("a%00b", &n);
    ASSERT_EQ(n, 3);
    ASSERT_MEMEQ(d, n, "a\0b", 3);
    d = decode("%2e%2e%2F%2E%2e%2fetc", &n);
    ASSERT_MEMSTR(d, n, "../../etc");
    d = decode("x%0d%0Ay", &n);
    ASSERT_MEMSTR(d, n, "x\r\ny");
}

TEST(percent_decode_never_longer)
{
    char src[64], dst[64];
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = "%4%41"[i % 5];
    size_t n = pt_job_percent_decode(dst, src, sizeof(src));
    ASSERT_LE(n, sizeof(src));
}

#define PARAM_OK(s) pt_job_param_ok(s, sizeof(s) - 1)

TEST(param_ok_refuses_encoded_slash_nul_and_dot_segments)
{
    /* on_req answers 400 for these (docs/HANDLERS.md): a decoded value must not be able to
     * climb out of a directory a handler pastes it into. */
    ASSERT_FALSE(PARAM_OK("%2F..%2Fetc"));
    ASSERT_FALSE(PARAM_OK("a%2fb"));
    ASSERT_FALSE(PARAM_OK("a%00b"));
    ASSERT_FALSE(PARAM_OK(".."));
    ASSERT_FALSE(PARAM_OK("%2E%2e"));
    ASSERT_FALSE(PARAM_OK("."));
    ASSERT_FALSE(PARAM_OK("%2e"));
    ASSERT_TRUE(PARAM_OK("..."));
    ASSERT_TRUE(PARAM_OK("a..b"));
    ASSERT_TRUE(PARAM_OK("%252F")); /* decoded once: "%2F" is data */
    ASSERT_TRUE(PARAM_OK("a%20b"));
    ASSERT_TRUE(PARAM_OK("100%"));
    ASSERT_TRUE(PARAM_OK("x"));
}

/* Redacts the C string s in a copy; returns the result. */
static const char *
redact(const char *s)
{
    static char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    pt_str str = {buf, strlen(buf)};
    pt_hook_redact_token(&str);
    if (str.n != strlen(buf))
        return "(length and terminator disagree)";
    return buf;
}

TEST(redact_token_forms)
{
    ASSERT_STREQ(redact("/webhook/0123456789abcdef"), "/webhook/{token}");
    ASSERT_STREQ(redact("/webhook/0123456789abcdef/github"), "/webhook/{token}/github");
    ASSERT_STREQ(redact("/webhook/0123456789abcdef?x=1"), "/webhook/{token}?x=1");
    ASSERT_STREQ(redact("http://h:1/webhook/0123456789abcdef/s?q"),
                 "http://h:1/webhook/{token}/s?q");
    /* Empty segments before the token do not hide it. */
    ASSERT_STREQ(redact("/webhook//0123456789abcdef"), "/webhook//{token}");
    ASSERT_STREQ(redact("//webhook///0123456789abcdef/x"), "//webhook///{token}/x");
    /* Nothing to redact. */
    ASSERT_STREQ(redact("/accounts/42"), "/accounts/42");
    ASSERT_STREQ(redact("/webhook/"), "/webhook/");
    /* Shorter than the mark: left as it is (the in-place rewrite never grows). */
    ASSERT_STREQ(redact("/webhook/abc"), "/webhook/abc");
}

TEST(log_path_redacts_or_replaces)
{
    char buf[64];
    const char *p = "/accounts/42";
    size_t n = strlen(p);
    ASSERT_TRUE(pt_hook_log_path(p, &n, buf, sizeof(buf)) == p); /* untouched, no copy */
    ASSERT_EQ(n, strlen(p));

    p = "/webhook/0123456789abcdef/stripe";
    n = strlen(p);
    const char *out = pt_hook_log_path(p, &n, buf, sizeof(buf));
    ASSERT_MEMSTR(out, n, "/webhook/{token}/stripe");
    ASSERT_STREQ(p, "/webhook/0123456789abcdef/stripe"); /* the original is not written */

    /* Too long to copy: a fixed text, never the raw path. */
    char longp[200];
    snprintf(longp, sizeof(longp), "/x/webhook/%0150d", 7);
    n = strlen(longp);
    out = pt_hook_log_path(longp, &n, buf, sizeof(buf));
    ASSERT_MEMSTR(out, n, "/webhook/{token}...");
    /* A path not NUL-terminated where the length says. */
    const char *cut = "/webhook/0123456789abcdefXXXX";
    n = strlen(cut) - 4;
    out = pt_hook_log_path(cut, &n, buf, sizeof(buf));
    ASSERT_MEMSTR(out, n, "/webhook/{token}");
}
