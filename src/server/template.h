/* template.h - the template process: a child of the master whose interpreter is already up
 * (the prelude and pq imported) and which forks workers on request, so that a replacement
 * worker costs a fork and its own few opens, not an interpreter start (docs/ARCHITECTURE.md,
 * "The template process").
 *
 * Invariants:
 *   1. The template runs one thread and runs no handler code: it loads no script and opens no
 *      database (store, secrets, the request log and warehouse handles are opened by each
 *      worker after its fork), so a fork shares no handle and inherits no held lock.
 *   2. A worker forked this way is the master's child. The template forks an intermediate
 *      process, which forks the worker and exits at once; the master is a child subreaper
 *      (PR_SET_CHILD_SUBREAPER), so the worker is re-parented to it, and reaped, stopped and
 *      replaced like any worker. The intermediate sends the worker's pid on the worker's custody
 *      socket (pt_holds_pid) before it exits, so the master hears the pid before it can reap
 *      the worker.
 *   3. The worker waits until it is the master's child before it asks for a parent-death
 *      signal (PR_SET_PDEATHSIG fires when the intermediate exits otherwise).
 *   4. Scripts are not loaded in the template: a forked worker loads a script version on its
 *      first request, as every worker does, so the template never holds stale code and is
 *      never re-made when scripts change.
 *   5. The template dying (or failing to start) costs speed only: the master starts workers the
 *      old way until a new template says it is ready. */
#ifndef PT_TEMPLATE_H
#define PT_TEMPLATE_H

#include "server/server.h"

typedef struct pt_template pt_template;

/* Starts the template process. In the child, close_inherited() runs first: it closes the
 * master's descriptors the template and its workers must not hold. Returns 0 with *out (free
 * with pt_template_free), or PT_ENOMEM / PT_EIO (logged). cfg and listen_fd as for
 * pt_worker_main (borrowed, inherited by the workers it forks). */
int pt_template_start(const pt_server_config *cfg, int listen_fd, void (*close_inherited)(void),
                      pt_template **out);
/* The template's pid, 0 for NULL. */
int pt_template_pid(const pt_template *t);
/* The socket the master polls for the template's word, -1 for NULL. */
int pt_template_fd(const pt_template *t);
/* Reads what the template said (non-blocking): 1 once it has said it is ready to fork (even
 * if it has gone since: pt_template_fork then fails), 0 while it is starting. */
int pt_template_poll(pt_template *t);
/* Asks the template to fork a worker for process slot `proc`, serving as worker `index` (0: a
 * spare), with pt_worker_main's `flags`, on custody socket `ctl` (a duplicate travels; the
 * caller keeps and closes its own). The worker's pid arrives on ctl (pt_holds_pid), or a
 * failure (pt_holds_failed) when the fork failed. Returns 0 or -1 (the template is gone). */
int pt_template_fork(pt_template *t, int ctl, int proc, int index, unsigned flags);
/* Closes the master's end of the template's socket (the template then exits) and frees t; does
 * not wait for the process. NULL is a no-op. */
void pt_template_free(pt_template *t);

#endif
