/* fuzz_config.c - libFuzzer target for the settings users type (core/config.c): listen
 * addresses, durations, sizes and memory limits.
 *
 * Input: a selector byte, then the text. Sizes and durations are checked against a reference
 * written here in 128-bit arithmetic (digits, then one of the documented suffixes; anything
 * else or a value out of range is refused); a refusal leaves the output untouched; an accepted
 * listen address formats back to text that parses to the same host and port. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/err.h"
#include "fuzz.h"

/* Leading decimal digits of s as a number (saturating at 2^100); *end gets the rest. */
static unsigned __int128
digits(const char *s, const char **end, int *ndig)
{
    unsigned __int128 v = 0, cap = (unsigned __int128)1 << 100;
    *ndig = 0;
    for (; *s >= '0' && *s <= '9'; s++, (*ndig)++)
        v = v > cap ? v : v * 10 + (unsigned)(*s - '0');
    *end = s;
    return v;
}

/* The reference size parser: plain numbers count `unit` bytes. Returns 0 or -1. */
static int
ref_size(const char *s, unsigned __int128 unit, unsigned __int128 *out)
{
    const char *rest;
    int nd;
    unsigned __int128 v = digits(s, &rest, &nd), mult;
    static const char *const tails[] = {"", "b", "ib"};
    const char *units = "kmgt", *u;

    if (nd == 0)
        return -1;
    if (*rest == '\0') {
        mult = unit;
    } else if (strcasecmp(rest, "b") == 0) {
        mult = 1;
    } else if ((u = strchr(units, rest[0] | 0x20)) != NULL && rest[0] != '\0') {
        mult = (unsigned __int128)1 << (10 * (u - units + 1));
        int ok = 0;
        for (size_t i = 0; i < 3; i++)
            ok |= strcasecmp(rest + 1, tails[i]) == 0;
        if (!ok)
            return -1;
    } else {
        return -1;
    }
    *out = v * mult;
    return *out > SIZE_MAX ? -1 : 0;
}

static int
ref_duration(const char *s, int64_t *out)
{
    const char *rest;
    int nd;
    unsigned __int128 v = digits(s, &rest, &nd), mult;

    if (strcasecmp(s, "never") == 0) {
        *out = -1;
        return 0;
    }
    static const char units[] = "smhdw";
    static const unsigned mults[] = {1, 60, 3600, 86400, 604800};
    const char *u = rest[0] != '\0' ? strchr(units, rest[0]) : units;
    if (nd == 0 || u == NULL || (rest[0] != '\0' && rest[1] != '\0'))
        return -1;
    mult = mults[u - units];
    if (v * mult > INT64_MAX)
        return -1;
    *out = (int64_t)(v * mult);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pt_fuzz_in in = {data, size};
    unsigned sel = pt_fuzz_byte(&in);
    char *s = strndup((const char *)in.p, in.n);

    if (s == NULL)
        abort();
    switch (sel % 4) {
    case 0: {
        size_t hostsz = 1 + (sel >> 2) * 4; /* 1 .. 253 */
        char *host = malloc(hostsz), host2[300];
        int port = -7, port2;
        memset(host, 'X', hostsz);
        int rc = pt_config_parse_listen(s, host, hostsz, &port);
        if (rc != 0) {
            if (rc != PT_EINVAL || port != -7 || host[0] != 'X')
                abort();
            free(host);
            break;
        }
        if (port < 0 || port > 65535 || memchr(host, '\0', hostsz) == NULL || host[0] == '\0')
            abort();
        char text[320];
        snprintf(text, sizeof text, strpbrk(host, ":%") ? "[%s]:%d" : "%s:%d", host, port);
        if (pt_config_parse_listen(text, host2, sizeof host2, &port2) != 0 || port2 != port ||
            strcmp(host, host2) != 0)
            abort();
        free(host);
        break;
    }
    case 1: {
        int64_t secs = -7, want;
        int rc = pt_config_parse_duration(s, &secs);
        int ref = ref_duration(s, &want);
        if (rc == 0 ? ref != 0 || secs != want : rc != PT_EINVAL || ref == 0 || secs != -7)
            abort();
        break;
    }
    default: {
        unsigned __int128 want;
        size_t bytes = 7;
        unsigned __int128 unit = sel % 4 == 2 ? 1 : (unsigned __int128)1 << 20;
        int rc = sel % 4 == 2 ? pt_config_parse_size(s, &bytes) : pt_config_parse_mib(s, &bytes);
        int ref = ref_size(s, unit, &want);
        if (rc == 0 ? ref != 0 || bytes != want : rc != PT_EINVAL || ref == 0 || bytes != 7)
            abort();
        break;
    }
    }
    free(s);
    return 0;
}
