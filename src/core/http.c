/* http.c - method names and bits, the check of endpoint path patterns and HTTP reason
 * phrases (core/http.h). */
#include "core/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

#define PATTERN_MAX 1024

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {
    {"GET", PT_M_GET},       {"POST", PT_M_POST}, {"PUT", PT_M_PUT},         {"PATCH", PT_M_PATCH},
    {"DELETE", PT_M_DELETE}, {"HEAD", PT_M_HEAD}, {"OPTIONS", PT_M_OPTIONS},
};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

unsigned
pt_http_method_bit(const char *name, size_t n)
{
    for (size_t i = 0; i < NMETHODS; i++) {
        if (strlen(methods[i].name) == n && memcmp(methods[i].name, name, n) == 0)
            return methods[i].bit;
    }
    return 0;
}

int
pt_http_parse_methods(const char *list, unsigned *mask)
{
    unsigned m = 0;
    const char *p = list;

    if (list == NULL)
        return PT_EINVAL;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        size_t n = (size_t)(p - start);
        char up[8];
        if (n == 0 || n >= sizeof(up))
            return PT_EINVAL;
        for (size_t i = 0; i < n; i++)
            up[i] = (char)(start[i] >= 'a' && start[i] <= 'z' ? start[i] - 32 : start[i]);
        unsigned bit = pt_http_method_bit(up, n);
        if (bit == 0)
            return PT_EINVAL;
        m |= bit;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        if (*p != ',')
            return PT_EINVAL;
        p++;
    }
    *mask = m;
    return 0;
}

void
pt_http_format_methods(unsigned mask, char *out, size_t outsz)
{
    size_t len = 0;

    if (outsz == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < NMETHODS; i++) {
        if (!(mask & methods[i].bit))
            continue;
        int n = snprintf(out + len, outsz - len, "%s%s", len ? ", " : "", methods[i].name);
        if (n < 0 || (size_t)n >= outsz - len) {
            out[len] = '\0'; /* never leave half a method name */
            return;
        }
        len += (size_t)n;
    }
}

static int
lit_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("._~!$&'()+,;=:@-", c) != NULL);
}

static int
name_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

__attribute__((format(printf, 3, 4))) static int
fail(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;

    if (err && errsz) {
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return PT_EINVAL;
}

int
pt_http_check_path(const char *pattern, char *err, size_t errsz)
{
    const char *names[PT_ROUTER_MAX_PARAMS];
    size_t name_lens[PT_ROUTER_MAX_PARAMS];
    size_t nseg = 0, nparams = 0;

    if (err && errsz)
        err[0] = '\0';
    if (pattern == NULL || pattern[0] != '/')
        return fail(err, errsz, "path must start with '/'");
    size_t total = strlen(pattern);
    if (total > PATTERN_MAX)
        return fail(err, errsz, "path is too long (max %d bytes)", PATTERN_MAX);
    if (total == 1)
        return 0; /* the root */

    const char *p = pattern + 1;
    for (;;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);

        if (n == 0 && end == NULL)
            return fail(err, errsz, "path must not end with '/'");
        if (n == 0)
            return fail(err, errsz, "empty segment in path");
        if (++nseg > PT_ROUTER_MAX_SEGMENTS)
            return fail(err, errsz, "too many segments in path (max %d)", PT_ROUTER_MAX_SEGMENTS);
        if (nseg == 1 && n == 8 && memcmp(p, "_portico", 8) == 0)
            return fail(err, errsz, "the /_portico/ prefix is reserved");
        if (nseg == 1 && n == 7 && memcmp(p, "webhook", 7) == 0)
            return fail(err, errsz, "the /webhook/ prefix is reserved");
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return fail(err, errsz, "'.' and '..' segments are not allowed in path");

        if (p[0] == '{') {
            if (p[n - 1] != '}')
                return fail(err, errsz, "a parameter must be a whole segment: '%.*s'", (int)n, p);
            const char *name = p + 1;
            size_t nlen = n - 2;
            if (nlen == 0)
                return fail(err, errsz, "empty parameter name in path");
            for (size_t i = 0; i < nlen; i++) {
                if (!name_char(name[i], i == 0))
                    return fail(err, errsz,
                                "bad parameter name '%.*s' (letters, digits and '_', not "
                                "starting with a digit)",
                                (int)nlen, name);
            }
            for (size_t i = 0; i < nparams; i++) {
                if (name_lens[i] == nlen && memcmp(names[i], name, nlen) == 0)
                    return fail(err, errsz, "duplicate parameter name '%.*s'", (int)nlen, name);
            }
            if (nparams == PT_ROUTER_MAX_PARAMS)
                return fail(err, errsz, "too many parameters in path (max %d)",
                            PT_ROUTER_MAX_PARAMS);
            names[nparams] = name;
            name_lens[nparams++] = nlen;
        } else if (!(n == 1 && p[0] == '*')) {
            for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)p[i];
                if (c == '*')
                    return fail(err, errsz, "'*' must be a whole segment: '%.*s'", (int)n, p);
                if (c == '{' || c == '}')
                    return fail(err, errsz, "a parameter must be a whole segment: '%.*s'", (int)n,
                                p);
                if (!lit_char((char)c)) {
                    if (c >= 0x20 && c < 0x7f)
                        return fail(err, errsz, "bad character '%c' in path", c);
                    return fail(err, errsz, "bad character (byte 0x%02x) in path", c);
                }
            }
        }
        if (end == NULL)
            return 0;
        p = end + 1;
    }
}

/* RFC 9110 and the registered extensions, sorted by code. */
static const struct {
    int code;
    const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {207, "Multi-Status"},
    {208, "Already Reported"},
    {226, "IM Used"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Payload Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {418, "I'm a teapot"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Entity"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {506, "Variant Also Negotiates"},
    {507, "Insufficient Storage"},
    {508, "Loop Detected"},
    {510, "Not Extended"},
    {511, "Network Authentication Required"},
};

const char *
pt_http_reason(int status)
{
    size_t lo = 0, hi = sizeof(reasons) / sizeof(reasons[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (reasons[mid].code == status)
            return reasons[mid].reason;
        if (reasons[mid].code < status)
            lo = mid + 1;
        else
            hi = mid;
    }
    return "Unknown";
}
