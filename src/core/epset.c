/* epset.c - an endpoint's own settings: parsing, printing and checking their values. */
#include "core/epset.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"

void
pt_epset_clear(pt_ep_settings *s)
{
    if (s == NULL)
        return;
    free(s->cors);
    memset(s, 0, sizeof *s);
}

int
pt_epset_copy(pt_ep_settings *dst, const pt_ep_settings *src)
{
    *dst = *src;
    if (src->cors != NULL && (dst->cors = strdup(src->cors)) == NULL) {
        memset(dst, 0, sizeof *dst);
        return PT_ENOMEM;
    }
    return 0;
}

int
pt_epset_parse_ms(const char *s, int64_t *ms)
{
    char *end;
    double v, unit = 1000;

    if (s == NULL || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
        return PT_EINVAL;
    v = strtod(s, &end);
    if (end == s)
        return PT_EINVAL;
    if (strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        unit = 1000;
    else if (strcmp(end, "m") == 0)
        unit = 60000;
    else if (strcmp(end, "h") == 0)
        unit = 3600000;
    else
        return PT_EINVAL;
    v *= unit;
    if (!isfinite(v) || v < 0 || v > 1e12)
        return PT_EINVAL;
    *ms = (int64_t)llround(v);
    return 0;
}

void
pt_epset_format_ms(int64_t ms, char *out, size_t outsz)
{
    if (ms % 3600000 == 0 && ms > 0)
        snprintf(out, outsz, "%lldh", (long long)(ms / 3600000));
    else if (ms % 60000 == 0 && ms > 0)
        snprintf(out, outsz, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(out, outsz, "%llds", (long long)(ms / 1000));
    else if (ms > 1000)
        snprintf(out, outsz, "%gs", (double)ms / 1000.0);
    else
        snprintf(out, outsz, "%lldms", (long long)ms);
}

void
pt_epset_format_size(int64_t bytes, char *out, size_t outsz)
{
    if (bytes > 0 && bytes % (1 << 30) == 0)
        snprintf(out, outsz, "%lldGiB", (long long)(bytes >> 30));
    else if (bytes > 0 && bytes % (1 << 20) == 0)
        snprintf(out, outsz, "%lldMiB", (long long)(bytes >> 20));
    else if (bytes > 0 && bytes % 1024 == 0)
        snprintf(out, outsz, "%lldKiB", (long long)(bytes >> 10));
    else
        snprintf(out, outsz, "%lldB", (long long)bytes);
}

/* Is o[0..n) an origin: http(s)://host[:port], host of letters, digits, '-', '.', or an IPv6
 * literal in brackets? A trailing '/' is tolerated by the caller (cut before). */
static int
origin_ok(const char *o, size_t n)
{
    size_t i;

    if (n > 8 && memcmp(o, "https://", 8) == 0)
        i = 8;
    else if (n > 7 && memcmp(o, "http://", 7) == 0)
        i = 7;
    else
        return 0;
    if (n > PT_EPSET_ORIGIN_MAX || i == n)
        return 0;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)o[i];
        if (!(isalnum(c) || c == '-' || c == '.' || c == ':' || c == '[' || c == ']'))
            return 0;
    }
    return 1;
}

int
pt_epset_check_cors(char *list, char *err, size_t errsz)
{
    char *out = list;
    const char *p = list;

    if (strlen(list) > PT_EPSET_CORS_MAX) {
        snprintf(err, errsz, "the origin list is longer than %d bytes", PT_EPSET_CORS_MAX);
        return PT_EINVAL;
    }
    while (*p == ' ')
        p++;
    if (strcmp(p, "*") == 0) {
        memmove(list, "*", 2);
        return 0;
    }
    if (*p == '\0') {
        snprintf(err, errsz, "no origin given (for example https://app.example.com, or *)");
        return PT_EINVAL;
    }
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n > 0 && p[n - 1] == '/')
            n--;
        if (!origin_ok(p, n)) {
            snprintf(err, errsz,
                     "'%.*s' is not an origin (scheme://host[:port], http or https, no path; "
                     "or * alone)",
                     (int)(n < 100 ? n : 100), p);
            return PT_EINVAL;
        }
        if (out != list)
            *out++ = ',';
        memmove(out, p, n);
        for (size_t i = 0; i < n; i++) /* scheme and host compare without case */
            out[i] = (char)tolower((unsigned char)out[i]);
        out += n;
        p = end != NULL ? end + 1 : p + strlen(p);
        while (*p == ' ')
            p++;
    }
    *out = '\0';
    return 0;
}

int
pt_epset_check(pt_ep_settings *s, const char *auth, char *err, size_t errsz)
{
    char why[384];

    if (s->timeout_ms < 0 || s->timeout_ms > PT_EPSET_TIMEOUT_MAX_MS) {
        snprintf(err, errsz, "invalid --timeout (more than 0, at most 24h)");
        return PT_EINVAL;
    }
    if (s->max_concurrency < 0 || s->max_concurrency > PT_EPSET_CONCURRENCY_MAX) {
        snprintf(err, errsz, "invalid --max-concurrency (1 to %d)", PT_EPSET_CONCURRENCY_MAX);
        return PT_EINVAL;
    }
    if (s->queue_wait_ms < 0 || s->queue_wait_ms > PT_EPSET_QUEUE_WAIT_MAX_MS) {
        snprintf(err, errsz, "invalid --queue-wait (0 to 60s)");
        return PT_EINVAL;
    }
    if (s->cache_ms < 0 || s->cache_ms > PT_EPSET_CACHE_MAX_MS) {
        snprintf(err, errsz, "invalid --cache (more than 0, at most 24h)");
        return PT_EINVAL;
    }
    if (s->max_body < 0 || s->max_body > PT_EPSET_BODY_MAX) {
        snprintf(err, errsz, "invalid --max-body (at most 1GiB)");
        return PT_EINVAL;
    }
    if (s->cors == NULL)
        return 0;
    if (pt_epset_check_cors(s->cors, why, sizeof why) != 0) {
        snprintf(err, errsz, "invalid --cors: %s", why);
        return PT_EINVAL;
    }
    if (strcmp(s->cors, "*") == 0 && (auth == NULL || strcmp(auth, "public") != 0)) {
        snprintf(err, errsz,
                 "--cors '*' is allowed on public endpoints only: this endpoint's auth is %s, "
                 "so list the origins that may call it",
                 auth != NULL ? auth : "not public");
        return PT_EINVAL;
    }
    return 0;
}

int
pt_epset_origin_allowed(const pt_ep_settings *s, const char *origin, size_t n)
{
    const char *p = s->cors;

    if (p == NULL || n == 0)
        return 0;
    if (p[0] == '*' && p[1] == '\0')
        return 1;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == n && strncasecmp(p, origin, n) == 0)
            return 1;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}
