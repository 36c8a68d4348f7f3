/* buf.c - growable byte buffers with a hard cap on their length. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* The first allocation is this big, so that short strings cost one malloc. */
#define BUF_MIN_CAP 64

static size_t
buf_max(const pt_buf *b)
{
    return b->max ? b->max : SIZE_MAX - 1;
}

void
pt_buf_init(pt_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void
pt_buf_free(pt_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void
pt_buf_reset(pt_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* cap always counts the byte kept for the terminating NUL, so len < cap once allocated. */
int
pt_buf_reserve(pt_buf *b, size_t n)
{
    size_t max = buf_max(b);
    if (n > max || b->len > max - n)
        return PT_ETOOBIG;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    /* Never allocate more than the cap allows: a 1 MiB cap must not reserve 2 MiB. */
    if (cap > max + 1)
        cap = max + 1;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return PT_ENOMEM;
    if (b->data == NULL)
        p[0] = '\0';
    b->data = p;
    b->cap = cap;
    return 0;
}

int
pt_buf_append(pt_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = pt_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
pt_buf_puts(pt_buf *b, const char *s)
{
    return pt_buf_append(b, s, strlen(s));
}

int
pt_buf_putc(pt_buf *b, char c)
{
    if (b->len + 1 >= b->cap) {
        int rc = pt_buf_reserve(b, 1);
        if (rc < 0)
            return rc;
    }
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return 0;
}

int
pt_buf_printf(pt_buf *b, const char *fmt, ...)
{
    va_list ap;
    char *dst = b->data ? b->data + b->len : NULL;
    size_t room = b->data ? b->cap - b->len : 0;

    va_start(ap, fmt);
    int n = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (b->data)
            b->data[b->len] = '\0';
        return PT_EINVAL;
    }
    if ((size_t)n < room) {
        b->len += (size_t)n;
        return 0;
    }
    /* It did not fit: undo the truncated output, grow, and format again. */
    if (b->data)
        b->data[b->len] = '\0';
    int rc = pt_buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

const char *
pt_buf_cstr(pt_buf *b)
{
    if (b->data == NULL && pt_buf_reserve(b, 0) < 0)
        return "";
    return b->data;
}

char *
pt_buf_steal(pt_buf *b, size_t *len)
{
    char *p = b->data;
    if (p == NULL)
        p = calloc(1, 1);
    if (len)
        *len = p ? b->len : 0;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
