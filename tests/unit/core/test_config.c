/* test_config.c - unit tests for core/config: data dir, listen address, durations, sizes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "test.h"

TEST(config_datadir_precedence)
{
    char *saved = getenv("PORTICO_DATA") ? strdup(getenv("PORTICO_DATA")) : NULL;
    char *d;

    unsetenv("PORTICO_DATA");
    d = pt_config_datadir(NULL);
    ASSERT_STREQ(d, "./portico-data");
    free(d);
    d = pt_config_datadir("");
    ASSERT_STREQ(d, "./portico-data");
    free(d);

    setenv("PORTICO_DATA", "/srv/portico", 1);
    d = pt_config_datadir(NULL);
    ASSERT_STREQ(d, "/srv/portico");
    free(d);
    d = pt_config_datadir("/opt/data");
    ASSERT_STREQ(d, "/opt/data");
    free(d);

    setenv("PORTICO_DATA", "", 1);
    d = pt_config_datadir(NULL);
    ASSERT_STREQ(d, "./portico-data");
    free(d);

    if (saved)
        setenv("PORTICO_DATA", saved, 1);
    else
        unsetenv("PORTICO_DATA");
    free(saved);
}

TEST(config_listen_forms)
{
    char host[64];
    int port = -1;

    ASSERT_EQ(pt_config_parse_listen("0.0.0.0:8080", host, sizeof(host), &port), 0);
    ASSERT_STREQ(host, "0.0.0.0");
    ASSERT_EQ(port, 8080);
    ASSERT_EQ(pt_config_parse_listen("localhost:1", host, sizeof(host), &port), 0);
    ASSERT_STREQ(host, "localhost");
    ASSERT_EQ(port, 1);
    ASSERT_EQ(pt_config_parse_listen(":9000", host, sizeof(host), &port), 0);
    ASSERT_STREQ(host, "127.0.0.1");
    ASSERT_EQ(port, 9000);
    ASSERT_EQ(pt_config_parse_listen("65535", host, sizeof(host), &port), 0);
    ASSERT_STREQ(host, "127.0.0.1");
    ASSERT_EQ(port, 65535);
    ASSERT_EQ(pt_config_parse_listen("[::1]:8443", host, sizeof(host), &port), 0);
    ASSERT_STREQ(host, "::1");
    ASSERT_EQ(port, 8443);
    ASSERT_EQ(pt_config_parse_listen("[fe80::1%eth0]:80", host, sizeof(host), &port), 0);
    ASSERT_STREQ(host, "fe80::1%eth0");
    ASSERT_EQ(pt_config_parse_listen("0", host, sizeof(host), &port), 0);
    ASSERT_EQ(port, 0);
}

TEST(config_listen_rejects)
{
    static const char *bad[] = {
        "",
        ":",
        "host:",
        "host",
        "65536",
        ":-1",
        "1.2.3.4:x",
        "a b:80",
        "::1:80",
        "[::1]",
        "[::1]80",
        "[]:80",
        ":80 ",
        "host:80:90",
        "8080a",
        "+80",
        "[::1]:",
        "h/x:80",
        "99999999999999999999999",
        /* Brackets hold IPv6 addresses only (the fuzz target found "[-%]:0" accepted). */
        "[-%]:0",
        "[localhost]:80",
        "[1.2.3.4]:80",
    };
    char host[64] = "unchanged";
    int port = 7;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT_EQ(pt_config_parse_listen(bad[i], host, sizeof(host), &port), PT_EINVAL);
        ASSERT_STREQ(host, "unchanged");
        ASSERT_EQ(port, 7);
    }
    ASSERT_EQ(pt_config_parse_listen(NULL, host, sizeof(host), &port), PT_EINVAL);
    /* The host must fit, terminator included. */
    char small[5];
    ASSERT_EQ(pt_config_parse_listen("abcde:80", small, sizeof(small), &port), PT_EINVAL);
    ASSERT_EQ(pt_config_parse_listen("abcd:80", small, sizeof(small), &port), 0);
    ASSERT_STREQ(small, "abcd");
}

