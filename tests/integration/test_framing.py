"""Strict HTTP/1 framing (issue 14 section 4): ambiguous request heads answer 400 and close the
connection before any handler runs; the head-size limit holds while the head is read; what a
handler sees of percent-encoded paths and parameters and of non-UTF-8 bytes."""

import json
import os
import socket
import time

import pytest
import requests

from conftest import Handlers
from test_server import assert_raw_json_error, parse_response

H = Handlers()
H.add("echo", """
def handler(request):
    return {'path': request['path'], 'params': request['params'],
            'host': request['headers'].get('Host'), 'url': request['url'],
            'body': request['body'].decode('latin-1')}
""", methods="GET,POST")
H.add("files", """
def handler(request):
    return {'path': request['path'], 'params': request['params']}
""", path="/files/{name}")
srv = H.server_fixture()


def talk(port, data, timeout=5.0):
    """Sends data on one connection, then reads until the server closes it. Returns (bytes
    received, whether the server closed the connection within timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = b""
    deadline = time.monotonic() + timeout
    try:
        s.sendall(data)
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return got, False
            except ConnectionResetError:
                return got, True
            if not chunk:
                return got, True
            got += chunk
        return got, False
    finally:
        s.close()


def responses(data):
    """The HTTP responses in data, in order: a list of (status, headers, body)."""
    out = []
    while data:
        parsed = parse_response(data)
        assert parsed, f"partial response: {data[:300]!r}"
        out.append(parsed)
        head_len = data.index(b"\r\n\r\n") + 4
        data = data[head_len + len(parsed[2]):]
    return out


def assert_refused(srv, head, message_word):
    got, closed = talk(srv.port, head)
    rs = responses(got)
    assert len(rs) == 1, rs
    assert_raw_json_error(*rs[0], 400)
    assert message_word in json.loads(rs[0][2])["error"]
    assert rs[0][1].get("connection") == "close"
    assert closed, "the connection stayed open"


def host(srv):
    return f"Host: 127.0.0.1:{srv.port}\r\n"


def test_two_content_lengths_refused(srv):
    # Today the first one wins and the rest of the body is parsed as a second request.
    smuggled = b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
    head = (f"POST /echo HTTP/1.1\r\n{host(srv)}Content-Length: 3\r\n"
            f"Content-Length: {3 + len(smuggled)}\r\n\r\n").encode()
    assert_refused(srv, head + b"abc" + smuggled, "Content-Length")


def test_identical_content_lengths_accepted(srv):
    head = (f"POST /echo HTTP/1.1\r\n{host(srv)}Content-Length: 3\r\nContent-Length: 3\r\n"
            f"Connection: close\r\n\r\nabc").encode()
    got, _ = talk(srv.port, head)
    (status, _h, body), = responses(got)
    assert status == 200 and json.loads(body)["body"] == "abc"


def test_content_length_with_chunked_refused(srv):
    head = (f"POST /echo HTTP/1.1\r\n{host(srv)}Content-Length: 5\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n").encode()
    assert_refused(srv, head, "Transfer-Encoding")


def test_two_transfer_encodings_refused(srv):
    head = (f"POST /echo HTTP/1.1\r\n{host(srv)}Transfer-Encoding: gzip\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n").encode()
    assert_refused(srv, head, "Transfer-Encoding")


def test_obs_fold_refused(srv):
    # Today the handler sees a header named "".
    head = f"GET /echo HTTP/1.1\r\n{host(srv)}X-A: one\r\n  two\r\n\r\n".encode()
    assert_refused(srv, head, "obs-fold")


def test_missing_host_refused(srv):
    assert_refused(srv, b"GET /echo HTTP/1.1\r\n\r\n", "Host")


def test_http10_without_host_accepted(srv):
    got, _ = talk(srv.port, b"GET /echo HTTP/1.0\r\n\r\n")
    (status, _h, _b), = responses(got)
    assert status == 200


def test_duplicate_host_refused(srv):
    head = f"GET /echo HTTP/1.1\r\n{host(srv)}Host: evil.example\r\n\r\n".encode()
    assert_refused(srv, head, "Host")


def test_absolute_form_routed_by_path(srv):
    head = (b"GET http://api.example.com/echo?x=1 HTTP/1.1\r\nHost: other.example\r\n"
            b"Connection: close\r\n\r\n")
    got, _ = talk(srv.port, head)
    (status, _h, body), = responses(got)
    doc = json.loads(body)
    assert status == 200, body
    assert doc["path"] == "/echo"
    assert doc["host"] == "api.example.com"  # the target's authority replaces Host
    assert doc["url"] == "http://api.example.com/echo?x=1"


def test_absolute_form_without_path(srv):
    head = b"GET http://api.example.com HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    got, _ = talk(srv.port, head)
    (status, _h, _b), = responses(got)
    assert status == 404  # routed as "/": no endpoint there


def test_keepalive_after_good_request(srv):
    # Strictness does not cost a good client its connection.
    one = f"GET /echo HTTP/1.1\r\n{host(srv)}\r\n".encode()
    last = f"GET /echo HTTP/1.1\r\n{host(srv)}Connection: close\r\n\r\n".encode()
    got, closed = talk(srv.port, one * 3 + last)
    assert [r[0] for r in responses(got)] == [200, 200, 200, 200] and closed


# ---------------------------------------------------------------- head size, while reading

def worker_rss_kb(srv):
    """{pid: resident KiB} of the server's children. Compare the pids present in both of two
    readings: a spare or the node's sync process may start between them."""
    rss = {}
    for pid in srv.children():
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss[pid] = int(line.split()[1])
        except FileNotFoundError:
            pass
    return rss


