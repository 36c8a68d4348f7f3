/* store_nodes.h - what the nodes of one install share beside the metadata: the store's change
 * version (how a change made through one node reaches the others) and each node's heartbeat
 * (`portico nodes`). Issue 11, section 3; docs/SCALING.md. */
#ifndef PT_STORE_NODES_H
#define PT_STORE_NODES_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The channel a PostgreSQL store NOTIFYs on every commit that bumps the change counter; the
 * payload is the store's schema (current_schema()), so that installs kept in other schemas of
 * one database can tell their changes apart. */
#define PT_STORE_CHANGES_CHANNEL "portico_changes"

/* The store's change version: 0 with *version, or a pt_err (reason in pt_store_errmsg). It
 * moves with every committed change on PostgreSQL; on SQLite it stays 0 (the change counter
 * file is the only signal there). */
int pt_store_change_version(pt_store *st, int64_t *version);

/* A serving node writes its heartbeat every PT_NODE_BEAT_S seconds; one not heard of for
 * PT_NODE_STALE_S is listed as stale (stopped, cut off from the store, or dead). */
#define PT_NODE_BEAT_S 5
#define PT_NODE_STALE_S 15

typedef struct pt_node {
    char *id;        /* stable per data dir (DATA/node.id) */
    char *host;      /* the machine's host name */
    char *addresses; /* what it listens on, space-separated URLs */
    char *version;   /* Portico's version */
    int64_t pid;     /* the master's */
    int64_t started; /* unix seconds */
    int64_t last_seen;
} pt_node;

/* Writes n's heartbeat (all fields borrowed; last_seen as given), inserting the row or
 * replacing it, and deletes the rows of nodes not seen for a day. Does not bump the change
 * counter. Returns 0 or a pt_err (reason in pt_store_errmsg). */
int pt_store_node_beat(pt_store *st, const pt_node *n);
/* Every node's row, most recently seen first. Caller frees with pt_store_nodes_free. */
int pt_store_node_list(pt_store *st, pt_node **out, size_t *n);
void pt_store_nodes_free(pt_node *list, size_t n);

/* ---- Listening for changes (store_listen.c; PostgreSQL only) ------------------------------ */

typedef struct pt_store_listener pt_store_listener;

/* Connects to the PostgreSQL database of dsn (borrowed; never copied into a message) on a
 * connection of its own, in blocking mode with a connect timeout of 5 s unless dsn sets one,
 * and LISTENs on PT_STORE_CHANGES_CHANNEL. Returns 0 with *out (caller frees with
 * pt_store_listener_close), or PT_EUNAVAIL with libpq's reason in err. */
int pt_store_listen(const char *dsn, pt_store_listener **out, char *err, size_t errsz);
/* The socket to poll for input (borrowed, valid until close). */
int pt_store_listener_fd(const pt_store_listener *l);
/* Reads what arrived without blocking: returns how many notifications were about this
 * store's schema (0 or more), or PT_EUNAVAIL with the reason in err when the connection is
 * gone (close it and listen again). */
int pt_store_listener_drain(pt_store_listener *l, char *err, size_t errsz);
void pt_store_listener_close(pt_store_listener *l); /* NULL is a no-op */

#endif
