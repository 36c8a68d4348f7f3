/* json.c - JSON text output: UTF-8-safe strings, integers, and doubles formatted like Python. */
#include "core/json.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* Python's json.dumps(ensure_ascii=False) escapes exactly these: '"', '\\' and C0 controls. */
static const char hexdigits[] = "0123456789abcdef";

/* Length of the well-formed UTF-8 sequence at s[0..n) (Unicode Table 3-7), or, when it is
 * ill-formed, minus the length of its maximal subpart (at least 1 byte). Each maximal subpart
 * becomes one U+FFFD, which is what Python's decode(errors="replace") does. */
static int
utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* beyond U+10FFFF */
    } else {
        return -1; /* continuation byte, C0/C1 overlong lead, or F5..FF */
    }
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n || s[i] < lo || s[i] > hi)
            return -i;
        lo = 0x80;
        hi = 0xBF;
    }
    return len;
}

int
pt_json_string(pt_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t old = b->len;
    size_t i = 0, run = 0; /* p[run..i) is pending output that needs no change */
    int rc = pt_buf_reserve(b, n + 2);

    if (rc < 0)
        return rc;
    b->data[b->len++] = '"';
    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        int len = c < 0x80 ? 1 : utf8_seq(p + i, n - i);
        if (c >= 0x80 && len > 0) {
            i += (size_t)len;
            continue;
        }
        rc = pt_buf_append(b, p + run, i - run);
        if (rc < 0)
            goto fail;
        char esc[8] = "\\";
        size_t elen = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hexdigits[c >> 4];
                esc[5] = hexdigits[c & 15];
                elen = 6;
            } else {
                memcpy(esc, "\xEF\xBF\xBD", 3); /* U+FFFD for an ill-formed subpart */
                elen = 3;
            }
            break;
        }
        rc = pt_buf_append(b, esc, elen);
        if (rc < 0)
            goto fail;
        i += len > 0 ? (size_t)len : (size_t)-len;
        run = i;
    }
    rc = pt_buf_append(b, p + run, i - run);
    if (rc < 0)
        goto fail;
    rc = pt_buf_putc(b, '"');
    if (rc < 0)
        goto fail;
    return 0;

fail:
    b->len = old;
    b->data[old] = '\0';
    return rc;
}

int
pt_json_int(pt_buf *b, int64_t v)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp), *q = end;
    /* Negate in unsigned arithmetic so INT64_MIN works. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--q = '-';
    return pt_buf_append(b, q, (size_t)(end - q));
}

/* Decimal digits of |v| and the exponent of the first one: |v| ~= 0.d1d2d3... * 10^(exp+1). */
typedef struct digits {
    char d[24];
    int n;
    int exp;
} digits;

/* True when "D e X" (digits as an integer, scaled so that d1 has weight 10^exp) reads back as
 * exactly |v|. The string has no radix character, so the locale does not matter. */
static int
digits_roundtrip(const digits *g, double av)
{
    char s[48];
    snprintf(s, sizeof(s), "%.*se%d", g->n, g->d, g->exp - (g->n - 1));
    return strtod(s, NULL) == av;
}

/* Moves g to the next decimal with as many digits, up (delta +1) or down (delta -1): 9.9..9
 * becomes 1.0..0 a decade up and back. Returns 0 when there is none (down from 0). */
static int
digits_step(digits *g, int delta)
{
    int i = g->n - 1;
    if (delta > 0) {
        while (i >= 0 && g->d[i] == '9')
            g->d[i--] = '0';
        if (i < 0) {
            g->d[0] = '1';
            g->exp++;
            return 1;
        }
        g->d[i]++;
        return 1;
    }
    while (i >= 0 && g->d[i] == '0')
        g->d[i--] = '9';
    if (i < 0)
        return 0;
    g->d[i]--;
    if (g->d[0] == '0') {
        /* 10..0 - 1: the next decimal down with as many digits is 9.9..9 one decade lower. */
        memmove(g->d, g->d + 1, (size_t)g->n - 1);
        g->d[g->n - 1] = '9';
        g->exp--;
    }
    return 1;
}

/* Finds a p-significant-digit decimal that reads back as av: the correctly rounded one, or
 * failing that one of its neighbours (the rounding interval of a power of two is lopsided,
 * so the nearest p-digit decimal can fall outside it while the next one up is inside). */
static int
digits_try(double av, int p, digits *out)
{
    char s[48];
    digits g = {.n = 0};

    snprintf(s, sizeof(s), "%.*e", p - 1, av);
    const char *q = s;
    while (*q && *q != 'e') {
        if (*q >= '0' && *q <= '9')
            g.d[g.n++] = *q;
        q++;
    }
    g.exp = *q == 'e' ? atoi(q + 1) : 0;
    if (digits_roundtrip(&g, av)) {
        *out = g;
        return 1;
    }
    for (int delta = 1; delta >= -1; delta -= 2) {
        digits h = g;
        if (digits_step(&h, delta) && digits_roundtrip(&h, av)) {
            *out = h;
            return 1;
        }
    }
    return 0;
}

