/* config.c - parsing of user-typed settings (data directory, listen address, durations, sizes). */
#include "core/config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"

char *
pt_config_datadir(const char *opt)
{
    const char *env = getenv("PORTICO_DATA");

    if (opt && *opt)
        return strdup(opt);
    if (env && *env)
        return strdup(env);
    return strdup(PT_CONFIG_DEFAULT_DATADIR);
}

/* Reads decimal digits at *p into *out, advancing *p. Fails on no digits or overflow. */
static int
parse_uint(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return PT_EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return PT_EINVAL;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

static int
parse_port(const char *s, int *port)
{
    uint64_t v;

    if (parse_uint(&s, &v) < 0 || *s != '\0' || v > 65535)
        return PT_EINVAL;
    *port = (int)v;
    return 0;
}

/* Host names and IPv4 addresses; bracketed IPv6 addresses may also hold ':' and a "%zone",
 * and must hold a ':' (the brackets are for IPv6 only: "[-%]" or "[host]" is no address). */
static int
host_ok(const char *h, size_t n, int bracketed)
{
    if (n == 0 || (bracketed && memchr(h, ':', n) == NULL))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || c == '_' || (bracketed && (c == ':' || c == '%'));
        if (!ok)
            return 0;
    }
    return 1;
}

int
pt_config_parse_listen(const char *s, char *host, size_t hostsz, int *port)
{
    const char *h = PT_CONFIG_DEFAULT_HOST, *ps;
    size_t hlen = strlen(PT_CONFIG_DEFAULT_HOST);
    int p;

    if (s == NULL || *s == '\0')
        return PT_EINVAL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return PT_EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        if (!host_ok(h, hlen, 1))
            return PT_EINVAL;
        ps = close + 2;
    } else {
        const char *colon = strchr(s, ':');
        if (colon == NULL) {
            ps = s;
        } else {
            if (colon != s) {
                h = s;
                hlen = (size_t)(colon - s);
                if (!host_ok(h, hlen, 0))
                    return PT_EINVAL;
            }
            ps = colon + 1;
        }
    }
    if (parse_port(ps, &p) < 0 || hlen >= hostsz)
        return PT_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = p;
    return 0;
}

int
pt_config_parse_duration(const char *s, int64_t *secs)
{
    uint64_t v, mult = 1;

    if (s == NULL)
        return PT_EINVAL;
    if (strcasecmp(s, "never") == 0) {
        *secs = -1;
        return 0;
    }
    if (parse_uint(&s, &v) < 0)
        return PT_EINVAL;
    switch (*s) {
    case '\0':
    case 's':
        break;
    case 'm':
        mult = 60;
        break;
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = 86400;
        break;
    case 'w':
        mult = 7 * 86400;
        break;
    default:
        return PT_EINVAL;
    }
    if (*s != '\0' && s[1] != '\0')
        return PT_EINVAL;
    if (v > (uint64_t)INT64_MAX / mult)
        return PT_EINVAL;
    *secs = (int64_t)(v * mult);
    return 0;
}

/* Shared by the two size parsers: plain numbers are multiplied by unit. */
static int
parse_size(const char *s, uint64_t unit, size_t *bytes)
{
    uint64_t v, mult = unit;

    if (s == NULL || parse_uint(&s, &v) < 0)
        return PT_EINVAL;
    switch (*s) {
    case '\0':
        break;
    case 'b':
    case 'B':
        mult = 1;
        s++;
        break;
    case 'k':
    case 'K':
        mult = (uint64_t)1 << 10;
        break;
    case 'm':
    case 'M':
        mult = (uint64_t)1 << 20;
        break;
    case 'g':
    case 'G':
        mult = (uint64_t)1 << 30;
        break;
    case 't':
    case 'T':
        mult = (uint64_t)1 << 40;
        break;
    default:
        return PT_EINVAL;
    }
    if (mult != 1 && *s != '\0') {
        s++;
        if (*s == 'i' || *s == 'I')
            s++;
        if (*s == 'b' || *s == 'B')
            s++;
        else if (s[-1] == 'i' || s[-1] == 'I')
            return PT_EINVAL; /* "5Ki" */
    }
    if (*s != '\0' || v > (uint64_t)SIZE_MAX / mult)
        return PT_EINVAL;
    *bytes = (size_t)(v * mult);
    return 0;
}

int
pt_config_parse_size(const char *s, size_t *bytes)
{
    return parse_size(s, 1, bytes);
}

int
pt_config_parse_mib(const char *s, size_t *bytes)
{
    return parse_size(s, (uint64_t)1 << 20, bytes);
}
