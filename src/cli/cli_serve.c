/* cli_serve.c - `portico serve`: parses the server options and runs the server. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/err.h"
#include "server/server.h"
#include "store/store_migrate.h"
#include "store/store_reqlog.h"

int
pt_cli_serve(const char *datadir, int argc, char **argv)
{
    const char *usage =
        "serve [--listen HOST:PORT] [--listen-tls HOST:PORT --tls-cert FILE "
        "--tls-key FILE] [--workers N] [--threads N] [--max-threads N] "
        "[--timeout SECONDS] [--worker-memory MiB] [--max-body MiB] "
        "[--max-header KiB] [--webhook-attempts N] [--webhook-backoff SECONDS] "
        "[--admin-listen HOST:PORT|off | --admin-listen-tls HOST:PORT] "
        "[--session-idle DURATION] "
        "[--log-max-age 7d] [--log-max-rows N] [--log-max-size 256MiB] [--cache-size MiB]";
    const char *listen = NULL, *workers = NULL, *threads = NULL, *timeout = NULL;
    const char *memory = NULL, *body = NULL, *header = NULL, *attempts = NULL, *backoff = NULL;
    const char *admin = NULL, *idle = NULL, *log_age = NULL, *log_rows = NULL, *log_size = NULL;
    const char *listen_tls = NULL, *cert = NULL, *key = NULL, *admin_tls = NULL;
    const char *max_threads = NULL, *csize = NULL;
    pt_cli_opt opts[] = {{"--listen", 1, &listen},
                         {"--workers", 1, &workers},
                         {"--threads", 1, &threads},
                         {"--timeout", 1, &timeout},
                         {"--worker-memory", 1, &memory},
                         {"--max-body", 1, &body},
                         {"--max-header", 1, &header},
                         {"--webhook-attempts", 1, &attempts},
                         {"--webhook-backoff", 1, &backoff},
                         {"--admin-listen", 1, &admin},
                         {"--session-idle", 1, &idle},
                         {"--log-max-age", 1, &log_age},
                         {"--log-max-rows", 1, &log_rows},
                         {"--log-max-size", 1, &log_size},
                         {"--listen-tls", 1, &listen_tls},
                         {"--tls-cert", 1, &cert},
                         {"--tls-key", 1, &key},
                         {"--admin-listen-tls", 1, &admin_tls},
                         {"--max-threads", 1, &max_threads},
                         {"--cache-size", 1, &csize},
                         {NULL, 0, NULL}};
    pt_server_config cfg;
    pt_store *st = NULL;
    char *pos[1];
    long n;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    /* A store that cannot be opened (missing, empty, corrupt, read-only) stops serve here with
     * its one line, before any worker starts. */
    if (pt_cli_open_store(datadir, &st) != 0)
        return PT_CLI_ERROR;
    pt_store_close(st);
    pt_server_config_init(&cfg, datadir);

    if (listen != NULL && pt_config_parse_listen(listen, cfg.host, sizeof cfg.host, &cfg.port))
        return pt_cli_error("invalid --listen '%s' (HOST:PORT, for example 127.0.0.1:8080)",
                            listen);
    if (listen_tls != NULL &&
        pt_config_parse_listen(listen_tls, cfg.tls_host, sizeof cfg.tls_host, &cfg.tls_port))
        return pt_cli_error("invalid --listen-tls '%s' (HOST:PORT, for example 0.0.0.0:8443)",
                            listen_tls);
    if (listen_tls != NULL && listen == NULL)
        cfg.port = -1; /* --listen-tls alone: no cleartext listener */
    if (admin != NULL && admin_tls != NULL)
        return pt_cli_error("give --admin-listen or --admin-listen-tls, not both");
    if (admin_tls != NULL) {
        if (pt_config_parse_listen(admin_tls, cfg.admin_host, sizeof cfg.admin_host,
                                   &cfg.admin_port))
            return pt_cli_error("invalid --admin-listen-tls '%s' (HOST:PORT, for example "
                                "127.0.0.1:8444)",
                                admin_tls);
        cfg.admin_tls = 1;
    }
    if ((listen_tls != NULL || admin_tls != NULL) && (cert == NULL || key == NULL))
        return pt_cli_error("--listen-tls and --admin-listen-tls need --tls-cert FILE and "
                            "--tls-key FILE");
    if ((cert != NULL || key != NULL) && listen_tls == NULL && admin_tls == NULL)
        return pt_cli_error("--tls-cert and --tls-key need --listen-tls or --admin-listen-tls");
    if (admin != NULL && strcmp(admin, "off") == 0)
        cfg.admin_port = -1;
    else if (admin != NULL &&
             pt_config_parse_listen(admin, cfg.admin_host, sizeof cfg.admin_host, &cfg.admin_port))
        return pt_cli_error("invalid --admin-listen '%s' (HOST:PORT, for example 127.0.0.1:8081, "
                            "or off)",
                            admin);
    if (idle != NULL) {
        int64_t secs;
        if (pt_config_parse_duration(idle, &secs) != 0 || secs < 1 || secs > 30 * 86400)
            return pt_cli_error("invalid --session-idle '%s' (a duration such as 30m, at most 30d)",
                                idle);
        cfg.session_idle = secs;
    }
    if (workers != NULL) {
        if (pt_cli_parse_long(workers, 1, 256, &n) != 0)
            return pt_cli_error("invalid --workers '%s' (1 to 256)", workers);
        cfg.workers = (int)n;
    }
    if (threads != NULL) {
        /* The worker may add up to 3 threads per configured one to replace stuck ones. */
        if (pt_cli_parse_long(threads, 1, 16, &n) != 0)
            return pt_cli_error("invalid --threads '%s' (1 to 16)", threads);
        cfg.threads = (int)n;
    }
    if (max_threads != NULL) {
        /* Runner threads for handlers that wait (server/worker_pool.c, the waiting lane). */
        if (pt_cli_parse_long(max_threads, 1, 4096, &n) != 0)
            return pt_cli_error("invalid --max-threads '%s' (1 to 4096)", max_threads);
        cfg.max_threads = (int)n;
    }
    if (timeout != NULL) {
        /* Seconds, fractions allowed ("0.5"), or a duration with a unit ("2m"). */
        char *end;
        double secs = strtod(timeout, &end);
        int64_t whole;
        if (*end != '\0' || end == timeout) {
            if (pt_config_parse_duration(timeout, &whole) != 0 || whole < 0)
                return pt_cli_error("invalid --timeout '%s' (seconds, for example 30)", timeout);
            secs = (double)whole;
        }
        if (!isfinite(secs) || secs <= 0 || secs > 86400)
            return pt_cli_error("invalid --timeout '%s' (more than 0, at most 86400 seconds)",
                                timeout);
        cfg.timeout = secs;
    }
    if (memory != NULL &&
        (pt_config_parse_mib(memory, &cfg.worker_memory) != 0 || cfg.worker_memory == 0))
        return pt_cli_error("invalid --worker-memory '%s' (MiB, for example 512)", memory);
    if (body != NULL && (pt_config_parse_mib(body, &cfg.max_body) != 0 || cfg.max_body == 0))
        return pt_cli_error("invalid --max-body '%s' (MiB, for example 10)", body);
    if (csize != NULL &&
        (pt_config_parse_mib(csize, &cfg.cache_size) != 0 || cfg.cache_size < PT_CACHE_SIZE_MIN ||
         cfg.cache_size > ((size_t)64 << 30)))
        return pt_cli_error("invalid --cache-size '%s' (MiB, 1 to 65536, for example 64)", csize);
    if (attempts != NULL) {
        if (pt_cli_parse_long(attempts, 1, 100, &n) != 0)
            return pt_cli_error("invalid --webhook-attempts '%s' (1 to 100)", attempts);
        cfg.webhook_attempts = (int)n;
    }
    if (backoff != NULL) {
        char *end;
        double secs = strtod(backoff, &end);
        if (*end != '\0' || end == backoff || !isfinite(secs) || secs < 0.01 || secs > 3600)
            return pt_cli_error("invalid --webhook-backoff '%s' (seconds, 0.01 to 3600)", backoff);
        cfg.webhook_backoff = secs;
    }
    if (header != NULL) {
        if (pt_cli_parse_long(header, 1, 256, &n) != 0)
            return pt_cli_error("invalid --max-header '%s' (KiB, 1 to 256)", header);
        cfg.max_header = (size_t)n << 10;
    }
    if (log_age != NULL) {
        int64_t secs;
        if (pt_config_parse_duration(log_age, &secs) != 0 || secs < 60)
            return pt_cli_error("invalid --log-max-age '%s' (a duration of at least 60s, for "
                                "example 7d)",
                                log_age);
        cfg.log_max_age = secs;
    }
    if (log_rows != NULL) {
        if (pt_cli_parse_long(log_rows, 1, 1000000000L, &n) != 0)
            return pt_cli_error("invalid --log-max-rows '%s' (1 to 1000000000)", log_rows);
        cfg.log_max_rows = n;
    }
    if (log_size != NULL) {
        size_t bytes;
        if (pt_config_parse_mib(log_size, &bytes) != 0 || bytes < (size_t)PT_LOG_MAX_SIZE_MIN ||
            bytes > ((size_t)1 << 40))
            return pt_cli_error("invalid --log-max-size '%s' (1MiB to 1TiB, for example 256MiB; "
                                "a plain number is MiB)",
                                log_size);
        cfg.log_max_size = (long long)bytes;
    }
    /* The certificate is checked before anything listens: a bad file stops serve here, with
     * one line naming it. The master keeps the pair (server/tls.h). */
    if (cert != NULL) {
        char tls_err[512];
        if (pt_tls_load(cert, key, &cfg.tls, tls_err, sizeof tls_err) != 0)
            return pt_cli_error("%s", tls_err);
    }
    /* The request log's file is set up once here, before the workers open it together. */
    pt_store_reqlog *log = NULL;
    char err[512];
    if (pt_store_reqlog_open(datadir, 0, &log, err, sizeof(err)) != 0)
        fprintf(stderr, "warning: the request log is off: %s\n", err);
    pt_store_reqlog_close(log);
    /* Held shared for the server's life (its workers inherit it), so that `store migrate`
     * refuses to move the store from under it; any other failure is left to the server's
     * own checks of the data dir. */
    int lock = pt_store_lock(datadir, 0, err, sizeof err);
    if (lock == PT_EUNAVAIL) {
        pt_tls_free(cfg.tls);
        return pt_cli_error("a store migration (portico store migrate) is running on data dir "
                            "%s: start the server when it has finished",
                            datadir);
    }
    rc = pt_server_run(&cfg);
    if (lock >= 0)
        close(lock);
    pt_tls_free(cfg.tls);
    return rc;
}
