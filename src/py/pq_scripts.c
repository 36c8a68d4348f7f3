/* pq_scripts.c - the store side of pq's state, script and run functions (pq.get_state,
 * pq.list_scripts, pq.run_script, ...): C primitives in a private module, _portico_scripts,
 * that the prelude's last section wraps with Peliqan's names and return shapes. Every function
 * here is called with the GIL held; the store calls and the waits release it.
 *
 * Design notes
 *
 *   1. One pt_store per process, opened on first use, guarded by a mutex (a pt_store is not
 *      thread-safe) and used only with the GIL released: a handler waiting for the store's
 *      write lock never stalls the worker's other threads.
 *   2. "The running script" is the calling thread's pt_py_current_script (set by handler.c
 *      around module-level code, each request and each webhook event), else the process's
 *      pt_py_process_script (`portico run --script`). Reading it costs nothing on the request
 *      path; its id comes with the worker's script snapshot (pt_script_ref.id), and is looked
 *      up by name only when a caller did not know it.
 *   3. A run (pq.run_script) is a child process, `portico --data D run --record ID --script
 *      NAME` (/proc/self/exe), in a process group of its own: a script that crashes or exits
 *      never takes the worker down. The child records the run's end and output; the parent
 *      waits with the GIL released, waking every POLL_MS to let a handler timeout (an
 *      asynchronous TimeoutError) or a signal stop the wait; it then stops the group (SIGTERM,
 *      which the recorder passes on and records, then SIGKILL).
 */
#include "py/py_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "core/spawn.h"
#include "py/py.h"
#include "store/store.h"
#include "store/store_runs.h"

#define POLL_MS 200  /* how often a wait checks for a timeout or a signal */
#define STOP_MS 2000 /* how long a stopped run may take to record its end */

static pt_store *store;   /* owned; opened on first use (note 1) */
static char *datadir_abs; /* owned: the data dir as an absolute path, for runs */
static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;

/* Set by set_errors() from the prelude: pq.Error, pq.InvalidArgument, pq.ScriptNotFound,
 * pq.RunNotFound, and a no-op Python function whose call lets pending asynchronous
 * exceptions fire (note 3). Strong references. */
static PyObject *err_error, *err_invalid, *err_script_nf, *err_run_nf, *tick_fn;

/* The result of one store call made without the GIL. */
typedef struct store_call {
    int rc;
    char err[600];
} store_call;

/* Opens the store when needed. Called with store_lock held. */
static int
open_store(store_call *c)
{
    if (store != NULL)
        return 0;
    if (pt_py_datadir == NULL) {
        snprintf(c->err, sizeof c->err, "no data dir");
        return PT_EINVAL;
    }
    return pt_store_open(pt_py_datadir, &store, c->err, sizeof c->err);
}

/* Runs `expr` (which uses `store`) with the GIL released and the store locked; its pt_err goes
 * into c.rc, the store's message into c.err. */
#define STORE_CALL(c, expr)                                                                        \
    do {                                                                                           \
        PyThreadState *ts_ = PyEval_SaveThread();                                                  \
        pthread_mutex_lock(&store_lock);                                                           \
        (c).err[0] = '\0';                                                                         \
        (c).rc = open_store(&(c));                                                                 \
        if ((c).rc == 0) {                                                                         \
            (c).rc = (expr);                                                                       \
            if ((c).rc != 0)                                                                       \
                snprintf((c).err, sizeof(c).err, "%s", pt_store_errmsg(store));                    \
        }                                                                                          \
        pthread_mutex_unlock(&store_lock);                                                         \
        PyEval_RestoreThread(ts_);                                                                 \
    } while (0)

/* Raises the pq exception for a failed store call; returns NULL. `nf` is the class for
 * PT_ENOTFOUND. */
static PyObject *
raise_call(const store_call *c, PyObject *nf)
{
    PyObject *type = err_error;

    if (c->rc == PT_ENOTFOUND && nf != NULL)
        type = nf;
    else if (c->rc == PT_EINVAL || c->rc == PT_EEXIST || c->rc == PT_ETOOBIG)
        type = err_invalid;
    if (type == NULL)
        type = PyExc_RuntimeError;
    PyErr_SetString(type, c->err[0] != '\0' ? c->err : pt_strerror(c->rc));
    return NULL;
}

