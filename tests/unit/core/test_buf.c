/* test_buf.c - unit tests for core/buf: growth, the hard cap, printf, steal. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "test.h"

TEST(buf_init_is_empty)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    ASSERT_TRUE(b.data == NULL);
    ASSERT_EQ(b.len, 0);
    ASSERT_STREQ(pt_buf_cstr(&b), "");
    ASSERT_TRUE(b.data != NULL);
    pt_buf_free(&b);
    ASSERT_TRUE(b.data == NULL);
    pt_buf_free(NULL);
}

TEST(buf_append_and_terminate)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    ASSERT_EQ(pt_buf_append(&b, "abc", 3), 0);
    ASSERT_EQ(pt_buf_puts(&b, "def"), 0);
    ASSERT_EQ(pt_buf_putc(&b, 'g'), 0);
    ASSERT_EQ(pt_buf_append(&b, NULL, 0), 0);
    ASSERT_EQ(b.len, 7);
    ASSERT_STREQ(b.data, "abcdefg");
    ASSERT_LT(b.len, b.cap);
    pt_buf_free(&b);
}

TEST(buf_grows_past_many_reallocations)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    for (int i = 0; i < 10000; i++)
        ASSERT_EQ(pt_buf_putc(&b, (char)('a' + i % 26)), 0);
    ASSERT_EQ(b.len, 10000);
    ASSERT_EQ(strlen(b.data), 10000);
    ASSERT_EQ(b.data[9999], 'a' + 9999 % 26);
    pt_buf_free(&b);
}

TEST(buf_binary_data)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    ASSERT_EQ(pt_buf_append(&b, "a\0b", 3), 0);
    ASSERT_MEMEQ(b.data, b.len, "a\0b", 3);
    pt_buf_free(&b);
}

TEST(buf_cap_is_enforced_and_buffer_unchanged)
{
    pt_buf b;
    pt_buf_init(&b, 8);
    ASSERT_EQ(pt_buf_puts(&b, "12345"), 0);
    ASSERT_EQ(pt_buf_puts(&b, "6789"), PT_ETOOBIG);
    ASSERT_STREQ(b.data, "12345");
    ASSERT_EQ(pt_buf_puts(&b, "678"), 0);
    ASSERT_STREQ(b.data, "12345678");
    ASSERT_EQ(pt_buf_putc(&b, 'x'), PT_ETOOBIG);
    ASSERT_EQ(pt_buf_printf(&b, "%d", 1), PT_ETOOBIG);
    ASSERT_STREQ(b.data, "12345678");
    ASSERT_EQ(b.len, 8);
    /* The allocation never exceeds the cap (plus the terminator). */
    ASSERT_LE(b.cap, 9);
    pt_buf_free(&b);
}

TEST(buf_reserve_overflow)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    ASSERT_EQ(pt_buf_putc(&b, 'x'), 0);
    ASSERT_EQ(pt_buf_reserve(&b, SIZE_MAX), PT_ETOOBIG);
    ASSERT_EQ(pt_buf_reserve(&b, SIZE_MAX - 1), PT_ETOOBIG);
    ASSERT_STREQ(b.data, "x");
    pt_buf_free(&b);
}

TEST(buf_reserve_then_append_does_not_move)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    ASSERT_EQ(pt_buf_reserve(&b, 1000), 0);
    char *p = b.data;
    for (int i = 0; i < 1000; i++)
        ASSERT_EQ(pt_buf_putc(&b, 'z'), 0);
    ASSERT_TRUE(b.data == p);
    pt_buf_free(&b);
}

TEST(buf_printf_short_and_long)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    ASSERT_EQ(pt_buf_printf(&b, "%s=%d", "x", 42), 0);
    ASSERT_STREQ(b.data, "x=42");
    char big[3000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ASSERT_EQ(pt_buf_printf(&b, "[%s]", big), 0);
    ASSERT_EQ(b.len, 4 + 2 + 2999);
    ASSERT_EQ(b.data[4], '[');
    ASSERT_EQ(b.data[b.len - 1], ']');
    ASSERT_EQ(strlen(b.data), b.len);
    pt_buf_free(&b);
}

TEST(buf_printf_failure_leaves_content)
{
    pt_buf b;
    pt_buf_init(&b, 10);
    ASSERT_EQ(pt_buf_puts(&b, "abc"), 0);
    ASSERT_EQ(pt_buf_printf(&b, "%s", "0123456789"), PT_ETOOBIG);
    ASSERT_STREQ(b.data, "abc");
    ASSERT_EQ(b.len, 3);
    pt_buf_free(&b);
}

TEST(buf_reset_keeps_storage)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    ASSERT_EQ(pt_buf_puts(&b, "hello"), 0);
    char *p = b.data;
    pt_buf_reset(&b);
    ASSERT_EQ(b.len, 0);
    ASSERT_STREQ(pt_buf_cstr(&b), "");
    ASSERT_TRUE(b.data == p);
    ASSERT_EQ(pt_buf_puts(&b, "x"), 0);
    ASSERT_STREQ(b.data, "x");
    pt_buf_free(&b);
    pt_buf_reset(&b); /* no storage: still fine */
    ASSERT_EQ(b.len, 0);
}

TEST(buf_steal)
{
    pt_buf b;
    size_t len = 99;
    pt_buf_init(&b, 0);
    ASSERT_EQ(pt_buf_puts(&b, "owned"), 0);
    char *s = pt_buf_steal(&b, &len);
    ASSERT_STREQ(s, "owned");
    ASSERT_EQ(len, 5);
    ASSERT_TRUE(b.data == NULL);
    ASSERT_EQ(b.len, 0);
    free(s);
    /* Stealing an empty buffer still yields a string to free. */
    s = pt_buf_steal(&b, &len);
    ASSERT_TRUE(s != NULL);
    ASSERT_STREQ(s, "");
    ASSERT_EQ(len, 0);
    free(s);
    /* The buffer is reusable after a steal. */
    ASSERT_EQ(pt_buf_puts(&b, "again"), 0);
    s = pt_buf_steal(&b, NULL);
    ASSERT_STREQ(s, "again");
    free(s);
}
