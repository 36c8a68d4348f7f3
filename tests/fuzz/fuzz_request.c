/* fuzz_request.c - libFuzzer target for building the request handlers see (py/request.c and
 * the prelude's form, multipart, query and Flask-style parsing), in the embedded interpreter
 * started once as a worker starts it.
 *
 * Input, fields up to '\n': method, path, query string, Content-Type, header lines "name:value"
 * up to an empty line, then the body (the rest). The path's first two segments become route
 * parameters. Properties: the request dict is always built (a client cannot make it fail);
 * every field has its documented type; every header is found under its own name and its lower
 * case (ASCII) spelling; form fields appear only for form bodies; the Flask-style request builds,
 * its `json` fails only with BadRequest and get_data() never fails. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_py.h"

#define MAX_HEADERS 64

static const char checker[] =
    "import _portico_prelude as P\n"
    "FIELDS = {'method': str, 'url': str, 'path': str, 'query_string': str,\n"
    "          'headers': P.Headers, 'data': str, 'form': dict, 'body': bytes, 'params': dict,\n"
    "          'query': dict, 'auth': type(None), 'remote_addr': str, 'request_id': str}\n"
    "def strs(d):\n"
    "    return all(isinstance(k, str) and isinstance(v, str) for k, v in d.items())\n"
    "def check(d, is_form):\n"
    "    assert set(d) == set(FIELDS), sorted(d)\n"
    "    for k, t in FIELDS.items():\n"
    "        assert type(d[k]) is t, (k, type(d[k]))\n"
    "    h = d['headers']\n"
    "    for k, v in h.items():\n"
    "        assert isinstance(k, str) and isinstance(v, str)\n"
    "        low = k.translate(P._ASCII_LOWER)\n"
    "        assert h[k] == v and h.get(low) == v and low in h, k\n"
    "    assert strs(d['form']) and strs(d['query']) and strs(d['params'])\n"
    "    if not is_form:\n"
    "        assert d['form'] == {}\n"
    "        assert d['data'] == d['body'].decode('utf-8', 'replace')\n"
    "    r = P.FlaskRequest(d)\n"
    "    try:\n"
    "        r.json\n"
    "    except P.BadRequest:\n"
    "        pass\n"
    "    assert isinstance(r.get_data(), dict)\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static PyObject *check;
    pt_fuzz_in in = {data, size};
    pt_header headers[MAX_HEADERS];
    pt_request req;
    size_t len;

    if (check == NULL) {
        pt_fuzz_py_start();
        check = pt_fuzz_py_func(checker, "check");
    }
    /* A copy, so that a read past any field is an ASan report at the end of the input. */
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    in.p = copy;

    memset(&req, 0, sizeof req);
    req.method.p = pt_fuzz_field(&in, &req.method.n);
    req.path.p = pt_fuzz_field(&in, &req.path.n);
    req.query.p = pt_fuzz_field(&in, &req.query.n);
    req.content_type.p = pt_fuzz_field(&in, &req.content_type.n);
    req.url = req.path;
    req.remote_addr = (pt_str){"127.0.0.1", 9};
    strcpy(req.id, "fuzz-1");
    req.headers = headers;
    while (in.n > 0 && req.nheaders < MAX_HEADERS) {
        const char *line = pt_fuzz_field(&in, &len);
        if (len == 0)
            break;
        const char *colon = memchr(line, ':', len);
        size_t nlen = colon != NULL ? (size_t)(colon - line) : len;
        headers[req.nheaders].name = (pt_str){line, nlen};
        headers[req.nheaders++].value =
            colon != NULL ? (pt_str){colon + 1, len - nlen - 1} : (pt_str){line + len, 0};
    }
    if (req.content_type.n > 0 && req.nheaders < MAX_HEADERS)
        headers[req.nheaders++] = (pt_header){{"content-type", 12}, req.content_type};
    req.body.p = (const char *)in.p;
    req.body.n = in.n;
    /* Route parameters: the path's first two segments, as a /{a}/{b} route would capture. */
    static const char *names[] = {"a", "b"};
    const char *p = req.path.p, *end = req.path.p + req.path.n;
    while (p < end && req.nparams < 2) {
        if (*p == '/') {
            p++;
            continue;
        }
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *stop = slash != NULL ? slash : end;
        req.params[req.nparams] = (pt_route_param){names[req.nparams], 1, p, (size_t)(stop - p)};
        req.nparams++;
        p = stop;
    }

    PyObject *d = pt_py_request_dict(&req);
    if (d == NULL) {
        PyErr_Print();
        abort();
    }
    static const char url[] = "application/x-www-form-urlencoded", mp[] = "multipart/form-data";
    int is_form = req.body.n > 0 && ((req.content_type.n >= sizeof url - 1 &&
                                      strncasecmp(req.content_type.p, url, sizeof url - 1) == 0) ||
                                     (req.content_type.n >= sizeof mp - 1 &&
                                      strncasecmp(req.content_type.p, mp, sizeof mp - 1) == 0));
    PyObject *ok = PyObject_CallFunction(check, "Oi", d, is_form);
    if (ok == NULL) {
        PyErr_Print();
        abort();
    }
    Py_DECREF(ok);
    Py_DECREF(d);
    free(copy);
    return 0;
}
