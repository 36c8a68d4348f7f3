/* runtime.c - the embedded interpreter's lifecycle: start-up, the _portico_c helper module,
 * thread states and the GIL, syntax checks and standalone scripts (`portico run`). */
#include "py/py_int.h"
#include "py/pq_int.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "py/py.h"

pt_py_globals pt_pyg;
_Thread_local const char *pt_py_current_request_id = "";
_Thread_local int pt_py_print_pending;
_Thread_local pt_response *pt_py_current_response;
const char *pt_py_datadir;
int (*pt_py_on_exit_hook)(int status);
const struct pt_script_ref *pt_py_process_script;

/* Each pool thread's Python state; NULL while the thread holds the GIL. */
static _Thread_local PyThreadState *saved_tstate;
static _Thread_local unsigned long thread_ident;

static const char prelude_source[] = {
#include "prelude.inc"
    0};

PyObject *
pt_py_fetch_exc(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

/* ---- _portico_c: the C helpers the prelude calls --------------------------------------- */

/* What print() of one request (or webhook event) has put in the server log, and what it was
 * kept from putting there past PT_PY_PRINT_LOG_MAX. */
static _Thread_local size_t print_logged, print_dropped;

/* emit(stream, line): one print() line into the request's response for the request log
 * (bounded there by pt_response_print), and into the server log, tagged with the request id. Past
 * PT_PY_PRINT_LOG_MAX bytes in one request, lines are cut (at a character boundary) and then
 * only counted; pt_py_print_end says how much. */
static PyObject *
c_emit(PyObject *self, PyObject *args)
{
    const char *stream, *line;
    Py_ssize_t n;
    (void)self;
    if (!PyArg_ParseTuple(args, "ss#", &stream, &line, &n))
        return NULL;
    if (pt_py_current_response != NULL)
        pt_response_print(pt_py_current_response, line, (size_t)n);
    size_t len = (size_t)n, show = len;
    if (print_logged >= PT_PY_PRINT_LOG_MAX) {
        print_dropped += len + 1;
        Py_RETURN_NONE;
    }
    if (show > PT_PY_PRINT_LOG_MAX - print_logged) {
        show = PT_PY_PRINT_LOG_MAX - print_logged;
        while (show > 0 && ((unsigned char)line[show] & 0xC0) == 0x80)
            show--; /* not inside a UTF-8 sequence */
    }
    print_logged += show + 1;
    print_dropped += len - show;
    if (pt_py_current_request_id[0] != '\0')
        pt_log_info("request %s: %s: %.*s", pt_py_current_request_id, stream, (int)show, line);
    else
        pt_log_info("%s: %.*s", stream, (int)show, line);
    Py_RETURN_NONE;
}

void
pt_py_print_end(void)
{
    if (print_dropped > 0 && pt_py_current_request_id[0] != '\0')
        pt_log_warn("request %s: [truncated %zu bytes of print() output: at most %d are logged "
                    "per request]",
                    pt_py_current_request_id, print_dropped, PT_PY_PRINT_LOG_MAX);
    else if (print_dropped > 0)
        pt_log_warn("[truncated %zu bytes of print() output: at most %d are logged per run]",
                    print_dropped, PT_PY_PRINT_LOG_MAX);
    print_logged = 0;
    print_dropped = 0;
}

/* _exit(status): os._exit for handlers. Answers in-flight requests with 502 first so that
 * clients are not left with a reset connection. */
static PyObject *
c_exit(PyObject *self, PyObject *args)
{
    int status;
    (void)self;
    if (!PyArg_ParseTuple(args, "i", &status))
        return NULL;
    /* In a child a handler forked, the hook does nothing and the status is the handler's. */
    if (pt_py_on_exit_hook != NULL && pt_py_on_exit_hook(status)) {
        pt_log_error("request %s: handler called os._exit(%d); the worker exits",
                     pt_py_current_request_id, status);
        fflush(NULL);
        _exit(PT_PY_EXIT_OSEXIT); /* the master logs why the worker went */
    }
    fflush(NULL);
    _exit(status);
}

/* mark_pending(): print() left a partial line; flush it when the request ends. */
static PyObject *
c_mark_pending(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    pt_py_print_pending = 1;
    Py_RETURN_NONE;
}

static PyMethodDef c_methods[] = {
    {"mark_pending", c_mark_pending, METH_NOARGS, "Note a partial print() line."},
    {"emit", c_emit, METH_VARARGS, "Write one line to the server log."},
    {"_exit", c_exit, METH_VARARGS, "os._exit() that answers in-flight requests first."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef c_module_def = {
    PyModuleDef_HEAD_INIT,
    "_portico_c",
    "Portico's C helpers.",
    -1,
    c_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

static PyObject *
init_c_module(void)
{
    PyObject *m = PyModule_Create(&c_module_def);
    if (m == NULL)
        return NULL;
    PyObject *err = PyErr_NewException("_portico_c.ScriptError", NULL, NULL);
    if (err == NULL || PyModule_AddObject(m, "ScriptError", err) != 0) {
        Py_XDECREF(err);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

static PyObject *
init_pq_module(void)
{
    PyObject *m = pt_py_pq_module();
    if (m != NULL && pt_py_pq_secret_setup(m) != 0)
        Py_CLEAR(m);
    if (m != NULL && pt_py_pq_meta_setup(m) != 0)
        Py_CLEAR(m);
    if (m != NULL && pt_py_pq_scripts_setup(m) != 0)
        Py_CLEAR(m);
    if (m != NULL && pt_pyg.prelude != NULL) { /* the functions written in Python */
        PyObject *r = PyObject_CallMethod(pt_pyg.prelude, "install_pq_extras", "O", m);
        if (r == NULL)
            Py_CLEAR(m);
        Py_XDECREF(r);
    }
    return m;
}

/* ---- Start-up -------------------------------------------------------------------------- */

/* ---- The memory budget ------------------------------------------------------------------
 *
 * A worker's handlers may grow Python's heap by --worker-memory at most. Python's raw
 * allocator (every block over 512 bytes, and what the C API allocates) and pymalloc's arena
 * allocator (all small objects) are wrapped to count the bytes they hold; past the budget they
 * return NULL and the handler gets MemoryError. Limiting the whole process instead
 * (RLIMIT_AS) would make any allocation fail, including h2o's, which aborts. */

static PyMemAllocatorEx raw_prev;
static PyObjectArenaAllocator arena_prev;
static atomic_llong py_bytes;              /* approximate: blocks freed before the wrap count 0 */
static atomic_llong py_budget = LLONG_MAX; /* the most py_bytes may reach */

static int
over_budget(size_t n)
{
    long long used = atomic_load_explicit(&py_bytes, memory_order_relaxed);
    long long budget = atomic_load_explicit(&py_budget, memory_order_relaxed);
    return n > (size_t)LLONG_MAX || (long long)n > budget - used;
}

static void
count(long long delta)
{
    atomic_fetch_add_explicit(&py_bytes, delta, memory_order_relaxed);
}

static void *
raw_malloc(void *ctx, size_t n)
{
    (void)ctx;
    if (over_budget(n))
        return NULL;
    void *p = raw_prev.malloc(raw_prev.ctx, n);
    if (p != NULL)
        count((long long)malloc_usable_size(p));
    return p;
}

static void *
raw_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    if (elsize != 0 && nelem > SIZE_MAX / elsize)
        return NULL;
    if (over_budget(nelem * elsize))
        return NULL;
    void *p = raw_prev.calloc(raw_prev.ctx, nelem, elsize);
    if (p != NULL)
        count((long long)malloc_usable_size(p));
    return p;
}

static void *
raw_realloc(void *ctx, void *ptr, size_t n)
{
    (void)ctx;
    size_t old = ptr != NULL ? malloc_usable_size(ptr) : 0;
    if (n > old && over_budget(n - old))
        return NULL;
    void *q = raw_prev.realloc(raw_prev.ctx, ptr, n);
    if (q != NULL)
        count((long long)malloc_usable_size(q) - (long long)old);
    return q;
}

static void
raw_free(void *ctx, void *ptr)
{
    (void)ctx;
    if (ptr != NULL)
        count(-(long long)malloc_usable_size(ptr));
    raw_prev.free(raw_prev.ctx, ptr);
}

static void *
arena_alloc(void *ctx, size_t size)
{
    (void)ctx;
    if (over_budget(size))
        return NULL;
    void *p = arena_prev.alloc(arena_prev.ctx, size);
    if (p != NULL)
        count((long long)size);
    return p;
}

static void
arena_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    count(-(long long)size);
    arena_prev.free(arena_prev.ctx, ptr, size);
}

/* Wraps the allocators; must run after Py_PreInitialize and before Py_InitializeFromConfig,
 * the only window in which the raw allocator may change. */
static void
wrap_allocators(void)
{
    PyMemAllocatorEx raw = {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free};
    PyObjectArenaAllocator arena = {NULL, arena_alloc, arena_free};
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &raw_prev);
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &raw);
    PyObject_GetArenaAllocator(&arena_prev);
    PyObject_SetArenaAllocator(&arena);
}

void
pt_py_set_memory_budget(size_t bytes)
{
    long long used = atomic_load(&py_bytes);
    long long b =
        bytes > (size_t)(LLONG_MAX / 2) ? LLONG_MAX : (used > 0 ? used : 0) + (long long)bytes;
    atomic_store(&py_budget, b);
}

static int
start_interpreter(void)
{
    if (Py_IsInitialized())
        return 0;
    PyPreConfig pre;
    PyPreConfig_InitPythonConfig(&pre);
    pre.utf8_mode = 1;
    PyStatus pst = Py_PreInitialize(&pre);
    if (PyStatus_Exception(pst)) {
        pt_log_error("cannot start Python: %s", pst.err_msg ? pst.err_msg : "unknown error");
        return -1;
    }
    wrap_allocators();
    if (PyImport_AppendInittab("_portico_c", init_c_module) != 0 ||
        PyImport_AppendInittab("pq", init_pq_module) != 0)
        return -1;
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    config.user_site_directory = 0;
    /* Debian's interpreter and its dist-packages (cryptography, pandas when installed). */
    PyStatus st = PyConfig_SetString(&config, &config.program_name, L"/usr/bin/python3");
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        pt_log_error("cannot start Python: %s", st.err_msg ? st.err_msg : "unknown error");
        return -1;
    }
    return 0;
}

#define INTERN(field, text)                                                                        \
    do {                                                                                           \
        if ((pt_pyg.field = PyUnicode_InternFromString(text)) == NULL)                             \
            return -1;                                                                             \
    } while (0)

static PyObject *
prelude_attr(const char *name)
{
    return PyObject_GetAttrString(pt_pyg.prelude, name);
}

int
pt_py_runtime_setup(const char *datadir)
{
    pt_py_datadir = datadir;
    INTERN(s_method, "method");
    INTERN(s_url, "url");
    INTERN(s_path, "path");
    INTERN(s_query_string, "query_string");
    INTERN(s_headers, "headers");
    INTERN(s_data, "data");
    INTERN(s_form, "form");
    INTERN(s_body, "body");
    INTERN(s_params, "params");
    INTERN(s_query, "query");
    INTERN(s_auth, "auth");
    INTERN(s_remote_addr, "remote_addr");
    INTERN(s_request_id, "request_id");
    INTERN(empty_str, "");

    PyObject *code = Py_CompileString(prelude_source, "<portico prelude>", Py_file_input);
    if (code == NULL)
        return -1;
    pt_pyg.prelude = PyImport_ExecCodeModule("_portico_prelude", code);
    Py_DECREF(code);
    if (pt_pyg.prelude == NULL)
        return -1;
    if ((pt_pyg.headers_type = prelude_attr("Headers")) == NULL ||
        (pt_pyg.flask_request = prelude_attr("FlaskRequest")) == NULL ||
        (pt_pyg.parse_form = prelude_attr("parse_form")) == NULL ||
        (pt_pyg.parse_query = prelude_attr("parse_query")) == NULL ||
        (pt_pyg.load_script = prelude_attr("load_script")) == NULL ||
        (pt_pyg.set_current = prelude_attr("set_current")) == NULL ||
        (pt_pyg.format_exc = prelude_attr("format_exc")) == NULL ||
        (pt_pyg.flush_print = prelude_attr("flush_print")) == NULL ||
        (pt_pyg.bad_request = prelude_attr("BadRequest")) == NULL ||
        (pt_pyg.write_plan = prelude_attr("write_plan")) == NULL ||
        (pt_pyg.script_cache = PyDict_New()) == NULL || (pt_pyg.draft_cache = PyDict_New()) == NULL)
        return -1;

    /* os._exit() in a handler must answer its client first: route it through _portico_c. */
    PyObject *os = PyImport_ImportModule("os");
    PyObject *cmod = PyImport_ImportModule("_portico_c");
    PyObject *guard = cmod != NULL ? PyObject_GetAttrString(cmod, "_exit") : NULL;
    int rc = (os != NULL && guard != NULL) ? PyObject_SetAttrString(os, "_exit", guard) : -1;
    Py_XDECREF(guard);
    Py_XDECREF(cmod);
    Py_XDECREF(os);
    return rc;
}

void
pt_py_log_exception(const char *what)
{
    PyObject *exc = pt_py_fetch_exc();
    PyObject *text = exc != NULL && pt_pyg.format_exc != NULL
                         ? PyObject_CallOneArg(pt_pyg.format_exc, exc)
                         : NULL;
    if (text != NULL && PyUnicode_Check(text))
        pt_log_error("%s:\n%s", what, PyUnicode_AsUTF8(text));
    else
        pt_log_error("%s (no traceback available)", what);
    Py_XDECREF(text);
    Py_XDECREF(exc);
    PyErr_Clear();
}

int
pt_py_init_worker(const char *datadir)
{
    if (start_interpreter() != 0)
        return PT_EPY;
    if (pt_py_runtime_setup(datadir) != 0) {
        pt_py_log_exception("cannot set up the handler runtime");
        return PT_EPY;
    }
    PyObject *cap = PyObject_CallMethod(pt_pyg.prelude, "capture_print", NULL);
    if (cap == NULL) {
        pt_py_log_exception("cannot capture print()");
        return PT_EPY;
    }
    Py_DECREF(cap);
    /* The main thread keeps no GIL: pool threads take turns. */
    saved_tstate = PyEval_SaveThread();
    return 0;
}

int
pt_py_init_template(const char *datadir)
{
    int rc = pt_py_init_worker(datadir);
    if (rc != 0)
        return rc;
    /* What every handler's first request would import otherwise: pq and its Python half. */
    PyEval_RestoreThread(saved_tstate);
    PyObject *pq = PyImport_ImportModule("pq");
    if (pq == NULL) {
        pt_py_log_exception("cannot import pq");
        rc = PT_EPY;
    }
    Py_XDECREF(pq);
    saved_tstate = PyEval_SaveThread();
    return rc;
}

void
pt_py_fork_prepare(void)
{
    PyEval_RestoreThread(saved_tstate);
    saved_tstate = NULL;
    PyOS_BeforeFork();
}

void
pt_py_fork_parent(void)
{
    PyOS_AfterFork_Parent();
    saved_tstate = PyEval_SaveThread();
}

void
pt_py_fork_child(void)
{
    /* Re-creates the GIL and the thread registry for this process (only the forking thread
     * exists here), runs os.register_at_fork's child hooks (random's reseed, threading). */
    PyOS_AfterFork_Child();
    saved_tstate = PyEval_SaveThread();
}

void
pt_py_thread_attach(void)
{
    PyGILState_STATE st = PyGILState_Ensure();
    (void)st;
    PyObject *threading = PyImport_ImportModule("threading");
    PyObject *ident = threading ? PyObject_CallMethod(threading, "get_ident", NULL) : NULL;
    thread_ident = ident != NULL ? PyLong_AsUnsignedLong(ident) : 0;
    Py_XDECREF(ident);
    Py_XDECREF(threading);
    PyErr_Clear();
    /* Keep the thread state for good; the GIL is taken and dropped with it from now on. */
    saved_tstate = PyEval_SaveThread();
}

void
pt_py_thread_detach(void)
{
    PyEval_RestoreThread(saved_tstate);
    saved_tstate = NULL;
    /* Balances pt_py_thread_attach's PyGILState_Ensure: the state is cleared and deleted, and
     * the GIL released with it. */
    PyGILState_Release(PyGILState_UNLOCKED);
}

void
pt_py_gil_acquire(void)
{
    PyEval_RestoreThread(saved_tstate);
    saved_tstate = NULL;
}

void
pt_py_gil_release(void)
{
    saved_tstate = PyEval_SaveThread();
}

unsigned long
pt_py_thread_ident(void)
{
    return thread_ident;
}

void
pt_py_clear_interrupt(void)
{
    PyThreadState_SetAsyncExc(thread_ident, NULL);
}

void
pt_py_interrupt(unsigned long ident)
{
    PyObject *exc = PyExc_TimeoutError;
    PyThreadState_SetAsyncExc(ident, exc);
}

/* ---- CLI helpers ----------------------------------------------------------------------- */

int
pt_py_check_syntax(const char *source, size_t len, const char *filename, char *err, size_t errsz)
{
    int rc = 0;
    if (start_interpreter() != 0) {
        snprintf(err, errsz, "cannot start Python");
        return PT_EPY;
    }
    PyGILState_STATE gs = PyGILState_Ensure();
    if (strlen(source) != len) {
        snprintf(err, errsz, "the script contains a NUL byte");
        PyGILState_Release(gs);
        return PT_ESYNTAX;
    }
    PyObject *code = Py_CompileString(source, filename, Py_file_input);
    if (code != NULL) {
        Py_DECREF(code);
        goto done;
    }
    rc = PT_ESYNTAX;
    PyObject *exc = pt_py_fetch_exc();
    PyObject *lineno = exc ? PyObject_GetAttrString(exc, "lineno") : NULL;
    PyObject *msg = exc ? PyObject_GetAttrString(exc, "msg") : NULL;
    PyErr_Clear();
    if (lineno != NULL && PyLong_Check(lineno) && msg != NULL && PyUnicode_Check(msg))
        snprintf(err, errsz, "line %ld: %s", PyLong_AsLong(lineno), PyUnicode_AsUTF8(msg));
    else if (exc != NULL) {
        PyObject *s = PyObject_Str(exc);
        snprintf(err, errsz, "%s", s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "error");
        Py_XDECREF(s);
    }
    PyErr_Clear();
    Py_XDECREF(lineno);
    Py_XDECREF(msg);
    Py_XDECREF(exc);
done:
    PyGILState_Release(gs);
    return rc;
}

/* Writes all of text to fd (-1: nowhere); errors are ignored (the text is on stderr too). */
static void
write_all(int fd, const char *text, size_t n)
{
    while (fd >= 0 && n > 0) {
        ssize_t w = write(fd, text, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        text += w;
        n -= (size_t)w;
    }
}

/* The exit status of the SystemExit being raised (cleared), written to err_fd when not 0. */
static int
system_exit_status(int err_fd)
{
    PyObject *exc = pt_py_fetch_exc();
    PyObject *code = exc != NULL ? PyObject_GetAttrString(exc, "code") : NULL;
    int status = 1;

    if (code == NULL || code == Py_None) {
        status = 0;
    } else if (PyLong_Check(code)) {
        status = (int)PyLong_AsLong(code);
    } else {
        PyObject_Print(code, stderr, Py_PRINT_RAW);
        fputc('\n', stderr);
    }
    if (status != 0) {
        PyObject *s = code != NULL ? PyObject_Str(code) : NULL;
        char line[512];
        int n = snprintf(line, sizeof line, "SystemExit: %s",
                         s != NULL && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "?");
        write_all(err_fd, line,
                  n > 0 ? ((size_t)n < sizeof line ? (size_t)n : sizeof line - 1) : 0);
        Py_XDECREF(s);
    }
    Py_XDECREF(code);
    Py_XDECREF(exc);
    PyErr_Clear();
    return status;
}

/* Prints the raised exception's traceback on sys.stderr, as Python does, and writes it to
 * err_fd. Clears it. */
static void
report_exception(int err_fd)
{
    PyObject *exc = pt_py_fetch_exc();
    PyObject *text =
        exc != NULL ? PyObject_CallMethod(pt_pyg.prelude, "format_run_exc", "O", exc) : NULL;

    if (text != NULL && PyUnicode_Check(text)) {
        Py_ssize_t n = 0;
        const char *t = PyUnicode_AsUTF8AndSize(text, &n);
        if (t != NULL) {
            PySys_FormatStderr("%U\n", text);
            write_all(err_fd, t, (size_t)n);
        }
    } else {
        PyErr_Clear();
        PySys_WriteStderr("error: the script raised an exception (no traceback available)\n");
        write_all(err_fd, "the script raised an exception (no traceback available)", 55);
    }
    Py_XDECREF(text);
    Py_XDECREF(exc);
    PyErr_Clear();
}

/* The globals a run's script starts with (new reference; NULL with an error set): pq, st and
 * RUN_CONTEXT, as a background run in Peliqan has them (prelude.script_globals). */
static PyObject *
run_globals(PyObject *pq)
{
    return PyObject_CallMethod(pt_pyg.prelude, "script_globals", "Os", pq, "scheduled_run");
}

int
pt_py_run(const pt_py_run_spec *spec)
{
    pt_script_ref ref = {spec->name, spec->version, spec->source, spec->source_len, spec->id};

    if (spec->path != NULL) {
        FILE *f = fopen(spec->path, "rb");
        if (f == NULL) {
            fprintf(stderr, "error: cannot open %s: %s\n", spec->path, strerror(errno));
            return 1;
        }
        fclose(f);
    }
    if (start_interpreter() != 0)
        return 1;
    PyGILState_STATE gs = PyGILState_Ensure();
    int status = 1;
    if (pt_py_runtime_setup(spec->datadir) != 0) {
        pt_py_log_exception("cannot set up the runtime");
        goto done;
    }
    if (spec->path == NULL)
        pt_py_process_script = &ref; /* pq.INTERFACE_ID, pq.get_state() */
    PyObject *sysargv = PyList_New(0);
    for (int i = 0; sysargv != NULL && i < spec->argc; i++) {
        PyObject *a = PyUnicode_DecodeFSDefault(spec->argv[i]);
        if (a == NULL || PyList_Append(sysargv, a) != 0) {
            Py_XDECREF(a);
            break;
        }
        Py_DECREF(a);
    }
    if (sysargv != NULL)
        PySys_SetObject("argv", sysargv);
    Py_XDECREF(sysargv);
    /* Output goes to a pipe (cli_run.c records it): keep it flowing line by line. */
    PyObject *tmp = PyObject_CallMethod(pt_pyg.prelude, "line_buffered_output", NULL);
    Py_XDECREF(tmp);
    PyErr_Clear();

    PyObject *runpy = PyImport_ImportModule("runpy");
    PyObject *pq = PyImport_ImportModule("pq");
    PyObject *init = pq != NULL ? run_globals(pq) : NULL;
    PyObject *res = NULL;
    if (runpy != NULL && init != NULL && spec->path != NULL)
        res = PyObject_CallMethod(runpy, "run_path", "sOs", spec->path, init, "__main__");
    else if (init != NULL)
        res = PyObject_CallMethod(pt_pyg.prelude, "run_stored_script", "sis#O", spec->name,
                                  spec->version, spec->source, (Py_ssize_t)spec->source_len, init);
    if (res != NULL)
        status = 0;
    else if (PyErr_ExceptionMatches(PyExc_SystemExit))
        status = system_exit_status(spec->error_fd);
    else
        report_exception(spec->error_fd);
    Py_XDECREF(res);
    Py_XDECREF(init);
    Py_XDECREF(pq);
    Py_XDECREF(runpy);
done:
    tmp = PyObject_CallMethod(pt_pyg.prelude, "flush_print", NULL);
    Py_XDECREF(tmp);
    PyErr_Clear();
    fflush(stdout);
    pt_py_process_script = NULL;
    PyGILState_Release(gs);
    return status;
}

int
pt_py_run_file(const char *datadir, const char *path, int argc, char **argv)
{
    pt_py_run_spec spec = {
        .datadir = datadir, .path = path, .argc = argc, .argv = argv, .error_fd = -1};

    return pt_py_run(&spec);
}
