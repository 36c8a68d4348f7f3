/* ratelease.h - a worker's rate limit lease thread: runs the leases the request path queues
 * (auth/ratelimit.h, cluster mode) against the PostgreSQL store, off the event loop. */
#ifndef PT_RATELEASE_H
#define PT_RATELEASE_H

#include <stddef.h>

#include "auth/ratelimit.h"

typedef struct pt_ratelease pt_ratelease;

/* Starts the thread and turns rl's cluster mode on in this process. The thread opens its own
 * connection to the store of datadir at its first lease (a worker whose callers have no limit
 * never connects). datadir and rl are borrowed for the life of the process; the thread is
 * never stopped (it dies with the worker). Returns 0 or a pt_err with the reason in err. */
int pt_ratelease_start(const char *datadir, pt_ratelimit *rl, pt_ratelease **out, char *err,
                       size_t errsz);

#endif
