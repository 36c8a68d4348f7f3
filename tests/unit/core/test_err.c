/* test_err.c - unit tests for core/err: every code has its own description. */
#include <string.h>

#include "core/err.h"
#include "test.h"

TEST(strerror_known_codes)
{
    ASSERT_STREQ(pt_strerror(PT_OK), "success");
    ASSERT_STREQ(pt_strerror(PT_ENOMEM), "out of memory");
    ASSERT_STREQ(pt_strerror(PT_ETOOBIG), "too big");
    for (int rc = PT_EAGAIN; rc < 0; rc++) {
        ASSERT_TRUE(pt_strerror(rc) != NULL);
        ASSERT_TRUE(strcmp(pt_strerror(rc), "unknown error") != 0);
        ASSERT_TRUE(strcmp(pt_strerror(rc), pt_strerror(rc + 1)) != 0);
    }
}

TEST(strerror_unknown_code)
{
    ASSERT_STREQ(pt_strerror(-1000), "unknown error");
    ASSERT_STREQ(pt_strerror(5), "unknown error");
}
