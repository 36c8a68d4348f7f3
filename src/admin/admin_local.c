/* admin_local.c - the in-process admin API dispatcher: the same route tables and handlers as
 * over HTTP, for the CLI on a data dir. There is no authentication (whoever can write the data
 * dir owns the install), so the caller is an admin; changes are audited like API ones. */
#include "admin/admin_local.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_int.h"
#include "core/version.h"

int
pt_admin_call_as(const pt_admin_call *as, const char *method, const char *path, json_t *query,
                 json_t *body, const char *cmd, int audit, pt_admin_reply *r)
{
    pt_admin_call c;
    const pt_admin_route *route;
    int rc = 0;

    memset(&c, 0, sizeof c);
    c.store = as->store;
    c.datadir = as->datadir;
    c.actor = as->actor;
    c.user = as->user;
    c.role = as->role;
    c.method = method;
    c.path = path;
    c.env = as->env;
    c.remote_addr = as->remote_addr != NULL ? as->remote_addr : "";
    c.query = query != NULL ? json_incref(query) : json_object();
    c.body = json_incref(body);
    if (c.query == NULL) {
        rc = pt_admin_fail(r, 500, "internal", NULL, "out of memory");
        goto done;
    }
    route = pt_admin_find_route(method, path, strlen(path), &c, r);
    if (route == NULL) {
        rc = -r->status;
        goto done;
    }
    if (c.role < route->min_role) {
        rc = pt_admin_fail(r, 403, "forbidden", NULL, "%s %s needs the %s role", method,
                           route->pattern, pt_admin_role_name(route->min_role));
        goto done;
    }
    rc = route->fn(&c, r);
    if (rc == 0 && r->status < 400 && audit && c.audit != NULL)
        pt_admin_write_audit(c.store, &c, route, cmd);
    if (rc == 0 && r->status >= 400)
        rc = -r->status;
done:
    for (int i = 0; i < c.nparams; i++)
        free((char *)c.params[i]);
    json_decref(c.query);
    json_decref(c.body);
    json_decref(c.audit);
    return rc;
}

int
pt_admin_local_call(pt_store *st, const char *datadir, const char *actor, const char *cmd,
                    const char *method, const char *path, json_t *query, json_t *body,
                    pt_admin_reply *r)
{
    pt_admin_env env = {.datadir = datadir, .version = PT_VERSION, .started = (int64_t)time(NULL)};
    pt_admin_call as;

    memset(&as, 0, sizeof as);
    as.store = st;
    as.datadir = datadir;
    as.actor = actor;
    as.user = actor;
    as.role = PT_ROLE_ADMIN;
    as.env = &env;
    as.remote_addr = "";
    return pt_admin_call_as(&as, method, path, query, body, cmd, 1, r);
}
