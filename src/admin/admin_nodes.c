/* admin_nodes.c - GET /nodes: the nodes serving this install, from their heartbeats in the
 * store (store_nodes.h), live ones first, stale ones marked. */
#include <string.h>
#include <time.h>

#include "admin/admin.h"
#include "core/err.h"
#include "store/store_nodes.h"

/* The space-separated addresses as an array; "admin=URL" becomes the admin listener's. New
 * reference (NULL when out of memory). */
static json_t *
addresses_json(const char *addresses, json_t **admin)
{
    json_t *arr = json_array();
    const char *p = addresses;

    *admin = json_null();
    while (arr != NULL && *p != '\0') {
        size_t n = strcspn(p, " ");
        if (n > 6 && strncmp(p, "admin=", 6) == 0) {
            json_decref(*admin);
            *admin = json_stringn(p + 6, n - 6);
        } else if (n > 0) {
            json_array_append_new(arr, json_stringn(p, n));
        }
        p += n;
        p += strspn(p, " ");
    }
    return arr;
}

static int
list(pt_admin_call *c, pt_admin_reply *r)
{
    pt_node *nodes = NULL;
    size_t n = 0;
    int64_t now = (int64_t)time(NULL);
    int rc = pt_store_node_list(c->store, &nodes, &n);

    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        const pt_node *nd = &nodes[i];
        json_t *admin = NULL, *addrs = addresses_json(nd->addresses, &admin);
        int64_t age = now > nd->last_seen ? now - nd->last_seen : 0;
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:o*, s:o*, s:s, s:I, s:I, s:I, s:I, s:b}", "id", nd->id,
                           "host", nd->host, "addresses", addrs, "admin", admin, "version",
                           nd->version, "pid", (json_int_t)nd->pid, "started",
                           (json_int_t)nd->started, "last_seen", (json_int_t)nd->last_seen, "age",
                           (json_int_t)age, "live", age <= PT_NODE_STALE_S));
    }
    pt_store_nodes_free(nodes, n);
    r->body = json_pack("{s:o*, s:s, s:i}", "nodes", arr, "driver", pt_store_engine(c->store),
                        "stale_after", PT_NODE_STALE_S);
    return r->body != NULL ? 0 : pt_admin_fail(r, 500, "internal", NULL, "out of memory");
}

const pt_admin_route pt_admin_nodes_routes[] = {
    {"GET", "/nodes", PT_ROLE_VIEWER, list,
     "The nodes serving this install (heartbeats): addresses, version, started, last seen, "
     "live or stale"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};
