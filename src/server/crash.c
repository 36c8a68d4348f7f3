/* crash.c - answers written when a worker can no longer answer normally: the raw HTTP error
 * reply, async-signal-safe, shared by the worker's crash paths and the master's custody of
 * slow requests (holds.c). */
#include "server/crash.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "server/request.h"

#define WHY_MAX 320 /* bytes of escaped reason in the body */
#define ID_MAX 64   /* bytes of request id, escaped in the body and printable in the header */

/* A fixed buffer being filled; `full` once something did not fit (nothing more is added). */
typedef struct out {
    char *p;
    size_t n, cap;
    int full;
} out;

static void
put_mem(out *o, const char *s, size_t n)
{
    if (o->full || n > o->cap - o->n) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void
put_str(out *o, const char *s)
{
    put_mem(o, s, strlen(s));
}

static void
put_uint(out *o, unsigned long v)
{
    char tmp[24];
    size_t n = sizeof(tmp);
    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put_mem(o, tmp + n, sizeof(tmp) - n);
}

/* Appends s as the inside of a JSON string, at most `room` bytes, never half an escape. */
static void
put_json(out *o, const char *s, size_t room)
{
    static const char hex[] = "0123456789abcdef";
    size_t used = 0;
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[6];
        size_t n = 0;
        if (c == '"' || c == '\\') {
            esc[n++] = '\\';
            esc[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        } else {
            /* Non-ASCII bytes could be half a UTF-8 sequence once cut: never let them through. */
            esc[n++] = c < 0x80 ? (char)c : '?';
        }
        if (used + n > room)
            return;
        put_mem(o, esc, n);
        used += n;
    }
}

size_t
pt_crash_format(char *buf, size_t bufsz, int status, const char *why, const char *id)
{
    char body[WHY_MAX + ID_MAX * 6 + 64];
    out b = {body, 0, sizeof(body), 0};
    out o = {buf, 0, bufsz, 0};

    if (status < 100 || status > 999)
        status = 500;
    put_str(&b, "{\"error\": \"");
    put_json(&b, why, WHY_MAX);
    put_str(&b, "\", \"request_id\": \"");
    put_json(&b, id, ID_MAX);
    put_str(&b, "\"}");

    put_str(&o, "HTTP/1.1 ");
    put_uint(&o, (unsigned long)status);
    put_str(&o, " ");
    put_str(&o, pt_http_reason(status));
    put_str(&o, "\r\ncontent-type: application/json\r\nconnection: close\r\nx-request-id: ");
    for (size_t i = 0; id != NULL && id[i] != '\0' && i < ID_MAX; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c > 0x20 && c < 0x7f)
            put_mem(&o, &id[i], 1);
    }
    put_str(&o, "\r\ncontent-length: ");
    put_uint(&o, b.n);
    put_str(&o, "\r\n\r\n");
    put_mem(&o, body, b.n);
    return o.full || b.full ? 0 : o.n;
}

int
pt_crash_reply(int fd, int status, const char *why, const char *id)
{
    char msg[PT_CRASH_REPLY_MAX];
    int saved = errno;
    size_t n = pt_crash_format(msg, sizeof(msg), status, why, id);
    size_t off = 0;
    while (off < n) {
        ssize_t rc = write(fd, msg + off, n - off);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            break;
        off += (size_t)rc;
    }
    errno = saved;
    return n > 0 && off == n ? 0 : PT_EIO;
}