/* set_errors(Error, InvalidArgument, ScriptNotFound, RunNotFound, tick) */
static PyObject *
c_set_errors(PyObject *self, PyObject *args)
{
    PyObject *e, *i, *s, *r, *t;

    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOO", &e, &i, &s, &r, &t))
        return NULL;
    Py_XSETREF(err_error, Py_NewRef(e));
    Py_XSETREF(err_invalid, Py_NewRef(i));
    Py_XSETREF(err_script_nf, Py_NewRef(s));
    Py_XSETREF(err_run_nf, Py_NewRef(r));
    Py_XSETREF(tick_fn, Py_NewRef(t));
    Py_RETURN_NONE;
}

/* current() -> (name, id, version) of the running script, or None (note 2). */
static PyObject *
c_current(PyObject *self, PyObject *args)
{
    const pt_script_ref *ref = pt_py_current_script;
    long long id;

    (void)self;
    (void)args;
    if (ref == NULL)
        ref = pt_py_process_script;
    if (ref == NULL || ref->name == NULL)
        Py_RETURN_NONE;
    id = ref->id;
    if (id == 0) {
        /* A caller that did not carry the id: look it up (rare; never on the request path of
         * the worker, which passes it). */
        pt_script *s = NULL;
        store_call c;
        STORE_CALL(c, pt_store_script_get(store, ref->name, ref->version, &s));
        if (c.rc != 0)
            return raise_call(&c, err_script_nf);
        id = s->id;
        pt_script_free(s);
    }
    return Py_BuildValue("(sLi)", ref->name, id, ref->version);
}

/* state_get(id) -> str or None */
static PyObject *
c_state_get(PyObject *self, PyObject *args)
{
    long long id;
    char *value = NULL;
    size_t len = 0;
    store_call c;
    PyObject *r;

    (void)self;
    if (!PyArg_ParseTuple(args, "L", &id))
        return NULL;
    STORE_CALL(c, pt_store_state_get(store, id, &value, &len));
    if (c.rc != 0)
        return raise_call(&c, err_script_nf);
    if (value == NULL)
        Py_RETURN_NONE;
    r = PyUnicode_DecodeUTF8(value, (Py_ssize_t)len, "replace");
    free(value);
    return r;
}

/* state_set(id, text) */
static PyObject *
c_state_set(PyObject *self, PyObject *args)
{
    long long id;
    const char *text;
    Py_ssize_t len;
    store_call c;

    (void)self;
    if (!PyArg_ParseTuple(args, "Ls#", &id, &text, &len))
        return NULL;
    if ((size_t)len > PT_STORE_STATE_MAX) {
        /* Checked here too, to name the limit before the store is even asked. */
        PyErr_Format(err_invalid != NULL ? err_invalid : PyExc_ValueError,
                     "state of %zd bytes is too big (at most %u bytes)", len, PT_STORE_STATE_MAX);
        return NULL;
    }
    /* text belongs to a str the caller holds: safe to read without the GIL. */
    STORE_CALL(c, pt_store_state_set(store, id, text, (size_t)len));
    if (c.rc != 0)
        return raise_call(&c, err_script_nf);
    Py_RETURN_NONE;
}

/* A script as a tuple (id, name, version, current, run_mode, created, source). New
 * reference. */
static PyObject *
script_tuple(const pt_script *s)
{
    PyObject *src = PyUnicode_DecodeUTF8(s->source, (Py_ssize_t)s->source_len, "replace");

    if (src == NULL)
        return NULL;
    return Py_BuildValue("(LsiisLN)", (long long)s->id, s->name, s->version, s->current,
                         s->run_mode, (long long)s->created, src);
}

