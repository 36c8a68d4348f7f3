/* cli_http.c - the remote CLI's HTTP/1.1 client: one request per connection over a plain TCP
 * socket (http:// only; TLS can come later with OpenSSL, already linked), answers framed by
 * Content-Length, chunked encoding or the end of the connection. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli/cli_api.h"
#include "core/buf.h"
#include "core/version.h"

#define HTTP_TIMEOUT_MS 60000         /* per read or write; the server has its own timeout */
#define HTTP_RESPONSE_MAX (64u << 20) /* an answer larger than this is refused */

/* Splits "http://host[:port]/rest" into host, port and rest ("/" when absent). 0 or -1. */
static int
parse_url(const char *url, char *host, size_t hostsz, char *port, size_t portsz, const char **rest,
          char *err, size_t errsz)
{
    const char *p, *end, *colon;

    if (strncasecmp(url, "https://", 8) == 0) {
        snprintf(err, errsz,
                 "https:// is not supported yet: use http:// to a private address, "
                 "or a local TLS proxy");
        return -1;
    }
    if (strncasecmp(url, "http://", 7) != 0) {
        snprintf(err, errsz, "not an http:// URL (give http://HOST:PORT of the admin listener)");
        return -1;
    }
    p = url + 7;
    end = p + strcspn(p, "/?#");
    *rest = *end != '\0' ? end : "/";
    if (*p == '[') { /* [v6]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            goto bad;
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
        if ((size_t)(rb - p - 1) >= hostsz)
            goto bad;
        memcpy(host, p + 1, (size_t)(rb - p - 1));
        host[rb - p - 1] = '\0';
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        const char *he = colon != NULL ? colon : end;
        if (he == p || (size_t)(he - p) >= hostsz)
            goto bad;
        memcpy(host, p, (size_t)(he - p));
        host[he - p] = '\0';
    }
    if (colon != NULL) {
        size_t n = (size_t)(end - colon - 1);
        if (n == 0 || n >= portsz || strspn(colon + 1, "0123456789") < n)
            goto bad;
        memcpy(port, colon + 1, n);
        port[n] = '\0';
    } else {
        snprintf(port, portsz, "80");
    }
    return 0;
bad:
    snprintf(err, errsz, "invalid server URL (give http://HOST:PORT of the admin listener)");
    return -1;
}

/* Waits until fd is ready for events; 0, or -1 on timeout or error. */
static int
wait_fd(int fd, short events)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int n;
    do
        n = poll(&pfd, 1, HTTP_TIMEOUT_MS);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        errno = ETIMEDOUT;
    return n > 0 ? 0 : -1;
}

/* Connects to host:port (any of its addresses). Returns the socket or -1 with err set. */
static int
dial(const char *host, const char *port, char *err, size_t errsz)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int fd = -1, rc = getaddrinfo(host, port, &hints, &res);

    if (rc != 0) {
        snprintf(err, errsz, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        snprintf(err, errsz, "cannot connect to %s port %s: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int
send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        if (wait_fd(fd, POLLOUT) != 0)
            return -1;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Decodes a chunked body in place; returns its length or -1 when malformed. */
static long
dechunk(char *b, size_t n)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        unsigned long len = strtoul(b + in, &end, 16);
        char *eol = memchr(b + in, '\n', n - in);
        if (end == b + in || eol == NULL)
            return -1;
        in = (size_t)(eol - b) + 1;
        if (len == 0)
            return (long)out;
        if (len > n - in)
            return -1;
        memmove(b + out, b + in, len);
        out += len;
        in += len;
        if (in + 2 <= n && b[in] == '\r')
            in++;
        if (in < n && b[in] == '\n')
            in++;
    }
}

/* The value of header name (with its ':') in head[0..n), or NULL; *vn its length. */
static const char *
header(const char *head, size_t n, const char *name, size_t *vn)
{
    size_t ln = strlen(name);
    const char *p = memchr(head, '\n', n), *end = head + n;
    while (p != NULL && p + 1 < end) {
        p++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > ln && strncasecmp(p, name, ln) == 0) {
            const char *v = p + ln;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vn = (size_t)(ve - v);
            return v;
        }
        p = eol < end ? eol : NULL;
    }
    return NULL;
}

int
pt_cli_http(const char *url, const char *token, const char *method, const char *body,
            size_t body_len, int *status, char **resp, size_t *resp_len, int *is_json, char *err,
            size_t errsz)
{
    char host[256], port[8];
    const char *rest;
    pt_buf req, in;
    int fd = -1, rc = -1;

    *resp = NULL;
    *resp_len = 0;
    pt_buf_init(&req, 0);
    pt_buf_init(&in, 0);
    if (parse_url(url, host, sizeof host, port, sizeof port, &rest, err, errsz) != 0)
        goto done;
    int bad =
        pt_buf_printf(&req,
                      "%s %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: portico-cli/" PT_VERSION
                      "\r\nAccept: application/json\r\nConnection: close\r\n",
                      method, rest, strchr(host, ':') != NULL ? "[" : "", host,
                      strchr(host, ':') != NULL ? "]" : "", strcmp(port, "80") ? ":" : "",
                      strcmp(port, "80") ? port : "") != 0;
    if (!bad && token != NULL)
        bad = pt_buf_printf(&req, "Authorization: Bearer %s\r\n", token) != 0;
    if (!bad && body != NULL)
        bad = pt_buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                            body_len) != 0;
    if (!bad)
        bad = pt_buf_puts(&req, "\r\n") != 0 ||
              (body != NULL && pt_buf_append(&req, body, body_len) != 0);
    if (bad) {
        snprintf(err, errsz, "out of memory");
        goto done;
    }
    if ((fd = dial(host, port, err, errsz)) < 0)
        goto done;
    if (send_all(fd, req.data, req.len) != 0) {
        snprintf(err, errsz, "cannot send to %s: %s", url, strerror(errno));
        goto done;
    }
    for (;;) {
        char chunk[16384];
        if (wait_fd(fd, POLLIN) != 0) {
            snprintf(err, errsz, "no answer from %s: %s", url, strerror(errno));
            goto done;
        }
        ssize_t r = recv(fd, chunk, sizeof chunk, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errsz, "cannot read from %s: %s", url, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        if (in.len + (size_t)r > HTTP_RESPONSE_MAX || pt_buf_append(&in, chunk, (size_t)r) != 0) {
            snprintf(err, errsz, "the answer from %s is too large", url);
            goto done;
        }
    }
    /* Status line, headers, body. */
    char *data = in.data;
    char *hend = data != NULL ? memmem(data, in.len, "\r\n\r\n", 4) : NULL;
    int st = 0;
    if (hend == NULL || sscanf(data, "HTTP/1.%*d %d", &st) != 1 || st < 100 || st > 599) {
        snprintf(err, errsz, "%s did not answer HTTP (is it the admin listener?)", url);
        goto done;
    }
    size_t hn = (size_t)(hend - data) + 2, vn = 0;
    char *b = hend + 4;
    size_t bn = in.len - (size_t)(b - data);
    const char *v = header(data, hn, "transfer-encoding:", &vn);
    if (v != NULL && vn >= 7 && strncasecmp(v + vn - 7, "chunked", 7) == 0) {
        long dn = dechunk(b, bn);
        if (dn < 0) {
            snprintf(err, errsz, "malformed chunked answer from %s", url);
            goto done;
        }
        bn = (size_t)dn;
    } else if ((v = header(data, hn, "content-length:", &vn)) != NULL) {
        size_t cl = (size_t)strtoull(v, NULL, 10);
        if (cl > bn) {
            snprintf(err, errsz, "the answer from %s was cut short", url);
            goto done;
        }
        bn = cl;
    }
    v = header(data, hn, "content-type:", &vn);
    *is_json = v != NULL && vn >= 16 && strncasecmp(v, "application/json", 16) == 0;
    *resp = malloc(bn + 1);
    if (*resp == NULL) {
        snprintf(err, errsz, "out of memory");
        goto done;
    }
    memcpy(*resp, b, bn);
    (*resp)[bn] = '\0';
    *resp_len = bn;
    *status = st;
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    pt_buf_free(&req);
    pt_buf_free(&in);
    return rc;
}
