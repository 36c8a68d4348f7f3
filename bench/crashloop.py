"""Measures a hello endpoint while one client keeps calling an endpoint that kills its worker.

    crashloop.py HELLO_URL CRASH_URL SECONDS [CONNECTIONS]

Runs wrk (1 thread, CONNECTIONS keep-alive connections, --latency) against HELLO_URL for
SECONDS alone, then again while a client thread calls CRASH_URL one request after another,
and prints one line per phase: requests/s, median and p99 latency in ms, wrk's errors, and
the crashing client's answers by status. Used by `make bench` (section crash) and by
tests/integration/test_crash.py.
"""
import collections
import http.client
import re
import subprocess
import sys
import threading
import urllib.parse


def _ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def wrk(url, seconds, connections):
    """Runs wrk; returns a dict: rps, p50, p99 (ms), requests, errors (socket errors, non-2xx)."""
    out = subprocess.run(["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds, "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    pct = dict(re.findall(r"^\s*(50|99)%\s+(\S+)\s*$", out, re.M))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        # No latency distribution when nothing was answered.
        "p50": _ms(pct["50"]) if "50" in pct else float("inf"),
        "p99": _ms(pct["99"]) if "99" in pct else float("inf"),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "errors": errors,
        "raw": out,
    }


class Crasher(threading.Thread):
    """Calls url one request after another until stopped; counts answers by status (0: the
    connection failed without an answer)."""

    def __init__(self, url):
        super().__init__(daemon=True)
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port, u.path or "/"
        self.statuses = collections.Counter()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            c = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                c.request("GET", self.path)
                r = c.getresponse()
                r.read()
                self.statuses[r.status] += 1
            except (OSError, http.client.HTTPException):
                self.statuses[0] += 1
            finally:
                c.close()


def measure(hello_url, crash_url, seconds, connections=8):
    """Returns (baseline, under_crash, crasher statuses)."""
    base = wrk(hello_url, seconds, connections)
    crasher = Crasher(crash_url)
    crasher.start()
    loaded = wrk(hello_url, seconds, connections)
    crasher.stop.set()
    crasher.join(15)
    return base, loaded, dict(crasher.statuses)


def line(name, r):
    return "%-8s %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %d" % (
        name, r["rps"], r["p50"], r["p99"], r["errors"])


if __name__ == "__main__":
    hello, crash, secs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    conns = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    base, loaded, statuses = measure(hello, crash, secs, conns)
    print(line("alone", base))
    print(line("crashing", loaded))
    print("crasher  %s  hello kept %.0f%%" % (
        " ".join("%s:%d" % (k or "reset", v) for k, v in sorted(statuses.items())),
        100.0 * loaded["rps"] / max(base["rps"], 1)))
