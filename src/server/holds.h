/* holds.h - custody of slow requests' connections between a worker and the master, and the
 * few other words they exchange on the same socket: a worker is ready, or could not start
 * (and why); the master makes a spare worker an active one.
 *
 * A worker that has been running a handler for a while lends the master a duplicate of that
 * request's connection (PT_HOLD, the fd travels with SCM_RIGHTS) and takes it back just
 * before it writes the response (PT_RELEASE). If the worker dies in between, even by SIGKILL,
 * the master still holds the connection and answers 502 on it. Fast requests never pay for
 * this: only handlers still running after a monitor tick are lent out. */
#ifndef PT_HOLDS_H
#define PT_HOLDS_H

#include <stddef.h>
#include <sys/types.h>

#include "server/reqid.h"

/* ---- Both sides: one message and a descriptor on a SOCK_SEQPACKET socket ------------------- */

/* Sends the n bytes at msg (borrowed) with descriptor fd (-1: none; the receiver gets a
 * duplicate). Returns 0, or -1 when the message could not go whole (the other end closed...).
 * Async-signal-safe. */
int pt_holds_sendmsg(int sock, const void *msg, size_t n, int fd);
/* Reads one message into msg (n bytes at most) and the descriptor that came with it into *fd
 * (-1: none; the caller closes it). flags: recvmsg's (MSG_DONTWAIT, or 0 to wait). Returns
 * the message's size (> 0), 0 when none is pending (MSG_DONTWAIT), -1 once the other end is
 * closed. */
ssize_t pt_holds_recvmsg(int sock, void *msg, size_t n, int *fd, int flags);

/* ---- Worker side (async-signal-safe) --------------------------------------------------- */

/* Lends connection `fd` (the worker's fd number, sent along) for request `id`. 0 or -1. */
int pt_holds_lend(int ctl, int fd, const char *id);
/* Takes connection `fd` back: the master closes its duplicate. 0 or -1. */
int pt_holds_take_back(int ctl, int fd);
/* The worker is ready to serve (its interpreter, store and threads are up). 0 or -1. */
int pt_holds_ready(int ctl);
/* The worker takes no more connections and is going away (it finishes what it holds first,
 * or is crashing): the master hands its place to a spare now, not at its exit. 0 or -1.
 * Async-signal-safe. */
int pt_holds_stopping(int ctl);
/* The worker cannot start: `reason` (borrowed, cut at PT_HOLDS_REASON_MAX - 1 bytes) is what
 * the master prints. 0 or -1. */
int pt_holds_failed(int ctl, const char *reason);
/* The worker on the other end of ctl runs as process `pid`: sent by the template's
 * intermediate child (template.h) for a worker the master did not fork itself. 0 or -1. */
int pt_holds_pid(int ctl, int pid);
/* Reads a promotion the master sent (non-blocking): returns the worker number to serve as
 * (>= 1), 0 when none is pending, -1 once the master's end is closed. */
int pt_holds_read_promote(int ctl);

/* ---- Master side ----------------------------------------------------------------------- */

typedef struct pt_holds pt_holds;

#define PT_HOLDS_REASON_MAX 256

/* What pt_holds_receive heard besides lends: the worker's pid (pt_holds_pid, 0 until heard),
 * it said it is ready, that it is going away, or that it cannot start and why. */
typedef struct pt_holds_status {
    int pid;
    int ready;
    int stopping;
    int failed;
    char reason[PT_HOLDS_REASON_MAX];
} pt_holds_status;

/* A table of connections lent by one worker. NULL on allocation failure; free with
 * pt_holds_free (which closes every connection still held, without answering). */
pt_holds *pt_holds_new(void);
void pt_holds_free(pt_holds *h);
/* Reads every pending message from ctl (non-blocking), noting readiness and failure in *st
 * (only ever set, never cleared; st may be NULL). Returns 0 while the worker's end is open, -1
 * once it is closed (the worker exited). */
int pt_holds_receive(pt_holds *h, int ctl, pt_holds_status *st);
/* Tells a spare worker to serve as worker `index` (>= 1). 0 or -1. */
int pt_holds_promote(int ctl, int index);
/* Answers 502 {"error": why, "request_id": ...} on every held connection and closes them.
 * Returns how many were answered. */
size_t pt_holds_answer_all(pt_holds *h, const char *why);

#endif
