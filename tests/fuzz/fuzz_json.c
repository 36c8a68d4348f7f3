/* fuzz_json.c - libFuzzer target for the JSON writer (core/json.c through py/response.c's
 * pt_py_json_dump, which turns what a handler returns into the response body), checked against
 * Python's own json module.
 *
 * Input: bytes a small Python decoder (below) turns into a value: None, bools, ints of any
 * size, floats from raw bits (NaN and infinities too), str with lone surrogates, bytes, lists,
 * tuples, dicts with str/int/float/bool/None keys, dates and Decimals, nested. Properties: the
 * writer's output is UTF-8 and exactly what json.dumps(ensure_ascii=False) writes for the value
 * (bytes as base64, dates in ISO 8601, lone surrogates replaced as documented); it parses with
 * json.loads and equals the value; a refusal is ValueError (too deep, too many digits). */
#include <stdlib.h>

#include "core/buf.h"
#include "fuzz.h"
#include "fuzz_py.h"

static const char checker[] =
    "import base64, datetime, decimal, json, math, struct, sys\n"
    /* enc() below takes two frames per level of the 512 the writer accepts. */
    "sys.setrecursionlimit(4000)\n"
    "class In:\n"
    "    def __init__(self, b): self.b, self.i = b, 0\n"
    "    def byte(self):\n"
    "        if self.i >= len(self.b): return 0\n"
    "        self.i += 1\n"
    "        return self.b[self.i - 1]\n"
    "    def take(self, n):\n"
    "        s = self.b[self.i:self.i + n]\n"
    "        self.i += len(s)\n"
    "        return s\n"
    "def key(inp):\n"
    "    t = inp.byte() % 6\n"
    "    if t == 0: return inp.take(inp.byte() % 8).decode('utf-8', 'surrogateescape')\n"
    "    if t == 1: return int.from_bytes(inp.take(inp.byte() % 12), 'little', signed=True)\n"
    "    if t == 2: return struct.unpack('<d', inp.take(8).ljust(8, b'\\0'))[0]\n"
    "    return (True, False, None)[t - 3]\n"
    "def value(inp, depth):\n"
    "    t = inp.byte() % 14\n"
    "    if t == 0: return None\n"
    "    if t == 1: return inp.byte() & 1 == 1\n"
    "    if t == 2: return int.from_bytes(inp.take(1), 'little', signed=True)\n"
    "    if t == 3: return int.from_bytes(inp.take(8), 'little', signed=True)\n"
    "    if t == 4: return int.from_bytes(inp.take(inp.byte()), 'little', signed=True)\n"
    "    if t == 5: return struct.unpack('<d', inp.take(8).ljust(8, b'\\0'))[0]\n"
    "    if t == 6: return inp.take(inp.byte() % 64).decode('utf-8', 'surrogateescape')\n"
    "    if t == 7: return inp.take(inp.byte() % 64).decode('utf-8', 'replace')\n"
    "    if t == 8: return inp.take(inp.byte() % 32)\n"
    "    if t == 9:\n"
    "        n = inp.byte() % 6\n"
    "        return datetime.date(2000 + n, 1 + n, 1 + n) if inp.byte() & 1 else \\\n"
    "            datetime.datetime(1999, 12, 31, n, 59, 59, n * 1000)\n"
    "    if t == 10:\n"
    "        try:\n"
    "            d = decimal.Decimal(inp.take(inp.byte() % 16).decode('ascii', 'replace'))\n"
    "        except decimal.InvalidOperation:\n"
    "            return None\n"
    "        return d\n"
    "    if depth > 600: return None\n"
    "    if t == 11: return [value(inp, depth + 1) for _ in range(inp.byte() % 5)]\n"
    "    if t == 12: return tuple(value(inp, depth + 1) for _ in range(inp.byte() % 5))\n"
    "    return {key(inp): value(inp, depth + 1) for _ in range(inp.byte() % 5)}\n"
    "def build(b):\n"
    "    return value(In(b), 0)\n"
    /* What the writer promises to write for a scalar v, in terms json.dumps understands. */
    "def expect(v):\n"
    "    if isinstance(v, str): return v.encode('utf-8', 'replace').decode('utf-8')\n"
    "    if isinstance(v, bytes): return base64.b64encode(v).decode('ascii')\n"
    "    if isinstance(v, (datetime.date, datetime.time)): return v.isoformat()\n"
    "    if isinstance(v, decimal.Decimal):\n"
    "        if v.is_nan(): return math.nan\n"
    "        return float(v) if v.is_infinite() else json.loads(str(v))\n"
    "    return v\n"
    /* The text json.dumps(ensure_ascii=False) would write (decimals aside: their digits). */
    "def enc(v):\n"
    "    if isinstance(v, (list, tuple)): return '[' + ', '.join(enc(x) for x in v) + ']'\n"
    "    if isinstance(v, dict):\n"
    "        return '{' + ', '.join(json.dumps({expect(k): 0}, ensure_ascii=False)[1:-4] +\n"
    "                               ': ' + enc(x) for k, x in v.items()) + '}'\n"
    "    if isinstance(v, decimal.Decimal) and v.is_finite(): return str(v)\n"
    "    return json.dumps(expect(v), ensure_ascii=False)\n"
    /* Values JSON holds as they are: the output must load back equal to them. */
    "def plain(v):\n"
    "    if isinstance(v, str): return expect(v) == v\n"
    "    if isinstance(v, list): return all(plain(x) for x in v)\n"
    "    if isinstance(v, dict): return all(isinstance(k, str) and plain(k) and plain(x)\n"
    "                                       for k, x in v.items())\n"
    "    return v is None or isinstance(v, (bool, int, float))\n"
    "def same(a, b):\n"
    "    if isinstance(a, float) and isinstance(b, float) and math.isnan(a): return math.isnan(b)\n"
    "    if isinstance(a, list): return isinstance(b, list) and len(a) == len(b) and \\\n"
    "        all(same(x, y) for x, y in zip(a, b))\n"
    "    if isinstance(a, dict): return isinstance(b, dict) and len(a) == len(b) and \\\n"
    "        all(k in b and same(x, b[k]) for k, x in a.items())\n"
    "    return type(a) == type(b) and a == b\n"
    "def check(v, out):\n"
    "    text = out.decode('utf-8')\n"
    "    back = json.loads(text)\n"
    "    want = enc(v)\n"
    "    assert text == want, (text, want)\n"
    "    assert not plain(v) or same(v, back), (v, back)\n"
    "def refused(v, exc):\n"
    "    assert isinstance(exc, ValueError), repr(exc)\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static PyObject *build, *check, *refused;
    pt_buf b;

    if (build == NULL) {
        pt_fuzz_py_start();
        build = pt_fuzz_py_func(checker, "build");
        check = pt_fuzz_py_func(checker, "check");
        refused = pt_fuzz_py_func(checker, "refused");
    }
    PyObject *v = PyObject_CallFunction(build, "y#", (const char *)data, (Py_ssize_t)size);
    if (v == NULL) {
        PyErr_Print();
        abort();
    }
    pt_buf_init(&b, 0);
    PyObject *ok;
    if (pt_py_json_dump(&b, v) == 0) {
        ok = PyObject_CallFunction(check, "Oy#", v, b.data, (Py_ssize_t)b.len);
    } else {
        PyObject *exc = pt_py_fetch_exc();
        ok = exc != NULL ? PyObject_CallFunctionObjArgs(refused, v, exc, NULL) : NULL;
        Py_XDECREF(exc);
    }
    if (ok == NULL) {
        PyErr_Print();
        abort();
    }
    Py_DECREF(ok);
    Py_DECREF(v);
    pt_buf_free(&b);
    return 0;
}
