/* holds.h - custody of slow requests' connections between a worker and the master.
 *
 * A worker that has been running a handler for a while lends the master a duplicate of that
 * request's connection (PT_HOLD, the fd travels with SCM_RIGHTS) and takes it back just
 * before it writes the response (PT_RELEASE). If the worker dies in between, even by SIGKILL,
 * the master still holds the connection and answers 502 on it. Fast requests never pay for
 * this: only handlers still running after a monitor tick are lent out. */
#ifndef PT_HOLDS_H
#define PT_HOLDS_H

#include <stddef.h>

#include "server/reqid.h"

/* ---- Worker side (async-signal-safe) --------------------------------------------------- */

/* Lends connection `fd` (the worker's fd number, sent along) for request `id`. 0 or -1. */
int pt_holds_lend(int ctl, int fd, const char *id);
/* Takes connection `fd` back: the master closes its duplicate. 0 or -1. */
int pt_holds_take_back(int ctl, int fd);

/* ---- Master side ----------------------------------------------------------------------- */

typedef struct pt_holds pt_holds;

/* A table of connections lent by one worker. NULL on allocation failure; free with
 * pt_holds_free (which closes every connection still held, without answering). */
pt_holds *pt_holds_new(void);
void pt_holds_free(pt_holds *h);
/* Reads every pending message from ctl (non-blocking). Returns 0 while the worker's end is
 * open, -1 once it is closed (the worker exited). */
int pt_holds_receive(pt_holds *h, int ctl);
/* Answers 502 {"error": why, "request_id": ...} on every held connection and closes them.
 * Returns how many were answered. */
size_t pt_holds_answer_all(pt_holds *h, const char *why);

#endif
