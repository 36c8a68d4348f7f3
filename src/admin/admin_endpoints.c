/* admin_endpoints.c - /endpoints: list, show, add, change (PATCH) and remove published
 * endpoints. Paths, methods and auth modes are checked here with the CLI's rules before the
 * store is touched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/admin_epset.h"
#include "core/err.h"
#include "core/http.h"

static json_t *
endpoint_json(const pt_endpoint *ep)
{
    char methods[128];
    pt_http_format_methods(ep->methods, methods, sizeof methods);
    json_t *arr = json_array();
    for (char *tok = strtok(methods, ", "); arr != NULL && tok != NULL; tok = strtok(NULL, ", "))
        json_array_append_new(arr, json_string(tok));
    return json_pack("{s:s, s:s, s:o*, s:s, s:s, s:I, s:o*}", "name", ep->name, "path", ep->path,
                     "methods", arr, "script", ep->script, "auth", ep->auth, "created",
                     (json_int_t)ep->created, "settings", pt_admin_epset_json(&ep->settings));
}

/* Reads the body's path, script, auth and methods into ep (strings borrowed from the body),
 * over what ep holds already (required: every field must be given). 0, or a refusal in r. */
static int
read_fields(pt_admin_call *c, pt_admin_reply *r, pt_endpoint *ep, int required)
{
    const char *path, *script, *auth;
    char err[256];

    if (!json_is_object(c->body))
        return pt_admin_fail(r, 400, "bad_request", NULL, "the body must be a JSON object");
    path = pt_admin_body_str(c, r, "path", required);
    if (r->status != 0)
        return -r->status;
    script = pt_admin_body_str(c, r, "script", required);
    if (r->status != 0)
        return -r->status;
    auth = pt_admin_body_str(c, r, "auth", required);
    if (r->status != 0)
        return -r->status;
    if (path != NULL && pt_http_check_path(path, err, sizeof err) != 0)
        return pt_admin_fail(r, 400, "bad_request", "path", "%s", err);
    if (auth != NULL && strcmp(auth, "public") != 0 && strcmp(auth, "jwt") != 0 &&
        strcmp(auth, "apikey") != 0)
        return pt_admin_fail(r, 400, "bad_request", "auth", "auth must be public, jwt or apikey");
    json_t *m = json_object_get(c->body, "methods");
    if (m != NULL) {
        unsigned mask = 0, bit;
        size_t i;
        json_t *v;
        if (!json_is_array(m) || json_array_size(m) == 0)
            return pt_admin_fail(r, 400, "bad_request", "methods",
                                 "methods is a list such as [\"GET\", \"POST\"]");
        json_array_foreach(m, i, v)
        {
            if (!json_is_string(v) || pt_http_parse_methods(json_string_value(v), &bit) != 0)
                return pt_admin_fail(r, 400, "bad_request", "methods",
                                     "unknown method (GET, POST, PUT, PATCH, DELETE, HEAD, "
                                     "OPTIONS)");
            mask |= bit;
        }
        ep->methods = mask;
    }
    if (path != NULL)
        ep->path = (char *)path;
    if (script != NULL)
        ep->script = (char *)script;
    if (auth != NULL)
        ep->auth = (char *)auth;
    return 0;
}

static int
list(pt_admin_call *c, pt_admin_reply *r)
{
    pt_endpoint *eps = NULL;
    size_t n = 0;
    int rc = pt_store_endpoint_list(c->store, &eps, &n);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        json_array_append_new(arr, endpoint_json(&eps[i]));
    pt_store_endpoints_free(eps, n);
    r->body = json_pack("{s:o*}", "endpoints", arr);
    return 0;
}

static int
show(pt_admin_call *c, pt_admin_reply *r)
{
    pt_endpoint ep;
    int rc = pt_store_endpoint_get(c->store, c->params[0], &ep);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = endpoint_json(&ep);
    pt_endpoint_clear(&ep);
    return 0;
}

/* A store error of endpoint_add, with the field it is about. */
static int
add_failed(pt_admin_call *c, pt_admin_reply *r, int rc)
{
    return pt_admin_fail_store(r, c->store, rc,
                               rc == PT_ENOTFOUND ? "script"
                               : rc == PT_EEXIST  ? "name"
                                                  : "path");
}