/* scripts() -> list of script tuples (current versions) */
static PyObject *
c_scripts(PyObject *self, PyObject *args)
{
    pt_script *list = NULL;
    size_t n = 0;
    store_call c;
    PyObject *out;

    (void)self;
    (void)args;
    STORE_CALL(c, pt_store_script_list(store, &list, &n));
    if (c.rc != 0)
        return raise_call(&c, NULL);
    out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out != NULL && i < n; i++) {
        PyObject *t = script_tuple(&list[i]);
        if (t == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, (Py_ssize_t)i, t); /* steals t */
    }
    pt_store_scripts_free(list, n);
    return out;
}

/* script(id, name) -> script tuple of the current version; by id unless id is 0. */
static PyObject *
c_script(PyObject *self, PyObject *args)
{
    long long id;
    const char *name;
    pt_script *s = NULL;
    store_call c;
    PyObject *t;

    (void)self;
    if (!PyArg_ParseTuple(args, "Lz", &id, &name))
        return NULL;
    if (id != 0)
        STORE_CALL(c, pt_store_script_get_by_id(store, id, 0, &s));
    else if (name != NULL)
        STORE_CALL(c, pt_store_script_get(store, name, 0, &s));
    else
        return PyErr_Format(err_invalid, "a script id or name is needed");
    if (c.rc != 0)
        return raise_call(&c, err_script_nf);
    t = script_tuple(s);
    pt_script_free(s);
    return t;
}

/* create(name, source, run_mode) -> id */
static PyObject *
c_create(PyObject *self, PyObject *args)
{
    const char *name, *source, *mode;
    Py_ssize_t len;
    int64_t id = 0;
    store_call c;

    (void)self;
    if (!PyArg_ParseTuple(args, "ss#s", &name, &source, &len, &mode))
        return NULL;
    STORE_CALL(c, pt_store_script_create(store, name, source, (size_t)len, mode, &id));
    if (c.rc != 0)
        return raise_call(&c, err_script_nf);
    return PyLong_FromLongLong((long long)id);
}

/* put(name, source) -> the new version */
static PyObject *
c_put(PyObject *self, PyObject *args)
{
    const char *name, *source;
    Py_ssize_t len;
    int version = 0;
    store_call c;

    (void)self;
    if (!PyArg_ParseTuple(args, "ss#", &name, &source, &len))
        return NULL;
    STORE_CALL(c, pt_store_script_put(store, name, source, (size_t)len, &version));
    if (c.rc != 0)
        return raise_call(&c, err_script_nf);
    return PyLong_FromLong(version);
}

/* rename(name, new_name) */
static PyObject *
c_rename(PyObject *self, PyObject *args)
{
    const char *name, *new_name;
    store_call c;

    (void)self;
    if (!PyArg_ParseTuple(args, "ss", &name, &new_name))
        return NULL;
    STORE_CALL(c, pt_store_script_rename(store, name, new_name));
    if (c.rc != 0)
        return raise_call(&c, err_script_nf);
    Py_RETURN_NONE;
}

/* set_mode(id, run_mode) */
static PyObject *
c_set_mode(PyObject *self, PyObject *args)
{
    long long id;
    const char *mode;
    store_call c;

    (void)self;
    if (!PyArg_ParseTuple(args, "Ls", &id, &mode))
        return NULL;
    STORE_CALL(c, pt_store_script_set_run_mode(store, id, mode));
    if (c.rc != 0)
        return raise_call(&c, err_script_nf);
    Py_RETURN_NONE;
}

/* A run as a tuple (id, script_id, script, version, trigger, status, started_ms, finished_ms,
 * exit_code, output, output_dropped, error). New reference. */
static PyObject *
run_tuple(const pt_script_run *r)
{
    PyObject *out = PyUnicode_DecodeUTF8(r->output != NULL ? r->output : "",
                                         (Py_ssize_t)r->output_len, "replace");

    if (out == NULL)
        return NULL;
    return Py_BuildValue("(LLsissLLiNLz)", (long long)r->id, (long long)r->script_id, r->script,
                         r->version, r->trigger, r->status, (long long)r->started,
                         (long long)r->finished, r->exit_code, out, (long long)r->output_dropped,
                         r->error);
}