def test_head_limit_enforced_while_reading(srv):
    # 32 KiB of headers and no end of head: the server must answer 431 without waiting for
    # the rest (today it buffers up to h2o's 400 KiB limit first).
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        s.sendall(f"GET /echo HTTP/1.1\r\n{host(srv)}X-Big: ".encode() + b"a" * (32 << 10))
        data = b""
        while not parse_response(data):
            chunk = s.recv(65536)
            assert chunk, "closed without an answer"
            data += chunk
        assert_raw_json_error(*parse_response(data), 431)
    finally:
        s.close()


@pytest.mark.load
def test_large_heads_do_not_grow_workers(srv):
    # Many 400 KiB heads at once: each is refused as soon as it passes the limit, so the
    # workers' memory stays where it was (h2o alone buffered each whole head: 200 of them grew
    # the workers by 67 MB).
    before = worker_rss_kb(srv)
    big = f"GET /echo HTTP/1.1\r\n{host(srv)}X-Big: ".encode() + b"b" * (400 << 10)
    socks = []
    for _ in range(128):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.setblocking(False)
        socks.append(s)
    sent = [0] * len(socks)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(n < len(big) for n in sent):
        for i, s in enumerate(socks):
            if sent[i] < len(big):
                try:
                    sent[i] += s.send(big[sent[i]:sent[i] + 65536])
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    sent[i] = len(big)
    statuses = []
    for s in socks:
        s.setblocking(True)
        s.settimeout(5)
        data = b""
        try:
            while not parse_response(data):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
        parsed = parse_response(data)
        statuses.append(parsed[0] if parsed else None)
    assert statuses.count(431) >= 120, statuses
    if os.environ.get("PORTICO_SANITIZED"):
        return  # ASan's quarantine holds freed memory: RSS says nothing about the server there
    after = worker_rss_kb(srv)
    grown_mb = sum(after[p] - before[p] for p in before if p in after) / 1024
    assert grown_mb < 16, f"workers grew by {grown_mb:.0f} MB"