static json_t *
audit_of(const pt_endpoint *ep)
{
    char methods[128];
    pt_http_format_methods(ep->methods, methods, sizeof methods);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o*}", "endpoint", ep->name, "path", ep->path,
                     "script", ep->script, "auth", ep->auth, "methods", methods, "settings",
                     pt_admin_epset_json(&ep->settings));
}

static int
add(pt_admin_call *c, pt_admin_reply *r)
{
    pt_endpoint ep = {.methods = PT_M_GET};
    const char *name = pt_admin_body_str(c, r, "name", 1);
    int rc;
    if (name == NULL)
        return -r->status;
    if (!pt_store_name_valid(name))
        return pt_admin_fail(r, 400, "bad_request", "name",
                             "invalid endpoint name (letters, digits, _ . -; at most 64)");
    if ((rc = read_fields(c, r, &ep, 1)) != 0)
        return rc;
    if ((rc = pt_admin_epset_read(c, r, &ep.settings, ep.auth)) != 0) {
        pt_epset_clear(&ep.settings);
        return rc;
    }
    ep.name = (char *)name;
    rc = pt_store_endpoint_add(c->store, &ep);
    if (rc != 0) {
        pt_epset_clear(&ep.settings);
        return add_failed(c, r, rc);
    }
    r->status = 201;
    pt_endpoint now;
    if (pt_store_endpoint_get(c->store, name, &now) == 0) {
        r->body = endpoint_json(&now);
        pt_endpoint_clear(&now);
    } else {
        r->body = endpoint_json(&ep);
    }
    c->audit = audit_of(&ep);
    pt_epset_clear(&ep.settings);
    return 0;
}

/* PATCH: the fields given replace the endpoint's, in one store transaction
 * (pt_store_endpoint_set): a request meanwhile sees the old endpoint or the new one. */
static int
set(pt_admin_call *c, pt_admin_reply *r)
{
    pt_endpoint old, ep, now;
    int rc = pt_store_endpoint_get(c->store, c->params[0], &old);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    ep = old;
    /* ep's own copy of the settings: reading the body replaces parts of it. */
    if (pt_epset_copy(&ep.settings, &old.settings) != 0) {
        rc = pt_admin_fail(r, 503, "unavailable", NULL, "out of memory");
        goto done;
    }
    if ((rc = read_fields(c, r, &ep, 0)) != 0)
        goto done;
    if ((rc = pt_admin_epset_read(c, r, &ep.settings, ep.auth)) != 0)
        goto done;
    if ((rc = pt_store_endpoint_set(c->store, &ep)) != 0) {
        rc = pt_admin_fail_store(r, c->store, rc,
                                 rc == PT_ENOTFOUND ? "script"
                                 : rc == PT_EEXIST  ? "path"
                                                    : NULL);
        goto done;
    }
    if (pt_store_endpoint_get(c->store, old.name, &now) == 0) {
        r->body = endpoint_json(&now);
        c->audit = audit_of(&now);
        pt_endpoint_clear(&now);
    } else {
        r->body = endpoint_json(&ep); /* ep's strings are old's and the body's */
        c->audit = audit_of(&ep);
    }
done:
    pt_epset_clear(&ep.settings);
    pt_endpoint_clear(&old);
    return rc;
}

static int
rm(pt_admin_call *c, pt_admin_reply *r)
{
    int rc = pt_store_endpoint_rm(c->store, c->params[0]);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = json_pack("{s:s}", "removed", c->params[0]);
    c->audit = json_pack("{s:s}", "endpoint", c->params[0]);
    return 0;
}

const pt_admin_route pt_admin_endpoints_routes[] = {
    {"GET", "/endpoints", PT_ROLE_VIEWER, list, "List endpoints"},
    {"POST", "/endpoints", PT_ROLE_EDITOR, add,
     "Publish an endpoint {name, path, script, auth, methods, settings}"},
    {"GET", "/endpoints/{name}", PT_ROLE_VIEWER, show, "Show one endpoint"},
    {"PATCH", "/endpoints/{name}", PT_ROLE_EDITOR, set,
     "Change an endpoint's path, script, auth, methods or settings"},
    {"DELETE", "/endpoints/{name}", PT_ROLE_EDITOR, rm, "Unpublish an endpoint"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};