/* run_start(script_id, script, version, trigger) -> run id */
static PyObject *
c_run_start(PyObject *self, PyObject *args)
{
    long long sid;
    const char *name, *trigger;
    int version;
    pt_script_run r;
    store_call c;

    (void)self;
    if (!PyArg_ParseTuple(args, "Lsis", &sid, &name, &version, &trigger))
        return NULL;
    memset(&r, 0, sizeof r);
    r.script_id = sid;
    r.script = (char *)name; /* borrowed for the call */
    r.version = version;
    r.trigger = (char *)trigger;
    STORE_CALL(c, pt_store_run_start(store, &r));
    if (c.rc != 0)
        return raise_call(&c, NULL);
    return PyLong_FromLongLong((long long)r.id);
}

/* run_finish(id, status, exit_code, error) */
static PyObject *
c_run_finish(PyObject *self, PyObject *args)
{
    long long id;
    const char *status, *error;
    int code;
    pt_script_run r;
    store_call c;

    (void)self;
    if (!PyArg_ParseTuple(args, "Lsiz", &id, &status, &code, &error))
        return NULL;
    memset(&r, 0, sizeof r);
    r.id = id;
    r.status = (char *)status; /* borrowed for the call */
    r.exit_code = code;
    r.error = (char *)error;
    STORE_CALL(c, pt_store_run_finish(store, &r));
    if (c.rc != 0)
        return raise_call(&c, err_run_nf);
    Py_RETURN_NONE;
}

/* run_get(id) -> run tuple */
static PyObject *
c_run_get(PyObject *self, PyObject *args)
{
    long long id;
    pt_script_run r;
    store_call c;
    PyObject *t;

    (void)self;
    if (!PyArg_ParseTuple(args, "L", &id))
        return NULL;
    STORE_CALL(c, pt_store_run_get(store, id, &r));
    if (c.rc != 0)
        return raise_call(&c, err_run_nf);
    t = run_tuple(&r);
    pt_script_run_clear(&r);
    return t;
}

/* runs(script_id, limit, offset) -> (total, [run tuple without output, ...]) */
static PyObject *
c_runs(PyObject *self, PyObject *args)
{
    long long sid, limit, offset;
    pt_script_run *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    store_call c;
    PyObject *out;

    (void)self;
    if (!PyArg_ParseTuple(args, "LLL", &sid, &limit, &offset))
        return NULL;
    STORE_CALL(c, pt_store_run_list(store, sid, NULL, limit, offset, &list, &n, &total));
    if (c.rc != 0)
        return raise_call(&c, NULL);
    out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out != NULL && i < n; i++) {
        PyObject *t = run_tuple(&list[i]);
        if (t == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, (Py_ssize_t)i, t); /* steals t */
    }
    pt_store_runs_free(list, n);
    return out != NULL ? Py_BuildValue("(LN)", (long long)total, out) : NULL;
}

/* The exit status of a waited-for child, as a shell reports it (128 + N for signal N). */
static int
exit_code_of(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

/* Stops the run's process group: SIGTERM, which the recorder passes on to the script and
 * then records, and SIGKILL after STOP_MS if the group is still there. Reaps pid. GIL held;
 * released while waiting. */
static void
stop_group(pid_t pid, int pidfd)
{
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    PyThreadState *ts;
    int status;

    kill(-pid, SIGTERM);
    ts = PyEval_SaveThread();
    if (poll(&p, 1, STOP_MS) <= 0)
        kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    PyEval_RestoreThread(ts);
}

/* Waits for pid (GIL held on entry and exit, released while waiting). Returns its exit code,
 * or -1 with a Python exception set when the wait was interrupted (the process group is then
 * killed and reaped). */
static int
wait_child(pid_t pid)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int status = 0, ready = 0;
    PyThreadState *ts;
    pid_t got;

    while (pidfd >= 0 && !ready) {
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        ts = PyEval_SaveThread();
        ready = poll(&p, 1, POLL_MS) > 0;
        PyEval_RestoreThread(ts);
        if (ready)
            break;
        /* Let a handler timeout (TimeoutError) or a signal end the wait. */
        PyObject *t = tick_fn != NULL ? PyObject_CallNoArgs(tick_fn) : Py_NewRef(Py_None);
        if (t == NULL || PyErr_CheckSignals() != 0) {
            Py_XDECREF(t);
            stop_group(pid, pidfd);
            close(pidfd);
            return -1;
        }
        Py_DECREF(t);
    }
    if (pidfd >= 0)
        close(pidfd);
    ts = PyEval_SaveThread();
    do
        got = waitpid(pid, &status, 0);
    while (got < 0 && errno == EINTR);
    PyEval_RestoreThread(ts);
    if (got < 0) {
        PyErr_Format(err_error, "cannot wait for the run process: %s", strerror(errno));
        return -1;
    }
    return exit_code_of(status);
}

