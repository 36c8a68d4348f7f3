/* admin_routes.c - the list of the admin API's route tables (one per resource file), and the
 * OpenAPI document generated from them. A new resource file adds its table here. */
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/admin_logs.h"
#include "admin/admin_stats.h"
#include "admin/admin_tests.h"

const pt_admin_route *const pt_admin_tables[] = {
    pt_admin_session_routes,   pt_admin_health_routes,      pt_admin_users_routes,
    pt_admin_tokens_routes,    pt_admin_audit_routes,       pt_admin_scripts_routes,
    pt_admin_endpoints_routes, pt_admin_auth_routes,        pt_admin_secrets_routes,
    pt_admin_webhooks_routes,  pt_admin_connections_routes, pt_admin_logs_routes,
    pt_admin_tests_routes,     pt_admin_stats_routes,       pt_admin_apply_routes,
    pt_admin_runs_routes,      pt_admin_nodes_routes,       NULL,
};

/* The error codes a caller can get, by status (docs/ADMIN.md lists them). */
static json_t *
responses(const pt_admin_route *rt)
{
    json_t *res = json_object();
    json_object_set_new(res, "200", json_pack("{s:s}", "description", "success (JSON)"));
    if (strcmp(rt->method, "POST") == 0)
        json_object_set_new(res, "201", json_pack("{s:s}", "description", "created"));
    json_object_set_new(res, "400", json_pack("{s:s}", "description", "bad_request"));
    if (rt->min_role != PT_ROLE_NONE) {
        json_object_set_new(res, "401", json_pack("{s:s}", "description", "unauthorized"));
        json_object_set_new(res, "403", json_pack("{s:s}", "description", "forbidden or csrf"));
    }
    if (strchr(rt->pattern, '{') != NULL)
        json_object_set_new(res, "404", json_pack("{s:s}", "description", "not_found"));
    if (strcmp(rt->method, "GET") != 0) {
        json_object_set_new(res, "409", json_pack("{s:s}", "description", "conflict"));
        json_object_set_new(res, "413", json_pack("{s:s}", "description", "too_large"));
    }
    return res;
}

/* The path parameters of a pattern as OpenAPI parameter objects. */
static json_t *
parameters(const char *pattern)
{
    json_t *arr = json_array();
    for (const char *p = strchr(pattern, '{'); p != NULL; p = strchr(p + 1, '{')) {
        const char *e = strchr(p, '}');
        if (e == NULL)
            break;
        json_array_append_new(arr, json_pack("{s:s%, s:s, s:b, s:{s:s}}", "name", p + 1,
                                             (size_t)(e - p - 1), "in", "path", "required", 1,
                                             "schema", "type", "string"));
    }
    return arr;
}

json_t *
pt_admin_openapi(const char *version)
{
    json_t *paths = json_object();
    json_t *doc = json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:{s:{s:{s:s, s:s}, s:{s:s, s:s, s:s}}}}", "openapi",
        "3.0.3", "info", "title", "Portico admin API", "version", version, "description",
        "Every operation of a Portico install; see docs/ADMIN.md.", "servers", "url",
        PT_ADMIN_PREFIX, "components", "securitySchemes", "bearer", "type", "http", "scheme",
        "bearer", "session", "type", "apiKey", "in", "cookie", "name", PT_ADMIN_COOKIE);
    if (doc == NULL || paths == NULL) {
        json_decref(doc);
        json_decref(paths);
        return NULL;
    }
    for (size_t t = 0; pt_admin_tables[t] != NULL; t++) {
        for (const pt_admin_route *rt = pt_admin_tables[t]; rt->method != NULL; rt++) {
            char method[8];
            size_t i;
            for (i = 0; rt->method[i] != '\0' && i + 1 < sizeof method; i++)
                method[i] = (char)(rt->method[i] | 0x20);
            method[i] = '\0';
            json_t *item = json_object_get(paths, rt->pattern);
            if (item == NULL) {
                item = json_object();
                json_object_set_new(paths, rt->pattern, item);
            }
            json_t *op = json_pack("{s:s, s:o, s:o, s:s}", "summary", rt->summary, "parameters",
                                   parameters(rt->pattern), "responses", responses(rt),
                                   "x-min-role", pt_admin_role_name(rt->min_role));
            if (op != NULL && rt->min_role != PT_ROLE_NONE)
                json_object_set_new(op, "security",
                                    json_pack("[{s:[]}, {s:[]}]", "bearer", "session"));
            if (op != NULL)
                json_object_set_new(item, method, op);
        }
    }
    json_object_set_new(doc, "paths", paths);
    return doc;
}
