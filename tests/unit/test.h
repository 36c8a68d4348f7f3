/* test.h - a tiny unit test runner: TEST(name) registers a test, ASSERT_* fail it with file:line
 * and both values.
 *
 * A failed assertion returns from the function it is in, so assertions belong in test bodies
 * (or in void helpers, whose caller then goes on; the failure is still counted). */
#ifndef PT_TEST_H
#define PT_TEST_H

#include <stddef.h>
#include <string.h>

typedef struct pt_test {
    const char *name;
    const char *file;
    int line;
    void (*fn)(void);
    struct pt_test *next;
} pt_test;

/* Adds t to the list main() runs; t must stay valid (TEST uses a static). */
void pt_test_register(pt_test *t);
/* Records a failure of the running test and prints it with its location. */
void pt_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints a byte string in quotes with non-printable bytes as \xNN (for failure messages). */
void pt_test_print_bytes(const char *p, size_t n);
/* Removes the directory tree at path (a test's temporary data dir); errors are ignored. */
void pt_test_rm_tree(const char *path);

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    static pt_test test_reg_##name = {#name, __FILE__, __LINE__, test_##name, NULL};               \
    __attribute__((constructor)) static void test_ctor_##name(void)                                \
    {                                                                                              \
        pt_test_register(&test_reg_##name);                                                        \
    }                                                                                              \
    static void test_##name(void)

#define ASSERT_TRUE(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            pt_test_fail(__FILE__, __LINE__, "ASSERT_TRUE(%s) is false", #cond);                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define ASSERT_FALSE(cond)                                                                         \
    do {                                                                                           \
        if (cond) {                                                                                \
            pt_test_fail(__FILE__, __LINE__, "ASSERT_FALSE(%s) is true", #cond);                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Integers of any type, compared as long long (pointers: use ASSERT_TRUE(a == b)). */
#define ASSERT_CMP_(a, op, b)                                                                      \
    do {                                                                                           \
        long long pt_a_ = (long long)(a), pt_b_ = (long long)(b);                                  \
        if (!(pt_a_ op pt_b_)) {                                                                   \
            pt_test_fail(__FILE__, __LINE__, "ASSERT(%s %s %s): %lld vs %lld", #a, #op, #b, pt_a_, \
                         pt_b_);                                                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)
#define ASSERT_EQ(a, b) ASSERT_CMP_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_CMP_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_CMP_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_CMP_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_CMP_(a, >=, b)

/* C strings; NULL is printed as (null) and equals only NULL. */
#define ASSERT_STREQ(a, b)                                                                         \
    do {                                                                                           \
        const char *pt_a_ = (a), *pt_b_ = (b);                                                     \
        if (pt_a_ != pt_b_ && (!pt_a_ || !pt_b_ || strcmp(pt_a_, pt_b_) != 0)) {                   \
            pt_test_fail(__FILE__, __LINE__, "ASSERT_STREQ(%s, %s): \"%s\" != \"%s\"", #a, #b,     \
                         pt_a_ ? pt_a_ : "(null)", pt_b_ ? pt_b_ : "(null)");                      \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Byte strings a[0..alen) and b[0..blen), e.g. values that are not NUL-terminated. */
#define ASSERT_MEMEQ(a, alen, b, blen)                                                             \
    do {                                                                                           \
        const char *pt_a_ = (const char *)(a), *pt_b_ = (const char *)(b);                         \
        size_t pt_al_ = (alen), pt_bl_ = (blen);                                                   \
        if (pt_al_ != pt_bl_ || (pt_al_ && memcmp(pt_a_, pt_b_, pt_al_) != 0)) {                   \
            pt_test_fail(__FILE__, __LINE__, "ASSERT_MEMEQ(%s, %s):", #a, #b);                     \
            pt_test_print_bytes(pt_a_, pt_al_);                                                    \
            pt_test_print_bytes(pt_b_, pt_bl_);                                                    \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* A byte string against a C string literal or variable. */
#define ASSERT_MEMSTR(a, alen, s) ASSERT_MEMEQ(a, alen, s, strlen(s))

#endif