/* spawn(run_id, name) -> exit code of `portico run --record RUN_ID --script NAME` (note 3) */
static PyObject *
c_spawn(PyObject *self, PyObject *args)
{
    long long run_id;
    const char *name;
    char idbuf[32];
    pid_t pid;
    int rc, code;

    (void)self;
    if (!PyArg_ParseTuple(args, "Ls", &run_id, &name))
        return NULL;
    if (datadir_abs == NULL)
        return PyErr_Format(err_error, "runs need a data dir");
    snprintf(idbuf, sizeof idbuf, "%lld", run_id);
    /* Absolute: a handler may have changed the working directory since start-up. */
    char *argv[] = {"portico", "--data",   datadir_abs,  "run", "--record",
                    idbuf,     "--script", (char *)name, NULL};

    rc = pt_spawn_self(argv, 1, &pid); /* a group of its own: stop_group ends it */
    if (rc != 0)
        return PyErr_Format(err_error, "cannot start the run of script '%s': %s", name,
                            strerror(rc));
    code = wait_child(pid);
    if (code < 0)
        return NULL;
    return PyLong_FromLong(code);
}

static PyMethodDef c_methods[] = {
    {"set_errors", c_set_errors, METH_VARARGS, NULL},
    {"current", c_current, METH_NOARGS, NULL},
    {"state_get", c_state_get, METH_VARARGS, NULL},
    {"state_set", c_state_set, METH_VARARGS, NULL},
    {"scripts", c_scripts, METH_NOARGS, NULL},
    {"script", c_script, METH_VARARGS, NULL},
    {"create", c_create, METH_VARARGS, NULL},
    {"put", c_put, METH_VARARGS, NULL},
    {"set_mode", c_set_mode, METH_VARARGS, NULL},
    {"rename", c_rename, METH_VARARGS, NULL},
    {"run_start", c_run_start, METH_VARARGS, NULL},
    {"run_finish", c_run_finish, METH_VARARGS, NULL},
    {"run_get", c_run_get, METH_VARARGS, NULL},
    {"runs", c_runs, METH_VARARGS, NULL},
    {"spawn", c_spawn, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef c_def = {
    PyModuleDef_HEAD_INIT,
    "_portico_scripts",
    "The store side of pq's scripts and state.",
    -1,
    c_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

int
pt_py_pq_scripts_setup(PyObject *module)
{
    PyObject *c = NULL, *install = NULL, *r = NULL;
    int rc = -1;

    if (pt_pyg.prelude == NULL)
        return 0; /* no runtime (syntax checks only): pq has no script functions there */
    if (datadir_abs == NULL && pt_py_datadir != NULL) {
        datadir_abs = realpath(pt_py_datadir, NULL);
        if (datadir_abs == NULL)
            datadir_abs = strdup(pt_py_datadir);
        if (datadir_abs == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    c = PyModule_Create(&c_def);
    if (c == NULL)
        goto done;
    install = PyObject_GetAttrString(pt_pyg.prelude, "install_scripts");
    if (install == NULL)
        goto done;
    r = PyObject_CallFunctionObjArgs(install, module, c, NULL);
    if (r != NULL)
        rc = 0;
done:
    Py_XDECREF(r);
    Py_XDECREF(install);
    Py_XDECREF(c);
    return rc;
}
