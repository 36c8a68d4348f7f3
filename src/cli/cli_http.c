/* cli_http.c - the remote CLI's HTTP/1.1 client: one request per connection over TCP, or TLS
 * for https:// (OpenSSL; the certificate verified against the system store, or the CA file of
 * --cacert / $PORTICO_CA_FILE), answers framed by Content-Length, chunked encoding or the end
 * of the connection. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli/cli_api.h"
#include "core/buf.h"
#include "core/version.h"

#define HTTP_TIMEOUT_MS 60000         /* per read or write; the server has its own timeout */
#define HTTP_RESPONSE_MAX (64u << 20) /* an answer larger than this is refused */

/* The CA file of --cacert (NULL: $PORTICO_CA_FILE, else the system store). */
static const char *ca_file;

void
pt_cli_http_cafile(const char *path)
{
    ca_file = path;
}

/* Splits "http[s]://host[:port]/rest" into host, port and rest ("/" when absent); *tls is set
 * for https. 0 or -1. */
static int
parse_url(const char *url, int *tls, char *host, size_t hostsz, char *port, size_t portsz,
          const char **rest, char *err, size_t errsz)
{
    const char *p, *end, *colon;

    *tls = strncasecmp(url, "https://", 8) == 0;
    if (!*tls && strncasecmp(url, "http://", 7) != 0) {
        snprintf(err, errsz,
                 "not an http:// or https:// URL (give http[s]://HOST:PORT of the admin "
                 "listener)");
        return -1;
    }
    p = url + (*tls ? 8 : 7);
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
        snprintf(port, portsz, "%s", *tls ? "443" : "80");
    }
    return 0;
bad:
    snprintf(err, errsz, "invalid server URL (give http://HOST:PORT of the admin listener)");
    return -1;
}

/* Waits until fd is ready for events (at most timeout_ms; -1: for ever); 0, or -1 on timeout
 * or error. */
static int
wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int n;
    do
        n = poll(&pfd, 1, timeout_ms);
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
        if (wait_fd(fd, POLLOUT, HTTP_TIMEOUT_MS) != 0)
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

/* One connection: a socket, and its TLS session for https. */
typedef struct conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    int forever; /* reads wait without a timeout (an event stream) */
} conn;

static void
conn_close(conn *c)
{
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->ctx = NULL;
    c->fd = -1;
}

/* The reason of the last TLS failure, one line, into err. */
static void
tls_reason(const conn *c, const char *what, const char *host, char *err, size_t errsz)
{
    long vr = c->ssl != NULL ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    unsigned long e = ERR_peek_last_error();
    char reason[256];

    if (vr != X509_V_OK)
        snprintf(reason, sizeof reason, "certificate verify failed: %s%s",
                 X509_verify_cert_error_string(vr),
                 ca_file != NULL || getenv("PORTICO_CA_FILE") != NULL
                     ? ""
                     : " (give the server's CA with --cacert FILE or PORTICO_CA_FILE)");
    else if (e != 0)
        ERR_error_string_n(e, reason, sizeof reason);
    else
        snprintf(reason, sizeof reason, "%s", errno != 0 ? strerror(errno) : "connection closed");
    snprintf(err, errsz, "TLS %s with %s failed: %s", what, host, reason);
    ERR_clear_error();
}

/* Starts TLS on c->fd with host, verifying its certificate (and its name or address). 0, or
 * -1 with err set. */
static int
tls_start(conn *c, const char *host, char *err, size_t errsz)
{
    const char *cafile = ca_file != NULL ? ca_file : getenv("PORTICO_CA_FILE");
    struct timeval tv = {.tv_sec = HTTP_TIMEOUT_MS / 1000};
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;

    ERR_clear_error();
    /* OpenSSL writes with write(): a server gone mid-answer must be an error, not SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    /* TLS reads and writes block on the socket: bound them as poll() does for plain HTTP. */
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        tls_reason(c, "setup", host, err, errsz);
        return -1;
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* The answer ends with the connection (Connection: close), close_notify or not. */
    SSL_CTX_set_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    if (cafile != NULL && cafile[0] != '\0') {
        if (SSL_CTX_load_verify_locations(c->ctx, cafile, NULL) != 1) {
            ERR_clear_error();
            snprintf(err, errsz, "cannot read the CA file %s (a PEM certificate)", cafile);
            return -1;
        }
    } else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
        tls_reason(c, "setup", host, err, errsz);
        return -1;
    }
    if ((c->ssl = SSL_new(c->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        tls_reason(c, "setup", host, err, errsz);
        return -1;
    }
    if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host);
    } else {
        SSL_set_tlsext_host_name(c->ssl, host);
        SSL_set1_host(c->ssl, host);
    }
    errno = 0;
    if (SSL_connect(c->ssl) != 1) {
        tls_reason(c, "handshake", host, err, errsz);
        return -1;
    }
    if (c->forever) {
        struct timeval none = {0};
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    }
    return 0;
}

