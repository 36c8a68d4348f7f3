"""Cancelled requests do not run (issue 14 section 3): a request whose client left (HTTP/1.1
socket closed, HTTP/2 stream reset) before its handler started is dropped from the queue and
logged with status 499; a handler whose client leaves while it runs sees pq.cancelled() turn
true and pq.Cancelled at its next pq call, and its answer is not sent."""

import os
import socket
import struct
import time

from conftest import wait_marks

SLEEPER = """
import time

def handler(request):
    with open({marks!r}, 'a') as f:
        f.write('ran\\n')
    time.sleep(0.2)
    return {{'ok': True}}
"""

WATCHER = """
import time

def handler(request):
    with open({marks!r}, 'a') as f:
        f.write('started\\n')
    deadline = time.monotonic() + 8
    while not pq.cancelled() and time.monotonic() < deadline:
        time.sleep(0.01)
    with open({marks!r}, 'a') as f:
        f.write('seen\\n' if pq.cancelled() else 'not seen\\n')
    try:
        pq.dbconnect(pq.DW_NAME)
    except pq.Cancelled:
        with open({marks!r}, 'a') as f:
            f.write('raised\\n')
        raise
    return {{'ok': True}}
"""


def count_lines(path, word):
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for line in f if line.strip() == word)


def wait_for(cond, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def access_statuses(srv, path):
    return [line.split(" status=")[1].split()[0] for line in srv.log.splitlines()
            if " ACCESS " in line and f" {path} " in line]


def test_http1_closed_clients_never_run(portico, server, tmp_path):
    marks = str(tmp_path / "marks")
    portico.publish("sleeper", SLEEPER.format(marks=marks))
    s = server("--workers", "1")
    n = 150
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(f"GET /sleeper HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n\r\n".encode())
        c.close()
    # Every request is accounted for in the access log: run (200) or dropped (499).
    assert wait_for(lambda: len(access_statuses(s, "/sleeper")) == n), \
        access_statuses(s, "/sleeper")
    statuses = access_statuses(s, "/sleeper")
    ran = count_lines(marks, "ran")
    assert ran <= n // 10, f"{ran} of {n} abandoned requests ran"
    # Those that ran found their client gone too: nobody was answered.
    assert statuses == ["499"] * n, statuses
    assert s.get("/_portico/health").status_code == 200


# ---------------------------------------------------------------- HTTP/2, raw frames

def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def hpack_literal(index, value):
    """A literal header field without indexing, its name from the static table."""
    v = value.encode()
    assert index < 15 and len(v) < 127
    return bytes([index]) + bytes([len(v)]) + v


def h2_get(stream, path, authority):
    block = (b"\x82"                       # :method GET
             + b"\x86"                     # :scheme http
             + hpack_literal(4, path)      # :path
             + hpack_literal(1, authority))  # :authority
    return frame(0x1, 0x5, stream, block)  # HEADERS, END_STREAM | END_HEADERS


def read_frames_until(sock, stream, timeout=15.0):
    """Reads frames until one on `stream` ends it; returns the frames seen [(type, flags, id)]."""
    sock.settimeout(timeout)
    buf = b""
    seen = []
    while True:
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            ftype, flags = buf[3], buf[4]
            sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            seen.append((ftype, flags, sid))
            buf = buf[9 + length:]
            if sid == stream and ftype in (0x0, 0x1) and flags & 0x1:
                return seen
            if ftype == 0x7:
                raise AssertionError(f"GOAWAY after {seen}")
        chunk = sock.recv(65536)
        assert chunk, f"connection closed; frames: {seen}"
        buf += chunk


def test_http2_reset_streams_never_run(portico, server, tmp_path):
    marks = str(tmp_path / "marks")
    portico.publish("sleeper", SLEEPER.format(marks=marks))
    portico.publish("fast", "def handler(request):\n    return {'fast': True}\n")
    s = server("--workers", "1")
    authority = f"127.0.0.1:{s.port}"
    c = socket.create_connection(("127.0.0.1", s.port))
    try:
        n = 300
        out = [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", frame(0x4, 0, 0)]
        for i in range(n):
            sid = 1 + 2 * i
            out.append(h2_get(sid, "/sleeper", authority))
            out.append(frame(0x3, 0, sid, struct.pack(">I", 0x8)))  # RST_STREAM CANCEL
        last = 1 + 2 * n
        out.append(h2_get(last, "/fast", authority))
        c.sendall(b"".join(out))
        # The last stream is answered once every stream before it has been dealt with.
        frames = read_frames_until(c, last)
        assert any(t == 0x1 and sid == last for t, _f, sid in frames)
    finally:
        c.close()
    ran = count_lines(marks, "ran")
    assert ran <= n // 20, f"{ran} of {n} reset streams ran"
    assert s.get("/_portico/health").status_code == 200


# ---------------------------------------------------------------- leaving while it runs

def test_handler_sees_client_leave(portico, server, tmp_path):
    marks = str(tmp_path / "marks")
    portico.publish("watcher", WATCHER.format(marks=marks))
    s = server("--workers", "1")
    c = socket.create_connection(("127.0.0.1", s.port))
    c.sendall(f"GET /watcher HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n\r\n".encode())
    wait_marks(marks, 1)
    c.close()
    assert wait_for(lambda: count_lines(marks, "raised") == 1), open(marks).read()
    assert count_lines(marks, "seen") == 1
    assert wait_for(lambda: access_statuses(s, "/watcher") == ["499"]), \
        access_statuses(s, "/watcher")


def test_client_that_stays_is_answered(portico, server, tmp_path):
    marks = str(tmp_path / "marks")
    portico.publish("sleeper", SLEEPER.format(marks=marks))
    s = server("--workers", "1")
    # A pipelined client and one that sends its request in pieces are not mistaken for gone.
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    try:
        req = f"GET /sleeper HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n\r\n".encode()
        c.sendall(req * 3)
        data = b""
        while data.count(b"HTTP/1.1 200") < 3:
            chunk = c.recv(65536)
            assert chunk, data
            data += chunk
    finally:
        c.close()
    assert count_lines(marks, "ran") == 3


def test_cancelled_is_a_base_exception(portico, cli):
    # `except Exception` in a script must not swallow it; outside a request from a client
    # (portico run) pq.cancelled() is False and pq calls run.
    script = portico.write("probe.py", """\
        print(issubclass(pq.Cancelled, BaseException), issubclass(pq.Cancelled, Exception),
              pq.cancelled(), pq.dbconnect('dw').fetch('dw', query='select 1 as x'))
        """)
    assert "True False False [{'x': 1}]" in cli("run", script).stdout
