/* test_epset.c - unit tests for core/epset: durations, sizes, origin lists, checks. */
#include <stdlib.h>
#include <string.h>

#include "core/epset.h"
#include "core/err.h"
#include "test.h"

TEST(epset_durations_parse_and_print)
{
    int64_t ms = -1;
    char out[32];
    ASSERT_EQ(pt_epset_parse_ms("200ms", &ms), 0);
    ASSERT_EQ(ms, 200);
    ASSERT_EQ(pt_epset_parse_ms("1.5s", &ms), 0);
    ASSERT_EQ(ms, 1500);
    ASSERT_EQ(pt_epset_parse_ms("5", &ms), 0);
    ASSERT_EQ(ms, 5000);
    ASSERT_EQ(pt_epset_parse_ms("2m", &ms), 0);
    ASSERT_EQ(ms, 120000);
    ASSERT_EQ(pt_epset_parse_ms("1h", &ms), 0);
    ASSERT_EQ(ms, 3600000);
    ASSERT_EQ(pt_epset_parse_ms("-1s", &ms), PT_EINVAL);
    ASSERT_EQ(pt_epset_parse_ms("5 s", &ms), PT_EINVAL);
    ASSERT_EQ(pt_epset_parse_ms("soon", &ms), PT_EINVAL);
    ASSERT_EQ(pt_epset_parse_ms("1e300s", &ms), PT_EINVAL);
    pt_epset_format_ms(200, out, sizeof out);
    ASSERT_STREQ(out, "200ms");
    pt_epset_format_ms(1500, out, sizeof out);
    ASSERT_STREQ(out, "1.5s");
    pt_epset_format_ms(30000, out, sizeof out);
    ASSERT_STREQ(out, "30s");
    pt_epset_format_ms(120000, out, sizeof out);
    ASSERT_STREQ(out, "2m");
    pt_epset_format_size(1 << 20, out, sizeof out);
    ASSERT_STREQ(out, "1MiB");
    pt_epset_format_size(1000, out, sizeof out);
    ASSERT_STREQ(out, "1000B");
}

TEST(epset_origins_are_normalised_and_matched)
{
    char list[] = " https://A.example , http://b.example:8080/ ";
    char err[256];
    ASSERT_EQ(pt_epset_check_cors(list, err, sizeof err), 0);
    ASSERT_STREQ(list, "https://a.example,http://b.example:8080");
    pt_ep_settings s = {.cors = list};
    ASSERT_TRUE(pt_epset_origin_allowed(&s, "https://a.example", 17));
    ASSERT_TRUE(pt_epset_origin_allowed(&s, "http://b.example:8080", 21));
    ASSERT_FALSE(pt_epset_origin_allowed(&s, "https://a.example.evil", 22));
    ASSERT_FALSE(pt_epset_origin_allowed(&s, "https://a.exampl", 16));
    ASSERT_FALSE(pt_epset_origin_allowed(&s, "", 0));
    char bad1[] = "ftp://a.example", bad2[] = "https://a.example/path", bad3[] = "", bad4[] = "*,x";
    ASSERT_EQ(pt_epset_check_cors(bad1, err, sizeof err), PT_EINVAL);
    ASSERT_EQ(pt_epset_check_cors(bad2, err, sizeof err), PT_EINVAL);
    ASSERT_EQ(pt_epset_check_cors(bad3, err, sizeof err), PT_EINVAL);
    ASSERT_EQ(pt_epset_check_cors(bad4, err, sizeof err), PT_EINVAL);
}

TEST(epset_star_only_on_public_endpoints)
{
    char err[512];
    pt_ep_settings s = {.cors = strdup("*")};
    ASSERT_EQ(pt_epset_check(&s, "public", err, sizeof err), 0);
    ASSERT_TRUE(pt_epset_origin_allowed(&s, "https://any.example", 19));
    ASSERT_EQ(pt_epset_check(&s, "apikey", err, sizeof err), PT_EINVAL);
    ASSERT_TRUE(strstr(err, "--cors") != NULL && strstr(err, "public") != NULL);
    s.max_concurrency = -1;
    ASSERT_EQ(pt_epset_check(&s, "public", err, sizeof err), PT_EINVAL);
    ASSERT_TRUE(strstr(err, "--max-concurrency") != NULL);
    pt_epset_clear(&s);
    ASSERT_TRUE(s.cors == NULL);
}