/* The fast path for the doubles data is made of: values with at most 8 decimals between 1e-4
 * and 2^53 (prices, amounts, measurements). N = round(av * 10^k) for the smallest k where
 * N / 10^k reads back as av; both are exact (N < 2^53, 10^k <= 10^8), so the division is
 * correctly rounded and equals strtod of the decimal, and the smallest such k gives the
 * shortest string, which is what repr() prints. Writes it positionally into out and returns
 * its length, or 0 when the value needs the general path. */
static size_t
short_decimal(double av, char *out)
{
    static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    if (av < 1e-4 || av >= 1e15)
        return 0;
    for (int k = 1; k <= 8; k++) {
        double scaled = av * pow10[k];
        if (scaled >= 9007199254740992.0)
            return 0;
        double n = nearbyint(scaled);
        if (n / pow10[k] != av)
            continue;
        char digs[24];
        int len = 0;
        for (uint64_t u = (uint64_t)n; u != 0 || len == 0; u /= 10)
            digs[len++] = (char)('0' + u % 10);
        for (int i = 0; i < len / 2; i++) {
            char t = digs[i];
            digs[i] = digs[len - 1 - i];
            digs[len - 1 - i] = t;
        }
        char *o = out;
        if (len <= k) {
            *o++ = '0';
            *o++ = '.';
            for (int z = 0; z < k - len; z++)
                *o++ = '0';
            memcpy(o, digs, (size_t)len);
            o += len;
        } else {
            memcpy(o, digs, (size_t)(len - k));
            o += len - k;
            *o++ = '.';
            memcpy(o, digs + len - k, (size_t)k);
            o += k;
        }
        *o = '\0';
        return (size_t)(o - out);
    }
    return 0;
}

size_t
pt_json_format_double(double v, char *out)
{
    char *o = out;

    if (isnan(v))
        return (size_t)sprintf(out, "nan");
    if (isinf(v))
        return (size_t)sprintf(out, v < 0 ? "-inf" : "inf");
    if (signbit(v))
        *o++ = '-';
    double av = fabs(v);
    if (av == 0)
        return (size_t)(o - out) + (size_t)sprintf(o, "0.0");
    if (av < 9007199254740992.0 && av == floor(av)) {
        /* Integers below 2^53 need every digit, and %.0f prints them exactly. */
        return (size_t)(o - out) + (size_t)sprintf(o, "%.0f.0", av);
    }

    size_t fast = short_decimal(av, o);
    if (fast > 0)
        return (size_t)(o - out) + fast;

    digits best = {.n = 0};
    if (av >= DBL_MIN) {
        /* A normal double's rounding interval is narrower than the gap between 15-digit
         * decimals, so it holds at most one of them: when one reads back as av, it is also the
         * shortest (less its trailing zeros). Otherwise the answer has 16 or 17 digits. */
        if (!digits_try(av, 15, &best) && !digits_try(av, 16, &best))
            digits_try(av, 17, &best);
    } else {
        /* Subnormals have few significant bits, so their intervals are wide. Whether some
         * p-digit decimal reads back as av is monotone in p (p-digit decimals are also
         * (p+1)-digit ones): binary search for the smallest p. 17 digits always work. */
        digits g;
        int lo = 1, hi = 17;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (digits_try(av, mid, &g)) {
                best = g;
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        if (best.n == 0)
            digits_try(av, 17, &best);
    }
    while (best.n > 1 && best.d[best.n - 1] == '0')
        best.n--;

    int e = best.exp, n = best.n;
    if (e >= -4 && e < 16) {
        /* Python's repr uses positional notation for 1e-4 <= |v| < 1e16. */
        if (e >= 0) {
            for (int i = 0; i <= e; i++)
                *o++ = i < n ? best.d[i] : '0';
            *o++ = '.';
            if (n > e + 1) {
                memcpy(o, best.d + e + 1, (size_t)(n - e - 1));
                o += n - e - 1;
            } else {
                *o++ = '0';
            }
        } else {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -e - 1; i++)
                *o++ = '0';
            memcpy(o, best.d, (size_t)n);
            o += n;
        }
        *o = '\0';
        return (size_t)(o - out);
    }
    *o++ = best.d[0];
    if (n > 1) {
        *o++ = '.';
        memcpy(o, best.d + 1, (size_t)n - 1);
        o += n - 1;
    }
    o += sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    return (size_t)(o - out);
}

int
pt_json_double(pt_buf *b, double v)
{
    char tmp[40];
    size_t n;

    if (isnan(v))
        return pt_buf_append(b, "NaN", 3);
    if (isinf(v))
        return v < 0 ? pt_buf_append(b, "-Infinity", 9) : pt_buf_append(b, "Infinity", 8);
    n = pt_json_format_double(v, tmp);
    return pt_buf_append(b, tmp, n);
}
