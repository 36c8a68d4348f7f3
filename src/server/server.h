/* server.h - `portico serve`: the master process and its workers. */
#ifndef PT_SERVER_H
#define PT_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "auth/ratelimit.h"
#include "server/breaker.h"
#include "server/bulkhead.h"
#include "server/cache.h"
#include "server/metrics.h"
#include "server/nodesync.h"
#include "server/tls.h"

typedef struct pt_server_config {
    const char *datadir;
    char host[256];          /* listen address, default 127.0.0.1 */
    int port;                /* default 8080; 0 picks a free port (printed); -1: no listener */
    char tls_host[256];      /* the TLS listener's address (--listen-tls) */
    int tls_port;            /* 0 picks a free port (printed); -1 (default): no TLS listener */
    pt_tls *tls;             /* the certificate and key (tls.h); NULL without TLS */
    int admin_tls;           /* the admin listener speaks TLS with the same pair */
    int tls_fd;              /* the TLS listening socket, -1 when none; set by pt_server_run */
    int workers;             /* default: number of cores */
    int threads;             /* Python threads per worker at start (default 4; grows to 4x) */
    int max_threads;         /* runner threads per worker for waiting handlers; 0: 256 */
    double timeout;          /* handler timeout in seconds, default 30 */
    size_t worker_memory;    /* bytes; default 512 MiB */
    size_t max_body;         /* bytes; default 10 MiB */
    size_t max_header;       /* bytes; default 16 KiB */
    int webhook_attempts;    /* a processing script's tries per event, default 5 */
    double webhook_backoff;  /* seconds before the first retry (doubling), default 1 */
    char admin_host[256];    /* the admin API's listener (--admin-listen), default 127.0.0.1 */
    int admin_port;          /* default 8081; 0 picks a free port; -1: no admin listener */
    int64_t session_idle;    /* seconds an admin session lives without a request, default 1800 */
    int admin_fd;            /* the admin listening socket, -1 when none; set by pt_server_run */
    int64_t started;         /* unix seconds; set by pt_server_run */
    long long log_max_age;   /* request log: seconds a row is kept; 0: PT_LOG_MAX_AGE_DEFAULT */
    long long log_max_rows;  /* request log: rows kept; 0: PT_LOG_MAX_ROWS_DEFAULT */
    long long log_max_size;  /* request log: bytes of data kept; 0: PT_LOG_MAX_SIZE_DEFAULT */
    pt_ratelimit *ratelimit; /* shared by the workers; mapped by pt_server_run, NULL: no limits */
    pt_metrics *metrics;     /* shared counters; mapped by pt_server_run, NULL: none */
    pt_breaker *breaker;     /* the crash breaker (breaker.h); mapped by pt_server_run, NULL: off */
    size_t cache_size;       /* bytes of the response cache's arena, default 64 MiB */
    pt_bulkhead *bulkhead;   /* per-endpoint admission (bulkhead.h); mapped by pt_server_run */
    pt_cache *cache;         /* the response cache (cache.h); mapped by pt_server_run, NULL: off */
    pt_nodesync *nodesync;   /* the store's reachability (nodesync.h); mapped by pt_server_run */
} pt_server_config;

/* The request log's bounds when `serve` is not given --log-max-age / --log-max-rows /
 * --log-max-size; and the least --log-max-size. */
#define PT_LOG_MAX_AGE_DEFAULT (7 * 86400LL)
#define PT_LOG_MAX_ROWS_DEFAULT 500000LL
#define PT_LOG_MAX_SIZE_DEFAULT (256LL << 20)
#define PT_LOG_MAX_SIZE_MIN (1LL << 20)

/* Fills the defaults. */
void pt_server_config_init(pt_server_config *cfg, const char *datadir);
/* Runs until SIGTERM/SIGINT. Returns the process exit status. */
int pt_server_run(const pt_server_config *cfg);

#endif