static int
conn_send(conn *c, const char *p, size_t n)
{
    if (c->ssl == NULL)
        return send_all(c->fd, p, n);
    while (n > 0) {
        int w = SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads what has come (at most n bytes): > 0, 0 at the end of the answer, -1 with errno or
 * err set. */
static ssize_t
conn_recv(conn *c, char *buf, size_t n, char *err, size_t errsz)
{
    if (c->ssl == NULL) {
        for (;;) {
            if (wait_fd(c->fd, POLLIN, c->forever ? -1 : HTTP_TIMEOUT_MS) != 0)
                return -1;
            ssize_t r = recv(c->fd, buf, n, 0);
            if (r < 0 && errno == EINTR)
                continue;
            return r;
        }
    }
    errno = 0;
    int r = SSL_read(c->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        errno = ETIMEDOUT;
    if (errno == 0)
        tls_reason(c, "read", "the server", err, errsz);
    return -1;
}

/* Connects to url (c->forever already set) and sends the request: method, the Bearer token
 * (NULL: none), accept, body[0..body_len) as JSON (NULL: none). 0, or -1 with err set (c may
 * hold a socket either way: conn_close). */
static int
http_open(conn *c, const char *url, const char *token, const char *method, const char *accept,
          const char *body, size_t body_len, char *err, size_t errsz)
{
    char host[256], port[8];
    const char *rest;
    pt_buf req;
    int rc = -1, tls = 0;

    err[0] = '\0';
    pt_buf_init(&req, 0);
    if (parse_url(url, &tls, host, sizeof host, port, sizeof port, &rest, err, errsz) != 0)
        goto done;
    const char *dflt = tls ? "443" : "80";
    int bad =
        pt_buf_printf(&req,
                      "%s %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: portico-cli/" PT_VERSION
                      "\r\nAccept: %s\r\nConnection: close\r\n",
                      method, rest, strchr(host, ':') != NULL ? "[" : "", host,
                      strchr(host, ':') != NULL ? "]" : "", strcmp(port, dflt) ? ":" : "",
                      strcmp(port, dflt) ? port : "", accept) != 0;
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
    if ((c->fd = dial(host, port, err, errsz)) < 0)
        goto done;
    if (tls && tls_start(c, host, err, errsz) != 0)
        goto done;
    if (conn_send(c, req.data, req.len) != 0) {
        snprintf(err, errsz, "cannot send to %s: %s", url, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    pt_buf_free(&req);
    return rc;
}

int
pt_cli_http(const char *url, const char *token, const char *method, const char *body,
            size_t body_len, int *status, char **resp, size_t *resp_len, int *is_json, char *err,
            size_t errsz)
{
    pt_buf in;
    conn c = {.fd = -1};
    int rc = -1;

    *resp = NULL;
    *resp_len = 0;
    pt_buf_init(&in, 0);
    if (http_open(&c, url, token, method, "application/json", body, body_len, err, errsz) != 0)
        goto done;
    for (;;) {
        char chunk[16384];
        ssize_t r = conn_recv(&c, chunk, sizeof chunk, err, errsz);
        if (r < 0) {
            if (err[0] == '\0')
                snprintf(err, errsz, "no answer from %s: %s", url, strerror(errno));
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
    conn_close(&c);
    pt_buf_free(&in);
    return rc;
}

/* Hands each complete event of data[0..*n) to on_event (its "data:" lines joined with '\n';
 * comments and other fields skipped) and drops it from data. 0, or what on_event returned. */
static int
split_events(pt_buf *data, int (*on_event)(const char *data, size_t n, void *ctx), void *ctx)
{
    pt_buf ev;
    int rc = 0;

    pt_buf_init(&ev, 0);
    for (;;) {
        char *end = data->len > 0 ? memmem(data->data, data->len, "\n\n", 2) : NULL;
        if (end == NULL)
            break;
        size_t blen = (size_t)(end - data->data) + 2;
        ev.len = 0;
        for (char *p = data->data; p < end;) {
            char *eol = memchr(p, '\n', (size_t)(end - p));
            size_t ln = eol != NULL ? (size_t)(eol - p) : (size_t)(end - p);
            if (ln >= 5 && strncmp(p, "data:", 5) == 0) {
                size_t skip = ln > 5 && p[5] == ' ' ? 6 : 5;
                if (ev.len > 0)
                    pt_buf_putc(&ev, '\n');
                pt_buf_append(&ev, p + skip, ln - skip);
            }
            p += ln + 1;
        }
        memmove(data->data, data->data + blen, data->len - blen);
        data->len -= blen;
        if (ev.len > 0 && (rc = on_event(pt_buf_cstr(&ev), ev.len, ctx)) != 0)
            break;
    }
    pt_buf_free(&ev);
    return rc;
}

int
pt_cli_http_events(const char *url, const char *token,
                   int (*on_event)(const char *data, size_t n, void *ctx), void *ctx, int *status,
                   char **resp, size_t *resp_len, char *err, size_t errsz)
{
    conn c = {.fd = -1, .forever = 1};
    pt_buf in, data;
    int rc = -1, chunked = 0, head_done = 0;
    size_t size = 0; /* chunked: bytes of the current chunk still to come, else 0 */

    *status = 0;
    *resp = NULL;
    *resp_len = 0;
    pt_buf_init(&in, 0);
    pt_buf_init(&data, 0);
    if (http_open(&c, url, token, "GET", "text/event-stream", NULL, 0, err, errsz) != 0)
        goto done;
    for (;;) {
        char chunk[16384];
        ssize_t r = conn_recv(&c, chunk, sizeof chunk, err, errsz);
        if (r < 0) {
            if (err[0] == '\0')
                snprintf(err, errsz, "the event stream from %s broke: %s", url, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        if (pt_buf_append(&in, chunk, (size_t)r) != 0 || in.len > HTTP_RESPONSE_MAX) {
            snprintf(err, errsz, "the answer from %s is too large", url);
            goto done;
        }
        if (!head_done) {
            char *hend = memmem(in.data, in.len, "\r\n\r\n", 4);
            size_t vn = 0;
            if (hend == NULL)
                continue;
            if (sscanf(in.data, "HTTP/1.%*d %d", status) != 1) {
                snprintf(err, errsz, "%s did not answer HTTP (is it the admin listener?)", url);
                goto done;
            }
            const char *v =
                header(in.data, (size_t)(hend - in.data) + 2, "transfer-encoding:", &vn);
            chunked = v != NULL && vn >= 7 && strncasecmp(v + vn - 7, "chunked", 7) == 0;
            if (*status != 200) {
                /* A refusal: the caller prints it from the whole answer (pt_cli_http). */
                conn_close(&c);
                pt_buf_free(&in);
                pt_buf_free(&data);
                return pt_cli_http(url, token, "GET", NULL, 0, status, resp, resp_len, &chunked,
                                   err, errsz);
            }
            size_t hn = (size_t)(hend - in.data) + 4;
            memmove(in.data, in.data + hn, in.len - hn);
            in.len -= hn;
            head_done = 1;
        }
        /* Decode what has come into data. */
        size_t used = 0;
        while (used < in.len) {
            if (!chunked) {
                pt_buf_append(&data, in.data + used, in.len - used);
                used = in.len;
            } else if (size > 0) {
                size_t take = in.len - used < size ? in.len - used : size;
                pt_buf_append(&data, in.data + used, take);
                used += take;
                size -= take;
            } else {
                char *eol = memchr(in.data + used, '\n', in.len - used);
                if (eol == NULL)
                    break;
                char *line = in.data + used;
                used = (size_t)(eol - in.data) + 1;
                if (eol == line || (eol == line + 1 && line[0] == '\r'))
                    continue; /* the CRLF after a chunk's data */
                size = (size_t)strtoul(line, NULL, 16);
                if (size == 0) {
                    rc = 0; /* the last chunk: the stream ended */
                    goto flush;
                }
            }
        }
        memmove(in.data, in.data + used, in.len - used);
        in.len -= used;
        if (split_events(&data, on_event, ctx) != 0) {
            rc = 0;
            goto done;
        }
    }
    rc = 0;
flush:
    split_events(&data, on_event, ctx);
done:
    conn_close(&c);
    pt_buf_free(&in);
    pt_buf_free(&data);
    return rc;
}
