"""What a hostile client or a misbehaving handler must not be able to do to a worker: hang it,
crash it, leak into other requests, inject response headers, or see a credential in the log.
Each test pins a defect found in review."""
import os
import re
import socket
import threading
import time

import pytest
import requests

from conftest import assert_json_error, wait_marks

FAST = "def handler(request):\n    return {'ok': True}\n"


def marking(body):
    """A handler that first appends a line to the file named by its `mark` query parameter
    (so that a test can wait until it runs), then does `body` (indented source)."""
    return ("import time\n\ndef handler(request):\n"
            "    with open(request['query']['mark'], 'a') as f:\n"
            "        f.write('started\\n')\n" + body)


def test_every_thread_stuck_replaces_the_worker(portico, server):
    # One thread per worker, one runner thread (--max-threads 1), handlers that never
    # return: the first hangs a pool thread, the second the only runner; with every runner
    # stuck the next ones run on the pool, which starts replacement threads up to its cap,
    # then answers what it holds (504, or 503 for a request that was still waiting for a
    # thread) and is replaced.
    # Each request starts only once the previous handler runs: the pool grows to its cap of 4
    # threads, all stuck. The fifth request then waits in the listening socket's queue (no
    # thread polls it), and the replacement worker runs it and times it out in turn.
    portico.publish("hang", marking("    time.sleep(1000)\n"))
    portico.publish("fast", FAST)
    s = server("--threads", "1", "--max-threads", "1", "--timeout", "1", workers=1)
    mark = os.path.join(portico.scratch, "hang.marks")
    results = []

    def call():
        try:
            results.append(requests.get(s.url + "/hang", params={"mark": mark},
                                        timeout=15).status_code)
        except requests.RequestException as e:
            results.append(type(e).__name__)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for i, t in enumerate(threads):
        t.start()
        wait_marks(mark, i + 1)
    for t in threads:
        t.join(20)
    assert results == [504] * 5, results
    assert s.wait_log(r"threads are stuck in handlers; replacing the worker", timeout=5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if requests.get(s.url + "/fast", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.1)
    assert requests.get(s.url + "/fast", timeout=2).status_code == 200


def test_no_stale_timeout_error_in_later_requests(portico, server):
    # Handlers finishing right at the timeout must not leave a TimeoutError that fires in
    # the next request of the same thread.
    portico.publish("edge", "import time\n\ndef handler(request):\n"
                            "    time.sleep(0.2)\n    return 'late'\n")
    portico.publish("fast", FAST)
    s = server("--threads", "1", "--timeout", "0.2", workers=1)
    session = requests.Session()
    for _ in range(15):
        r = session.get(s.url + "/edge", timeout=5)
        assert r.status_code in (200, 504)
        for _ in range(10):
            assert session.get(s.url + "/fast", timeout=5).status_code == 200


def test_response_headers_cannot_be_injected(portico, server):
    portico.publish("redirect", "def handler(request):\n"
                                "    return '', 302, {'Location': request['query']['next']}\n")
    portico.publish("passthru", "def handler(request):\n"
                                "    return 'hello', 200, {'Content-Length': '999',\n"
                                "        'Transfer-Encoding': 'chunked', 'Connection': 'close',\n"
                                "        'X-Partner': 'kept'}\n")
    s = server()
    r = requests.get(s.url + "/redirect", params={"next": "/home\x00Set-Cookie\x00x=1"},
                     allow_redirects=False, timeout=5)
    assert "Set-Cookie" not in r.headers
    assert_json_error(r, 500)
    r = requests.get(s.url + "/passthru", timeout=5)
    assert r.status_code == 200 and r.text == "hello"
    assert r.headers["Content-Length"] == "5"
    assert "Transfer-Encoding" not in r.headers
    assert r.headers["X-Partner"] == "kept"


def test_forked_child_exit_does_not_answer_for_the_worker(portico, server):
    portico.publish("forker", "import os\n\ndef handler(request):\n"
                              "    pid = os.fork()\n"
                              "    if pid == 0:\n"
                              "        os._exit(0)\n"
                              "    os.waitpid(pid, 0)\n"
                              "    return {'parent': True}\n")
    s = server(workers=1)
    session = requests.Session()
    for _ in range(3):
        r = session.get(s.url + "/forker", timeout=5)
        assert r.status_code == 200 and r.json() == {"parent": True}
    assert not re.search(r"exited because a handler called os._exit", s.log)


def test_webhook_token_never_logged_whatever_the_path(portico, server):
    token = portico.cli("webhook", "url").stdout.strip().rsplit("/", 1)[1]
    s = server()
    for path in (f"//webhook/{token}", f"/webhook//{token}", f"/x/webhook/{token}/y"):
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            c.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                      f"Connection: close\r\n\r\nx".encode())
            answer = b""
            while chunk := c.recv(4096):
                answer += chunk
        # None of these is the inbox URL: "/webhook/" must begin the path, with the token next.
        assert answer.startswith(b"HTTP/1.1 404 "), (path, answer[:200])
    # The access log is written once per loop iteration: wait for the three lines, then look.
    deadline = time.monotonic() + 5
    while True:
        lines = [l for l in s.log.splitlines()
                 if all(w in l for w in ("ACCESS", "POST", "webhook/", "status=404"))]
        if len(lines) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(lines) == 3, lines
    assert all("{token}" in l for l in lines), lines
    assert token not in s.log


