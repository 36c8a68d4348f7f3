/* worker_tls.c - the TLS listener inside a worker: the same hosts and handlers as the plain
 * listener, behind a handshake with the worker's SSL_CTX (tls.h), which the admin listener
 * shares when it speaks TLS; and that context's replacement on SIGHUP.
 *
 * Swapping the context only changes what the next handshakes use: OpenSSL gives every
 * connection its own reference to the context it was made with, so connections already open
 * (keep-alive, HTTP/2) go on undisturbed. But libh2o keeps a bare pointer to the context from
 * the accept until the client's first bytes arrive, and only then makes the connection's SSL
 * from it: a context swapped out stays alive past the handshake timeout (RETIRE_SECS), and is
 * freed at a later reload. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "server/tls.h"
#include "server/worker_int.h"

static SSL_CTX *tls_ctx;            /* the current context, NULL without TLS (loop side) */
static h2o_accept_ctx_t tls_accept; /* the public hosts, with tls_ctx */
static h2o_socket_t *tls_listener;  /* NULL when not listening */

/* Past h2o's handshake timeout (H2O_DEFAULT_HANDSHAKE_TIMEOUT_IN_SECS), with a margin. */
#define RETIRE_SECS (6 * H2O_DEFAULT_HANDSHAKE_TIMEOUT_IN_SECS)

/* Contexts swapped out and when (CLOCK_MONOTONIC seconds); loop side. */
static struct retired {
    SSL_CTX *ctx;
    time_t at;
} * retired;
static size_t nretired;

static time_t
mono_secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* Frees the contexts retired long enough ago, then retires old (NULL: none). Should the list
 * not grow, old is kept forever: a leak of one context beats a freed one in use. */
static void
retire(SSL_CTX *old)
{
    time_t now = mono_secs();
    size_t k = 0;
    for (size_t i = 0; i < nretired; i++) {
        if (now - retired[i].at > RETIRE_SECS)
            SSL_CTX_free(retired[i].ctx);
        else
            retired[k++] = retired[i];
    }
    nretired = k;
    if (old == NULL)
        return;
    struct retired *grown = realloc(retired, (nretired + 1) * sizeof(*retired));
    if (grown == NULL)
        return;
    retired = grown;
    retired[nretired++] = (struct retired){old, now};
}

int
pt_wtls_init(worker *w, char *err, size_t errsz)
{
    if (w->cfg->tls == NULL)
        return 0;
    tls_ctx = pt_tls_ctx_new(w->cfg->tls, err, errsz);
    return tls_ctx != NULL ? 0 : -1;
}

SSL_CTX *
pt_wtls_ctx(void)
{
    return tls_ctx;
}

static void
on_tls_accept(h2o_socket_t *listener, const char *err)
{
    /* h2o_accept does the handshake, then HTTP/2 or HTTP/1.1 by ALPN. */
    if (err == NULL)
        pt_worker_accept(&pt_worker_self, listener, &tls_accept, 64);
}

void
pt_wtls_listen(worker *w)
{
    if (w->cfg->tls_fd < 0 || tls_ctx == NULL || tls_listener != NULL)
        return;
    tls_accept.ctx = &w->ctx;
    tls_accept.hosts = w->globalconf.hosts;
    tls_accept.ssl_ctx = tls_ctx;
    tls_listener = h2o_evloop_socket_create(w->loop, w->cfg->tls_fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(tls_listener, on_tls_accept);
}

void
pt_wtls_stop(worker *w)
{
    (void)w;
    if (tls_listener == NULL)
        return;
    h2o_socket_read_stop(tls_listener);
    h2o_socket_close(tls_listener);
    tls_listener = NULL;
}

void
pt_wtls_reload(worker *w)
{
    char err[512];
    if (w->cfg->tls == NULL)
        return;
    /* The master checked the files before it signalled us; they may have changed since. */
    if (pt_tls_reload(w->cfg->tls, err, sizeof(err)) != 0) {
        pt_log_error("keeping the previous TLS certificate: %s", err);
        return;
    }
    SSL_CTX *ctx = pt_tls_ctx_new(w->cfg->tls, err, sizeof(err));
    if (ctx == NULL) {
        pt_log_error("keeping the previous TLS certificate: %s", err);
        return;
    }
    SSL_CTX *old = tls_ctx;
    tls_ctx = ctx;
    tls_accept.ssl_ctx = ctx;
    if (w->cfg->admin_tls)
        w->admin_accept_ctx.ssl_ctx = ctx;
    retire(old);
}
