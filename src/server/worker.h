/* worker.h - one worker process: an HTTP event loop and an embedded Python interpreter. */
#ifndef PT_WORKER_H
#define PT_WORKER_H

#include "py/py.h"
#include "server/server.h"

/* Exit statuses a worker uses, read by the master to log why a worker went away. */
enum {
    PT_WORKER_EXIT_OK = 0,                     /* graceful stop after SIGTERM */
    PT_WORKER_EXIT_FAILED = 1,                 /* could not start (bad data dir, Python init) */
    PT_WORKER_EXIT_MEMORY = 120,               /* a handler ran past the memory limit; recycled */
    PT_WORKER_EXIT_STUCK = 121,                /* every thread stuck in handlers past the timeout */
    PT_WORKER_EXIT_PYEXIT = PT_PY_EXIT_OSEXIT, /* a handler called os._exit() (status logged) */
};

/* How pt_worker_main starts. */
enum {
    /* A replacement started while the server serves: it initialises at the lowest priority
     * where it may return to normal afterwards. */
    PT_WORKER_BACKGROUND = 1,
    /* Forked from the template process (template.h): the interpreter is already up. */
    PT_WORKER_FORKED = 2,
};

/* Runs a worker in process slot `proc` (0-based: its row in the breaker's blame table) until
 * SIGTERM; never returns. `ctl` is the worker's end of its custody socket with the master
 * (holds.h). index >= 1: serve as worker `index` on the shared listening socket at once;
 * 0: a spare, started and ready but taking no connections until the master promotes it. The
 * master hears "ready" once the worker can serve, or why it cannot start (then it exits with
 * PT_WORKER_EXIT_FAILED). flags: PT_WORKER_BACKGROUND, PT_WORKER_FORKED. */
void pt_worker_main(const pt_server_config *cfg, int listen_fd, int ctl, int proc, int index,
                    unsigned flags) __attribute__((noreturn));

#endif
