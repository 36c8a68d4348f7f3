/* nodesync.h - a node's link with its install's store while it serves: a small process, the
 * master's child, that hears of changes made through other nodes (LISTEN/NOTIFY, and a version
 * check every second as the fallback) and bumps the node's change counter, writes the node's
 * heartbeat, and keeps the store's reachability in shared memory for /_portico/health.
 * Issue 11 §3. */
#ifndef PT_NODESYNC_H
#define PT_NODESYNC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct pt_nodesync pt_nodesync;

/* How often the sync process reads the store's change version (the fallback of NOTIFY, and the
 * reachability probe), in seconds; the heartbeat's period is PT_NODE_BEAT_S (store_nodes.h). */
#define PT_NODESYNC_CHECK_S 1

/* The store as the sync process last saw it; read by any process (health). */
typedef struct pt_nodesync_status {
    int checked;        /* 1 once the store was tried at least once */
    int reachable;      /* the last check reached the store */
    int64_t last_ok;    /* unix seconds of the last successful check, 0: none */
    int64_t last_error; /* unix seconds of the last failed check, 0: none */
} pt_nodesync_status;

/* Maps the shared status (before anything is forked: the workers and the sync process inherit
 * it). Returns NULL when it cannot be mapped (errno); lives as long as the process. */
pt_nodesync *pt_nodesync_create(void);
/* Forks the sync process for data dir datadir (borrowed, must outlive the server),
 * announcing `addresses` (copied, at most 1023 bytes: what the node listens on,
 * space-separated URLs, the admin listener's as "admin=URL") and its start time. Master only
 * (single-threaded), once the server serves. Returns 0 or a pt_err (logged; pt_nodesync_tick
 * retries). */
int pt_nodesync_start(pt_nodesync *ns, const char *datadir, const char *addresses, int64_t started);
/* For the master's reaper: 1 when pid was the sync process (then started again by
 * pt_nodesync_tick 1 s later, logged with its status), 0 for any other pid. */
int pt_nodesync_reaped(pt_nodesync *ns, pid_t pid, int status);
/* Starts the sync process again when it is due. Called from the master's loop. */
void pt_nodesync_tick(pt_nodesync *ns);
/* Stops the sync process (SIGTERM) and waits for it. NULL is a no-op. */
void pt_nodesync_stop(pt_nodesync *ns);
/* Copies the shared status into out (all zero when ns is NULL). Any process, any thread. */
void pt_nodesync_status_get(const pt_nodesync *ns, pt_nodesync_status *out);

/* The node id of datadir (DATA/node.id, created with a random id on first use) into id (at
 * least 33 bytes). Returns 0 or a pt_err. */
int pt_nodesync_node_id(const char *datadir, char *id, size_t idsz);

#endif
