/* store_nodes.c - the store's change version and the nodes' heartbeats (tables store_changes
 * and nodes, schema version 7, store_schema.c), over the SQL driver. */
#include "store/store_nodes.h"

#include <stdlib.h>

#include "core/err.h"
#include "store/store_int.h"

int
pt_store_change_version(pt_store *st, int64_t *version)
{
    int rc =
        pt_store_query_int(st, "SELECT version FROM store_changes WHERE id = 1", NULL, 0, version);

    if (rc == 0)
        *version = 0; /* no row: nothing was ever bumped */
    return rc < 0 ? rc : 0;
}

/* Nodes not seen for this long are forgotten by the next heartbeat of any node. */
#define NODE_FORGET_SECONDS (24 * 3600)

int
pt_store_node_beat(pt_store *st, const pt_node *n)
{
    pt_db_stmt *s = NULL;
    int rc = pt_store_begin(st);

    if (rc != 0)
        return rc;
    rc = pt_store_prepare(st,
                          "INSERT INTO nodes(id, host, addresses, version, pid, started, "
                          "last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                          "ON CONFLICT(id) DO UPDATE SET host = excluded.host, "
                          "addresses = excluded.addresses, version = excluded.version, "
                          "pid = excluded.pid, started = excluded.started, "
                          "last_seen = excluded.last_seen",
                          &s);
    if (rc == 0) {
        pt_db_bind_text(s, 1, n->id, (size_t)-1);
        pt_db_bind_text(s, 2, n->host, (size_t)-1);
        pt_db_bind_text(s, 3, n->addresses, (size_t)-1);
        pt_db_bind_text(s, 4, n->version, (size_t)-1);
        pt_db_bind_int64(s, 5, n->pid);
        pt_db_bind_int64(s, 6, n->started);
        pt_db_bind_int64(s, 7, n->last_seen);
        rc = pt_store_run_stmt(st, s, "write the node's heartbeat"); /* finalizes s */
    }
    if (rc == 0)
        rc = pt_store_prepare(st, "DELETE FROM nodes WHERE last_seen < ?1", &s);
    if (rc == 0) {
        pt_db_bind_int64(s, 1, n->last_seen - NODE_FORGET_SECONDS);
        rc = pt_store_run_stmt(st, s, "forget old nodes"); /* finalizes s */
    }
    return pt_store_finish_quiet(st, rc);
}

static int
read_node(pt_store *st, pt_db_stmt *s, void *elem)
{
    pt_node *n = elem;

    (void)st;
    n->id = pt_store_coldup(s, 0);
    n->host = pt_store_coldup(s, 1);
    n->addresses = pt_store_coldup(s, 2);
    n->version = pt_store_coldup(s, 3);
    n->pid = pt_db_column_int64(s, 4);
    n->started = pt_db_column_int64(s, 5);
    n->last_seen = pt_db_column_int64(s, 6);
    return n->id && n->host && n->addresses && n->version ? 0 : PT_ENOMEM;
}

static void
clear_node(void *elem)
{
    pt_node *n = elem;

    free(n->id);
    free(n->host);
    free(n->addresses);
    free(n->version);
}

static const pt_store_kind node_kind = {
    .size = sizeof(pt_node), .read = read_node, .clear = clear_node, .what = "list nodes"};

int
pt_store_node_list(pt_store *st, pt_node **out, size_t *n)
{
    void *list = NULL;
    int rc = pt_store_list(st,
                           "SELECT id, host, addresses, version, pid, started, last_seen "
                           "FROM nodes ORDER BY last_seen DESC, id",
                           NULL, 0, &node_kind, &list, n);

    *out = list;
    return rc;
}

void
pt_store_nodes_free(pt_node *list, size_t n)
{
    pt_store_free_rows(list, n, &node_kind);
}
