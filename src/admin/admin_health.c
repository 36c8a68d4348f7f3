/* admin_health.c - GET /health (version, uptime, workers, what is published, traffic) and
 * GET /openapi.json (the admin API described from its route tables). */
#include <string.h>
#include <time.h>

#include "admin/admin.h"
#include "core/err.h"

static int
health(pt_admin_call *c, pt_admin_reply *r)
{
    pt_script *scripts = NULL;
    pt_endpoint *eps = NULL;
    size_t nscripts = 0, neps = 0;
    int rc = pt_store_endpoint_list(c->store, &eps, &neps);
    if (rc == 0)
        rc = pt_store_script_list(c->store, &scripts, &nscripts);
    pt_store_endpoints_free(eps, neps);
    pt_store_scripts_free(scripts, nscripts);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    int64_t now = (int64_t)time(NULL);
    r->body = json_pack("{s:s, s:s, s:I, s:I, s:i, s:I, s:I}", "status", "ok", "version",
                        c->env->version, "started", (json_int_t)c->env->started, "uptime",
                        (json_int_t)(now - c->env->started), "workers", c->env->workers,
                        "endpoints", (json_int_t)neps, "scripts", (json_int_t)nscripts);
    if (r->body != NULL && c->env->traffic != NULL) {
        pt_admin_traffic t;
        memset(&t, 0, sizeof t);
        c->env->traffic(&t);
        json_t *classes = json_object();
        static const char *const names[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
        for (int i = 0; i < 6; i++)
            json_object_set_new(classes, names[i], json_integer((json_int_t)t.by_class[i]));
        json_object_set_new(
            r->body, "traffic",
            json_pack("{s:I, s:o, s:I, s:f}", "requests", (json_int_t)t.requests, "by_status",
                      classes, "bytes", (json_int_t)t.bytes, "mean_ms",
                      t.requests > 0 ? t.seconds * 1000.0 / (double)t.requests : 0.0));
    }
    return 0;
}

static int
openapi(pt_admin_call *c, pt_admin_reply *r)
{
    r->body = pt_admin_openapi(c->env->version);
    return r->body != NULL ? 0 : pt_admin_fail(r, 500, "internal", NULL, "out of memory");
}

const pt_admin_route pt_admin_health_routes[] = {
    {"GET", "/health", PT_ROLE_VIEWER, health,
     "Version, uptime, workers, endpoint and script counts, and a traffic summary"},
    {"GET", "/openapi.json", PT_ROLE_NONE, openapi, "This document"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};