@pytest.mark.load
def test_concurrent_large_bodies_do_not_crash_a_worker(portico, server):
    # Bodies are held in memory by the HTTP parser before routing: many of them at once must
    # not take a worker down (the memory budget applies to Python's heap, not to the process).
    s = server("--max-body", "10", workers=1)
    body = b"x" * (9 << 20)
    statuses = []

    def post():
        try:
            statuses.append(requests.post(s.url + "/nowhere", data=body, timeout=30).status_code)
        except requests.RequestException as e:
            statuses.append(type(e).__name__)

    threads = [threading.Thread(target=post) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses.count(404) == 40, [x for x in statuses if x != 404]
    assert "killed by signal" not in s.log


def test_unknown_multipart_charset_is_not_a_server_error(portico, server):
    portico.publish("form", "def handler(request):\n    return request['form']\n",
                    methods="POST")
    s = server()
    body = ("--b\r\nContent-Disposition: form-data; name=\"a\"\r\n"
            "Content-Type: text/plain; charset=klingon\r\n\r\nqapla\r\n--b--\r\n")
    r = requests.post(s.url + "/form", data=body.encode(), timeout=5,
                      headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 200 and r.json() == {"a": "qapla"}


def test_processes_attaching_a_new_schema_at_once(portico):
    # Several processes writing first into the same new schema race to create its file and
    # switch it to WAL; none may fail, and none may leave its connection unable to attach.
    import subprocess
    start = time.time() + 1.0
    script = portico.write("race.py", f"""
import time
time.sleep(max(0, {start} - time.time()))
db = pq.dbconnect('dw')
import sys
n = int(sys.argv[1])
db.write('racing', 'rows', [{{'id': n, 'who': 'p%d' % n}}], pk='id')
db.write('racing2', 'rows', [{{'id': n}}], pk='id')
print('ok', n)
""")
    env = dict(os.environ)
    procs = [subprocess.Popen([os.environ.get("PORTICO_BIN", "build/portico"), "--data",
                               portico.data, "run", script, str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for i in range(6)]
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
        assert out.decode().strip() == f"ok {i}"
    rows = portico.cli("db", "query", "dw", "SELECT count(*) AS n FROM racing.rows",
                       "--json").stdout
    assert '"n": 6' in rows


def test_signed_webhooks_survive_a_master_key_rotation(portico, server):
    import hashlib
    import hmac
    portico.cli("secret", "set", "gh", input="s3cret\n")
    portico.cli("webhook", "source", "add", "gh", "--verify", "github", "--secret", "gh")
    s = server(workers=1)
    token = portico.cli("webhook", "url").stdout.strip().rsplit("/", 1)[1]
    body = b'{"a": 1}'
    sig = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()

    def post():
        return requests.post(f"{s.url}/webhook/{token}/gh", data=body, timeout=5,
                             headers={"X-Hub-Signature-256": sig})

    assert post().status_code == 200
    portico.cli("secret", "rotate-master")
    assert post().status_code == 200


def test_handlers_see_host_and_content_length_as_under_flask(portico, server):
    portico.publish("hd", "def handler(request):\n    return dict(request['headers'])\n",
                    methods="GET,POST")
    portico.publish("fl", "def handler():\n"
                          "    return [request.headers['Host'],\n"
                          "            request.headers.get('Content-Length')]\n",
                    methods="GET,POST")
    s = server()
    h = requests.post(s.url + "/hd", data=b"abc", timeout=5).json()
    assert h["Host"] == f"127.0.0.1:{s.port}" and h["Content-Length"] == "3"
    assert requests.get(s.url + "/fl", timeout=5).json() == [f"127.0.0.1:{s.port}", None]


def test_uncommon_status_codes_keep_their_reason(portico, server):
    portico.publish("s203", "def handler(request):\n    return 'x', 203\n")
    s = server()
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
        c.sendall(b"GET /s203 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = c.recv(4096).split(b"\r\n", 1)[0]
    assert head == b"HTTP/1.1 203 Non-Authoritative Information"


def test_pool_grows_while_every_thread_blocks(portico, server):
    # One worker, one thread to start with: three handlers sleeping at once must not hold up
    # a fast request; the pool grows (up to 4 x --threads) instead.
    portico.publish("nap", marking("    time.sleep(0.8)\n    return 'rested'\n"))
    portico.publish("fast", FAST)
    s = server("--threads", "1", workers=1)
    mark = os.path.join(portico.scratch, "nap.marks")
    results = []

    def nap():
        results.append(requests.get(s.url + "/nap", params={"mark": mark},
                                    timeout=10).status_code)

    threads = [threading.Thread(target=nap) for _ in range(3)]
    for t in threads:
        t.start()
    wait_marks(mark, 3)                 # every thread there was is in a handler now
    t0 = time.monotonic()
    assert requests.get(s.url + "/fast", timeout=5).status_code == 200
    assert time.monotonic() - t0 < 0.4
    for t in threads:
        t.join(10)
    assert results == [200, 200, 200]