def h2_frame(ftype, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + \
        stream.to_bytes(4, "big") + payload


def h2_read_goaway(sock, timeout=10.0):
    """Reads frames until GOAWAY; returns its error code, or None when the connection closed
    without one or a response (HEADERS) came instead."""
    sock.settimeout(timeout)
    buf = b""
    while True:
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            length, ftype = int.from_bytes(buf[:3], "big"), buf[3]
            payload, buf = buf[9:9 + length], buf[9 + length:]
            if ftype == 0x7:
                return int.from_bytes(payload[4:8], "big")
            if ftype == 0x1:
                return None
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        buf += chunk


def test_http2_header_block_limit_enforced_before_decoding(srv):
    # One 4000-byte header put in the HPACK table, then 300,000 one-byte references to it
    # (in CONTINUATION frames): 300 KB on the wire that decode to 1.2 GB of headers. The block
    # is refused before it is decoded: GOAWAY ENHANCE_YOUR_CALM (0xb), the workers' memory
    # stays where it was, and the server answers the next connection.
    before = worker_rss_kb(srv)
    authority = f"127.0.0.1:{srv.port}".encode()
    block = (b"\x82\x86" + b"\x04\x05/echo" + b"\x01" + bytes([len(authority)]) + authority
             + b"\x40\x05x-big\x7f" + bytes([0xA1, 0x1E]) + b"z" * 4000  # literal, indexed
             + b"\xbe" * 300000)                                     # index 62, 300,000 times
    chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
    frames = [h2_frame(0x1, 0x1, 1, chunks[0])]  # HEADERS, END_STREAM
    frames += [h2_frame(0x9, 0x4 if i == len(chunks) - 1 else 0, 1, c)  # CONTINUATION
               for i, c in enumerate(chunks[1:], 1)]
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(0x4, 0, 0))
        try:
            s.sendall(b"".join(frames))
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the client finished sending: read what it said
        assert h2_read_goaway(s) == 0xB
    finally:
        s.close()
    assert requests.get(srv.url + "/echo", timeout=10).status_code == 200
    if os.environ.get("PORTICO_SANITIZED"):
        return  # ASan's quarantine holds freed memory: RSS says nothing about the server there
    after = worker_rss_kb(srv)
    grown_mb = sum(after[p] - before[p] for p in before if p in after) / 1024
    assert grown_mb < 16, f"workers grew by {grown_mb:.0f} MB"


# ---------------------------------------------------------------- what a handler sees

def test_params_decoded_path_raw(srv):
    r = srv.get("/files/a%20b%C3%A9")
    assert r.status_code == 200
    assert r.json() == {"path": "/files/a%20b%C3%A9", "params": {"name": "a bé"}}


@pytest.mark.parametrize("raw", ["%2F..%2Fetc", "a%2Fb", "..", "%2E%2E", ".", "%2e", "a%00b"])
def test_params_refuse_encoded_slash_dots_nul(srv, raw):
    got, _ = talk(srv.port, f"GET /files/{raw} HTTP/1.1\r\n{host(srv)}Connection: close\r\n\r\n"
                  .encode())
    (status, headers, body), = responses(got)
    assert_raw_json_error(status, headers, body, 400)
    assert "path parameter" in json.loads(body)["error"]


def test_params_dots_inside_a_value_are_fine(srv):
    r = srv.get("/files/report..v2.csv")
    assert r.status_code == 200 and r.json()["params"] == {"name": "report..v2.csv"}


def test_non_utf8_bytes_replaced(srv):
    # A raw 0xFF byte in the path and an invalid encoded one in a parameter: both reach the
    # handler as U+FFFD; the raw path keeps the percent-encoding.
    got, _ = talk(srv.port, b"GET /files/x\xffy%FF HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    (status, _h, body), = responses(got)
    assert status == 200, body
    doc = json.loads(body)
    assert doc["path"] == "/files/x\ufffdy%FF"
    assert doc["params"] == {"name": "x\ufffdy\ufffd"}


# ---------------------------------------------------------------- oversized bodies (section 5)

@pytest.mark.load
def test_oversized_posts_all_get_413(portico, server):
    # Over --max-body h2o answers 413 and closes while the client is still sending: without a
    # lingering close the unread body made the kernel reset the connection, and many
    # requests.post calls saw a ConnectionError instead of the 413.
    portico.publish("sink", "def handler(request):\n    return {'n': len(request['body'])}\n",
                    methods="POST")
    s = server("--max-body", "1")
    body = b"x" * (8 << 20)  # more than the socket buffers hold: the client is still sending
    statuses = []
    for _ in range(200):
        try:
            r = requests.post(s.url + "/sink", data=body, timeout=10,
                              headers={"Content-Type": "application/octet-stream"})
            statuses.append(r.status_code)
        except requests.ConnectionError as e:
            statuses.append(type(e).__name__)
    assert statuses == [413] * 200, {x: statuses.count(x) for x in set(statuses)}
    assert s.post("/sink", data=b"ok").json() == {"n": 2}
