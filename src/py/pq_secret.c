/* pq_secret.c - pq.get_secret(name): a value of the encrypted secret store (auth/secrets.h) as
 * a str, and pq.SecretNotFound, raised for an unknown name (a pq.Error and a KeyError, so
 * `except KeyError` works as it does with a dict of secrets).
 *
 * The store and the master key are opened on first use and kept for the life of the process
 * (a worker, or `portico run`); every call holds the GIL, which serialises their use. Each
 * call reads the store, so `portico secret set` takes effect on the next call. The value is
 * decrypted into sodium memory, copied into the str and wiped; it never appears in an
 * exception message or a log line. */
#include "py/py_int.h"

#include <string.h>

#include "auth/secrets.h"
#include "core/err.h"
#include "store/store.h"

static pt_store *store;            /* owned; opened on first use */
static pt_secrets *secrets;        /* owned; reopened when the master key was rotated */
static PyObject *secret_not_found; /* pq.SecretNotFound */

int
pt_py_pq_secret_setup(PyObject *module)
{
    PyObject *base = PyObject_GetAttrString(module, "Error");
    PyObject *dict = NULL, *bases = NULL, *str = NULL;
    int rc = -1;

    if (base == NULL)
        return -1;
    /* KeyError's str() shows the repr of its argument; ours reads as a sentence. */
    str = PyObject_GetAttrString(PyExc_Exception, "__str__");
    dict = str != NULL ? Py_BuildValue("{s:O}", "__str__", str) : NULL;
    bases = PyTuple_Pack(2, base, PyExc_KeyError);
    if (dict == NULL || bases == NULL)
        goto done;
    Py_XDECREF(secret_not_found);
    secret_not_found = PyErr_NewExceptionWithDoc(
        "pq.SecretNotFound", "Raised by pq.get_secret() for a name the secret store lacks.", bases,
        dict);
    if (secret_not_found == NULL)
        goto done;
    rc = PyModule_AddObjectRef(module, "SecretNotFound", secret_not_found);
done:
    Py_XDECREF(bases);
    Py_XDECREF(dict);
    Py_XDECREF(str);
    Py_DECREF(base);
    return rc;
}

/* Raises pq.Error (looked up on the module) with message. */
static void
raise_pq_error(PyObject *module, const char *message)
{
    PyObject *err = PyObject_GetAttrString(module, "Error");

    PyErr_Clear();
    PyErr_SetString(err != NULL ? err : PyExc_RuntimeError, message);
    Py_XDECREF(err);
}

/* Opens what get_secret needs; returns 0 or -1 with pq.Error set. */
static int
open_store(PyObject *module, int reopen_keys)
{
    char err[1024];

    if (store == NULL && pt_store_open(pt_py_datadir, &store, err, sizeof err) != 0) {
        raise_pq_error(module, err);
        return -1;
    }
    if (reopen_keys) {
        pt_secrets_close(secrets);
        secrets = NULL;
    }
    if (secrets == NULL && pt_secrets_open(pt_py_datadir, &secrets, err, sizeof err) != 0) {
        raise_pq_error(module, err);
        return -1;
    }
    return 0;
}

PyObject *
pt_py_pq_get_secret(PyObject *module, PyObject *args)
{
    const char *name;
    char err[1024], *value = NULL;
    size_t len = 0;
    int rc;

    if (!PyArg_ParseTuple(args, "s:get_secret", &name))
        return NULL;
    if (open_store(module, 0) != 0)
        return NULL;
    rc = pt_secrets_get(secrets, store, name, &value, &len, err, sizeof err);
    if (rc == PT_EINVAL) {
        /* Sealed under a key this process does not hold: `secret rotate-master` ran since it
         * loaded the key. Load it again and retry once. */
        if (open_store(module, 1) != 0)
            return NULL;
        rc = pt_secrets_get(secrets, store, name, &value, &len, err, sizeof err);
    }
    if (rc == PT_ENOTFOUND) {
        PyErr_Format(secret_not_found != NULL ? secret_not_found : PyExc_KeyError,
                     "no secret named '%s' (add it with 'portico secret set')", name);
        return NULL;
    }
    if (rc != 0) {
        raise_pq_error(module, err);
        return NULL;
    }
    PyObject *s = PyUnicode_DecodeUTF8(value, (Py_ssize_t)len, "strict");
    pt_secrets_value_free(value);
    if (s == NULL)
        raise_pq_error(module, "the secret is not UTF-8 text");
    return s;
}
