/* worker_admin.c - the admin listener inside a worker: its own h2o host on the shared
 * context, whose one handler turns every request into an admin job. The job runs
 * pt_admin_handle (admin/admin.h) on a pool thread without the GIL, under the same monitor
 * and timeout as a handler, and is answered like any job (worker_send.c).
 *
 * The public listener's hosts never include this one: a request reaches the admin API only
 * through the admin socket, whatever its Host header says. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/admin_logs.h"
#include "core/err.h"
#include "core/log.h"
#include "core/version.h"
#include "server/http_errors.h"
#include "server/console.h"
#include "server/http_framing.h"
#include "server/metrics.h"
#include "server/reqlog_sse.h"
#include "server/worker_int.h"

static pt_admin_env env;
/* The public listener's base URL, for the console ($PORTICO_URL, else https://HOST:PORT of
 * --listen-tls, else http://HOST:PORT). */
static char public_url[300];

/* pt_admin_env.traffic: the server's counters (shared memory, any thread). */
static void
traffic(pt_admin_traffic *out)
{
    pt_metrics_total t;
    pt_metrics_sum(pt_worker_self.cfg->metrics, &t);
    out->requests = t.requests;
    memcpy(out->by_class, t.by_class, sizeof out->by_class);
    out->bytes = t.bytes;
    out->seconds = t.seconds;
}

/* The job's run function, on a pool thread. */
static void
run_admin(worker *w, job *j)
{
    (void)w;
    pt_admin_handle(&env, &j->req, &j->resp);
}

static int
on_admin_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    worker *w = &pt_worker_self;
    pt_route_match m;
    pt_caller nobody = {0};
    const char *why;
    int refused = pt_framing_rejected(req, &why); /* the same strict framing as the public side */
    if (refused != 0) {
        pt_send_error(w, req, refused, why);
        return 0;
    }
    if (pt_console_serve(req, public_url))
        return 0;
    memset(&m, 0, sizeof(m));
    job *j = pt_job_new(req, NULL, NULL, &m, &nobody);
    if (j == NULL) {
        pt_send_error(w, req, 503, "out of memory");
        return 0;
    }
    j->run = run_admin;
    j->label = "admin";
    j->start = now_sec();
    pt_pool_submit(w, j);
    return 0;
}

static void
on_admin_accept(h2o_socket_t *listener, const char *err)
{
    worker *w = &pt_worker_self;
    if (err == NULL)
        pt_worker_accept(w, listener, &w->admin_accept_ctx, 16);
}

void
pt_wadmin_setup(worker *w)
{
    const pt_server_config *cfg = w->cfg;
    if (cfg->admin_fd < 0)
        return;
    env = (pt_admin_env){.datadir = cfg->datadir,
                         .version = PT_VERSION,
                         .started = cfg->started,
                         .workers = cfg->workers,
                         .session_idle = cfg->session_idle,
                         .secure = cfg->admin_tls, /* cookies get Secure over TLS */
                         .traffic = traffic};
    const char *base = getenv("PORTICO_URL");
    if (base != NULL && *base != '\0')
        snprintf(public_url, sizeof public_url, "%s", base);
    else if (cfg->tls_port >= 0) /* partners are shown the TLS address when there is one */
        snprintf(public_url, sizeof public_url,
                 strchr(cfg->tls_host, ':') ? "https://[%s]:%d" : "https://%s:%d", cfg->tls_host,
                 cfg->tls_port);
    else
        snprintf(public_url, sizeof public_url,
                 strchr(cfg->host, ':') ? "http://[%s]:%d" : "http://%s:%d", cfg->host, cfg->port);
    h2o_config_init(&w->admin_conf);
    w->admin_conf.server_name = h2o_iovec_init(H2O_STRLIT("portico"));
    w->admin_conf.max_request_entity_size = w->globalconf.max_request_entity_size;
    h2o_hostconf_t *host =
        h2o_config_register_host(&w->admin_conf, h2o_iovec_init(H2O_STRLIT("admin")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_admin_req;
    pt_http_errors_install(pathconf, pt_send_log_h2o_error);
    pt_http_errors_install(&host->fallback_path, pt_send_log_h2o_error);
    w->admin_accept_ctx.ctx = &w->ctx;
    w->admin_accept_ctx.hosts = w->admin_conf.hosts;
    w->admin_accept_ctx.ssl_ctx = cfg->admin_tls ? pt_wtls_ctx() : NULL; /* worker_tls.c */
    w->admin_listener = h2o_evloop_socket_create(w->loop, cfg->admin_fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(w->admin_listener, on_admin_accept);
}

void
pt_wadmin_stop(worker *w)
{
    if (w->admin_listener != NULL) {
        h2o_socket_read_stop(w->admin_listener);
        h2o_socket_close(w->admin_listener);
        w->admin_listener = NULL;
    }
}

int
pt_wadmin_stream(worker *w, job *j)
{
    pt_response *resp = &j->resp;
    if (j->run == NULL || j->hreq == NULL || resp->status != 200 || resp->content_type == NULL ||
        strcmp(resp->content_type, PT_ADMIN_EVENT_STREAM) != 0)
        return 0;
    json_t *query = json_loadb(resp->body.data, resp->body.len, 0, NULL);
    pt_admin_reply refused = {0};
    pt_reqlog_filter f;
    int rc = query != NULL && json_is_object(query)
                 ? pt_admin_logs_filter(query, &f, &refused) /* checked once already */
                 : PT_ENOMEM;
    if (rc == 0)
        rc = pt_reqlog_sse_start(j->hreq, w->cfg->datadir, &f); /* copies f's strings */
    json_decref(refused.body);
    json_decref(query);
    if (rc == 0)
        return 1;
    pt_response_error(resp, rc == PT_EINVAL ? 400 : 500,
                      rc == PT_EINVAL ? "bad Last-Event-ID" : "cannot start the live tail",
                      j->req.id);
    return 0;
}
