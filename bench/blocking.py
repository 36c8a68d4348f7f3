"""Measures blocking handlers: clients of a sleeping endpoint and hello on the same server.

    blocking.py SLEEP_URL HELLO_URL SECONDS SLEEPERS [HELLO_CONNECTIONS]

Runs wrk -c SLEEPERS on SLEEP_URL (a handler that sleeps 0.5 s; none when SLEEPERS is 0) and,
once they wait, wrk -c8 (HELLO_CONNECTIONS) on HELLO_URL for SECONDS, then prints one line
each: requests/s, median and p99 latency in ms, errors (socket errors, timeouts, non-2xx).
Used by `make bench` (section blocking).
"""
import re
import subprocess
import sys
import threading

from crashloop import _ms


def wrk(url, seconds, connections, out):
    """Runs wrk into out (a dict): rps, p50, p99 (ms), errors."""
    text = subprocess.run(["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds, "--timeout",
                           "10s", "--latency", url],
                          capture_output=True, text=True, check=True).stdout
    pct = dict(re.findall(r"^\s*(50|99)%\s+(\S+)\s*$", text, re.M))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    # No latency distribution when nothing was answered: the percentiles are then infinite.
    if int(re.search(r"(\d+) requests in", text).group(1)) == 0:
        pct = {}
    out.update(rps=float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
               p50=_ms(pct["50"]) if "50" in pct else float("inf"),
               p99=_ms(pct["99"]) if "99" in pct else float("inf"),
               errors=errors + (int(non2xx.group(1)) if non2xx else 0))


def line(name, r):
    return "%-6s %9.1f req/s  p50 %8.2f ms  p99 %8.2f ms  errors %d" % (
        name, r["rps"], r["p50"], r["p99"], r["errors"])


def main():
    sleep_url, hello_url = sys.argv[1], sys.argv[2]
    secs, sleepers = int(sys.argv[3]), int(sys.argv[4])
    conns = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    s, h = {}, {}
    t = None
    if sleepers > 0:
        # The sleepers run a second before and after hello's run: hello meets them all along.
        t = threading.Thread(target=wrk, args=(sleep_url, secs + 2, sleepers, s))
        t.start()
        threading.Event().wait(1.0)
    wrk(hello_url, secs, conns, h)
    if t is not None:
        t.join()
        print(line("sleep", s))
    print(line("hello", h))


if __name__ == "__main__":
    main()