TEST(config_duration)
{
    int64_t s = 0;

    ASSERT_EQ(pt_config_parse_duration("90s", &s), 0);
    ASSERT_EQ(s, 90);
    ASSERT_EQ(pt_config_parse_duration("90", &s), 0);
    ASSERT_EQ(s, 90);
    ASSERT_EQ(pt_config_parse_duration("15m", &s), 0);
    ASSERT_EQ(s, 900);
    ASSERT_EQ(pt_config_parse_duration("12h", &s), 0);
    ASSERT_EQ(s, 43200);
    ASSERT_EQ(pt_config_parse_duration("30d", &s), 0);
    ASSERT_EQ(s, 2592000);
    ASSERT_EQ(pt_config_parse_duration("2w", &s), 0);
    ASSERT_EQ(s, 1209600);
    ASSERT_EQ(pt_config_parse_duration("0s", &s), 0);
    ASSERT_EQ(s, 0);
    ASSERT_EQ(pt_config_parse_duration("never", &s), 0);
    ASSERT_EQ(s, -1);
    ASSERT_EQ(pt_config_parse_duration("NEVER", &s), 0);
    ASSERT_EQ(s, -1);
}

TEST(config_duration_rejects)
{
    static const char *bad[] = {"",
                                "s",
                                "-5s",
                                "5x",
                                "5ss",
                                "1.5h",
                                " 5s",
                                "5 s",
                                "5S",
                                "nev",
                                "5sm",
                                "9223372036854775807d",
                                "99999999999999999999"};
    int64_t s = 42;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT_EQ(pt_config_parse_duration(bad[i], &s), PT_EINVAL);
        ASSERT_EQ(s, 42);
    }
    ASSERT_EQ(pt_config_parse_duration(NULL, &s), PT_EINVAL);
    ASSERT_EQ(pt_config_parse_duration("9223372036854775807", &s), 0);
    ASSERT_EQ(s, INT64_MAX);
}

TEST(config_size)
{
    size_t n = 0;

    ASSERT_EQ(pt_config_parse_size("512", &n), 0);
    ASSERT_EQ(n, 512);
    ASSERT_EQ(pt_config_parse_size("512B", &n), 0);
    ASSERT_EQ(n, 512);
    ASSERT_EQ(pt_config_parse_size("64K", &n), 0);
    ASSERT_EQ(n, 65536);
    ASSERT_EQ(pt_config_parse_size("64k", &n), 0);
    ASSERT_EQ(n, 65536);
    ASSERT_EQ(pt_config_parse_size("512M", &n), 0);
    ASSERT_EQ(n, 512u << 20);
    ASSERT_EQ(pt_config_parse_size("1G", &n), 0);
    ASSERT_EQ(n, 1u << 30);
    ASSERT_EQ(pt_config_parse_size("1GiB", &n), 0);
    ASSERT_EQ(n, 1u << 30);
    ASSERT_EQ(pt_config_parse_size("10MB", &n), 0);
    ASSERT_EQ(n, 10u << 20);
    ASSERT_EQ(pt_config_parse_size("2T", &n), 0);
    ASSERT_EQ(n, 2ull << 40);
    ASSERT_EQ(pt_config_parse_size("0", &n), 0);
    ASSERT_EQ(n, 0);
}

TEST(config_size_rejects)
{
    static const char *bad[] = {"",
                                "K",
                                "-1",
                                "1.5M",
                                "5X",
                                "5Ki",
                                "5KBB",
                                " 5",
                                "5 ",
                                "5MiBx",
                                "18446744073709551616",
                                "20000000000000000000",
                                "99999999999T"};
    size_t n = 3;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT_EQ(pt_config_parse_size(bad[i], &n), PT_EINVAL);
        ASSERT_EQ(pt_config_parse_mib(bad[i], &n), PT_EINVAL);
        ASSERT_EQ(n, 3);
    }
    ASSERT_EQ(pt_config_parse_size(NULL, &n), PT_EINVAL);
}

TEST(config_mib)
{
    size_t n = 0;

    ASSERT_EQ(pt_config_parse_mib("512", &n), 0);
    ASSERT_EQ(n, 512u << 20);
    ASSERT_EQ(pt_config_parse_mib("1G", &n), 0);
    ASSERT_EQ(n, 1u << 30);
    ASSERT_EQ(pt_config_parse_mib("64K", &n), 0);
    ASSERT_EQ(n, 65536);
    ASSERT_EQ(pt_config_parse_mib("100B", &n), 0);
    ASSERT_EQ(n, 100);
}
