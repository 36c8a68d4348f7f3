/* fuzz_py.h - the embedded interpreter for the fuzz targets of src/py/ (like src/py/, these
 * see Python.h): started once per process as a worker starts it, plus a helper that runs a
 * piece of Python checking code and returns one of its functions. */
#ifndef PT_FUZZ_PY_H
#define PT_FUZZ_PY_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "py/py.h"
#include "py/py_int.h"

/* Embedded CPython keeps its allocations until exit by design (as in .ci/run's sanitizer
 * pass): no leak report at exit. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
    return "detect_leaks=0";
}

/* Starts the handler runtime in a fresh temporary data dir, once; the caller then holds the
 * GIL for good (the fuzz loop is single-threaded). Aborts when Python cannot start. */
static inline void
pt_fuzz_py_start(void)
{
    static char dir[64];
    if (dir[0] != '\0')
        return;
    snprintf(dir, sizeof dir, "/tmp/portico-fuzz-py.XXXXXX");
    if (mkdtemp(dir) == NULL || pt_py_init_worker(dir) != 0)
        abort();
    pt_py_gil_acquire();
}

/* Runs source (Python defining functions) in a fresh module namespace and returns its function
 * `name`, a new reference. Aborts on any error: the checking code itself is wrong. */
static inline PyObject *
pt_fuzz_py_func(const char *source, const char *name)
{
    PyObject *ns = PyDict_New(), *ret = NULL, *fn = NULL;
    if (ns != NULL && PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) == 0)
        ret = PyRun_String(source, Py_file_input, ns, ns);
    if (ret != NULL)
        fn = PyDict_GetItemString(ns, name); /* borrowed */
    if (fn == NULL) {
        PyErr_Print();
        abort();
    }
    Py_INCREF(fn);
    Py_DECREF(ret);
    Py_DECREF(ns);
    return fn;
}

#endif
