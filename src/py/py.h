/* py.h - the embedded CPython runtime, as the rest of Portico sees it (no PyObject here).
 * Only src/py/ includes Python.h. */
#ifndef PT_PY_H
#define PT_PY_H

#include <stddef.h>

/* Compiles source (file name used in messages) without running it. Returns 0, or PT_ESYNTAX
 * with "line N: message" written into err. Initialises Python if needed (CLI use). In a
 * worker it may be called from a pool thread that does not hold the GIL (the admin API's
 * script uploads): it takes and drops the GIL itself. */
int pt_py_check_syntax(const char *source, size_t len, const char *filename, char *err,
                       size_t errsz);

/* Runs a standalone script file with `pq` available, as `portico run FILE` (argv passed as
 * sys.argv). Returns the process exit status to use (0 on success, 1 on an exception, whose
 * traceback has been printed to stderr). */
int pt_py_run_file(const char *datadir, const char *path, int argc, char **argv);

/* What `portico run` runs: a file, or a stored script version (then pq.INTERFACE_ID and
 * pq.get_state() refer to it). Strings borrowed. */
typedef struct pt_py_run_spec {
    const char *datadir;
    const char *path;   /* a file to run, or NULL for the stored script below */
    const char *name;   /* the stored script's name */
    long long id;       /* its id */
    int version;        /* the version that runs */
    const char *source; /* its source, NUL-terminated */
    size_t source_len;
    int argc; /* sys.argv */
    char **argv;
    int error_fd; /* -1, or a descriptor that gets the traceback (or SystemExit) of a failure */
} pt_py_run_spec;

/* Runs spec's script in this process (the child `portico run` forks), with stdout and stderr
 * line buffered. Returns the exit status to use, as pt_py_run_file does. */
int pt_py_run(const pt_py_run_spec *spec);

/* ---- Worker side ------------------------------------------------------------------------ */

#include "core/request.h"

/* Starts the interpreter for a worker process (sys.path, the pq module, the os._exit guard).
 * Call once from the main thread; returns with the GIL released. */
int pt_py_init_worker(const char *datadir);
/* The template process's start (server/template.h): pt_py_init_worker, and pq imported.
 * Call once from the main thread of a process that runs no other thread; returns with the GIL
 * released. */
int pt_py_init_template(const char *datadir);
/* Around a fork() of such a process: prepare takes the GIL and Python's fork locks; then
 * exactly one of parent (in the parent) and child (in the child, before any other Python call
 * or thread) drops them again. */
void pt_py_fork_prepare(void);
void pt_py_fork_parent(void);
void pt_py_fork_child(void);
/* Lets Python's heap grow by at most `bytes` from now on (MemoryError past it). Thread-safe;
 * no GIL needed. */
void pt_py_set_memory_budget(size_t bytes);
/* Gives the calling thread a Python thread state (needed once per pool thread). */
void pt_py_thread_attach(void);
/* Ends what pt_py_thread_attach began, on a thread that holds no GIL and will run no more
 * Python: takes the GIL, clears and deletes the thread's state (its thread dict, with the
 * warehouse handles pq opened in it, goes too) and drops the GIL. */
void pt_py_thread_detach(void);
/* Take and drop the GIL on a thread that called pt_py_thread_attach. */
void pt_py_gil_acquire(void);
void pt_py_gil_release(void);
/* The calling thread's Python identifier (threading.get_ident()); no GIL needed. */
unsigned long pt_py_thread_ident(void);

typedef struct pt_script_ref {
    const char *name; /* borrowed */
    int version;
    const char *source; /* borrowed, NUL-terminated */
    size_t source_len;
    long long id; /* the script's id (pq.INTERFACE_ID, pq.get_state()); 0 when unknown */
} pt_script_ref;

/* Runs the handler of `script` for `req` and fills `resp` (status, content type, headers,
 * body); every failure becomes a JSON error response and a log line. Loads (compiles and runs
 * the module-level code of) the script version on first use in this process.
 * Needs the GIL. */
void pt_py_handle(const pt_script_ref *script, const pt_request *req, pt_response *resp);
/* A stored webhook event as the processing script sees it (strings borrowed). */
typedef struct pt_py_event {
    long long id;
    pt_str received_at, source, method, path, query_string;
    pt_str headers_json; /* a JSON object */
    pt_str content_type; /* empty when absent */
    pt_str body;         /* text, or base64 when body_base64 */
    int body_base64;
    pt_str remote_addr;
    int attempts; /* including this one */
} pt_py_event;

/* Runs `script`'s handler(event) for a stored webhook event (module loaded as for requests).
 * Returns 0, or -1 with "ExceptionType: message" in err (the traceback is logged). Needs the
 * GIL. */
int pt_py_handle_event(const pt_script_ref *script, const pt_py_event *ev, char *err, size_t errsz);

/* A test run (issue 9): runs `script`'s handler for `req` as a published request runs (the
 * same runtime, pq, memory budget; print() lines and the traceback kept in resp) and fills
 * resp. A handler still running after `timeout` seconds (0: none) is interrupted with
 * TimeoutError and resp becomes a 504. With `draft` set the source is compiled as a draft,
 * cached apart: the published version's module is never replaced. Takes the GIL itself (call
 * it with or without holding it). Everything borrowed. Returns the run's duration in ms. */
double pt_py_test_run(const pt_script_ref *script, int draft, const pt_request *req, double timeout,
                      pt_response *resp);

/* Raises TimeoutError asynchronously in the thread `ident` (interrupts pure-Python code;
 * a blocking C call is not interrupted). Needs the GIL. */
void pt_py_interrupt(unsigned long ident);

/* Drops a TimeoutError raised in the calling thread by pt_py_interrupt that has not fired
 * yet. Needs the GIL. */
void pt_py_clear_interrupt(void);

/* Called by the os._exit guard before the process exits, so that the worker can answer its
 * in-flight requests; returns 1 when it did (the process is the worker), 0 otherwise (a child
 * a handler forked). Set by the worker. */
extern int (*pt_py_on_exit_hook)(int status);
/* The status a worker process exits with after a handler called os._exit() and the hook
 * above returned 1 (the handler's own status is logged); server/worker.h names it
 * PT_WORKER_EXIT_PYEXIT for the master. */
enum { PT_PY_EXIT_OSEXIT = 122 };

#endif
