#!/usr/bin/env python3
"""soak.py BIN - mixed load against one `portico serve` for SOAK_SECONDS (600 by default), with
the RSS and open descriptors of the master and its workers sampled every SOAK_INTERVAL seconds
(10). After the warm-up (a third of the run, at most 120 s) every sample must stay within 10%
of the largest of the first three after it (plus a small absolute slack: 4 MiB, 4
descriptors; workers are averaged), and the server must still answer hello. Exit status 0 when flat, 1 otherwise; the samples are printed.

The load, from a few client threads: a hello endpoint, a JSON endpoint with a path parameter,
webhooks signed correctly and wrongly (GitHub scheme), API-key endpoints called with no key and
a wrong key (401), a handler that raises (500) and, every few seconds, one that calls
os._exit(1) (the worker dies and is replaced). `make soak` runs it; .ci/run runs 60 s."""

import hashlib
import hmac
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
INTERVAL = float(os.environ.get("SOAK_INTERVAL", "10"))
WARMUP = min(SECONDS / 3, 120)
THREADS = 4
GROWTH = 0.10
SLACK_RSS = 4 << 20
SLACK_FDS = 4
SECRET = "soak-webhook-secret"

SCRIPTS = {
    "hello": ("/hello", "def handler(request):\n    return {'hello': 'world'}\n"),
    "item": ("/items/{id}",
             "def handler(request):\n"
             "    return {'id': request['params']['id'], 'q': request['query'],\n"
             "            'rows': [{'n': i, 's': 'x' * i} for i in range(50)]}\n"),
    "boom": ("/boom", "def handler(request):\n    raise RuntimeError('soak: expected')\n"),
    "die": ("/die", "import os\n\ndef handler(request):\n    os._exit(1)\n"),
    "keyed": ("/keyed", "def handler(request):\n    return 'secret'\n"),
}


def cli(bin_, data, *args, input=None):
    cp = subprocess.run([bin_, "--data", data, *args], input=input, capture_output=True,
                        text=True, timeout=60)
    if cp.returncode != 0:
        sys.exit(f"soak: {' '.join(args)} failed: {cp.stderr.strip()}")
    return cp.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def rss_fds(pid):
    """(RSS bytes, open descriptors) of pid; None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None


def sample(master):
    """{"master": (rss, fds), "workers": (mean rss, mean fds, count)}."""
    m = rss_fds(master)
    ws = [s for s in (rss_fds(c) for c in children(master)) if s is not None]
    n = max(len(ws), 1)
    return {"master": m, "workers": (sum(w[0] for w in ws) // n, sum(w[1] for w in ws) / n,
                                     len(ws))}


def load(url, hook, stop, counts, lock):
    s = requests.Session()
    rnd = random.Random()
    last_die = time.monotonic()
    while not stop.is_set():
        kind = rnd.choice(["hello", "hello", "item", "hook", "badhook", "nokey", "badkey",
                           "boom", "fresh"])
        try:
            if kind == "hello":
                r = s.get(url + "/hello", timeout=10)
                ok = r.status_code == 200
            elif kind == "item":
                r = s.get(url + f"/items/{rnd.randrange(1000)}?a={rnd.random()}", timeout=10)
                ok = r.status_code == 200
            elif kind in ("hook", "badhook"):
                body = os.urandom(rnd.randrange(1, 2048)).hex().encode()
                sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                if kind == "badhook":
                    sig = sig[::-1]
                r = s.post(hook, data=body, timeout=10,
                           headers={"X-Hub-Signature-256": "sha256=" + sig,
                                    "Content-Type": "application/octet-stream"})
                ok = r.status_code == (401 if kind == "badhook" else 200)
            elif kind == "nokey":
                ok = s.get(url + "/keyed", timeout=10).status_code == 401
            elif kind == "badkey":
                r = s.get(url + "/keyed", headers={"X-Api-Key": "pt_nope"}, timeout=10)
                ok = r.status_code == 401
            elif kind == "boom":
                ok = s.get(url + "/boom", timeout=10).status_code == 500
            else:  # a new connection each time, closed at once
                ok = requests.get(url + "/hello", timeout=10).status_code == 200
            if time.monotonic() - last_die > 5 and rnd.random() < 0.02:
                last_die = time.monotonic()
                kind = "die"
                try:
                    requests.get(url + "/die", timeout=10)
                except requests.RequestException:
                    pass
                ok = True
        except requests.RequestException:
            ok = False
        with lock:
            key = kind + (" ok" if ok else " FAILED")
            counts[key] = counts.get(key, 0) + 1


def main():
    bin_ = sys.argv[1] if len(sys.argv) > 1 else "build/portico"
    work = tempfile.mkdtemp(prefix="portico-soak.")
    data = os.path.join(work, "data")
    proc = None
    try:
        cli(bin_, data, "init")
        for name, (path, source) in SCRIPTS.items():
            f = os.path.join(work, name + ".py")
            with open(f, "w") as fh:
                fh.write(source)
            cli(bin_, data, "script", "add", name, f)
            cli(bin_, data, "endpoint", "add", name, "--path", path, "--script", name, "--auth",
                "apikey" if name == "keyed" else "public")
        cli(bin_, data, "secret", "set", "soak_secret", input=SECRET + "\n")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        hook = cli(bin_, data, "webhook", "source", "add", "gh", "--verify", "github",
                   "--secret", "soak_secret", "--base", url).strip()
        log = open(os.path.join(work, "serve.log"), "wb")
        proc = subprocess.Popen([bin_, "--data", data, "serve", "--listen", f"127.0.0.1:{port}",
                                 "--admin-listen", "off", "--workers", "2"], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/_portico/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit("soak: the server did not start")
            time.sleep(0.1)

        stop, lock, counts = threading.Event(), threading.Lock(), {}
        threads = [threading.Thread(target=load, args=(url, hook, stop, counts, lock))
                   for _ in range(THREADS)]
        for t in threads:
            t.start()
        start = time.monotonic()
        samples = []
        while time.monotonic() - start < SECONDS:
            time.sleep(min(INTERVAL, max(0, SECONDS - (time.monotonic() - start))))
            t = time.monotonic() - start
            s = sample(proc.pid)
            samples.append((t, s))
            m, w = s["master"], s["workers"]
            print(f"soak: {t:6.0f} s  master rss {m[0] >> 20} MiB fds {m[1]}  workers "
                  f"{w[2]}: rss {w[0] >> 20} MiB fds {w[1]:.1f}", flush=True)
        stop.set()
        for t in threads:
            t.join()
        print("soak: requests: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))

        failed = []
        if requests.get(url + "/hello", timeout=10).status_code != 200:
            failed.append("hello does not answer after the soak")
        # A worker that os._exit()s takes the requests it was running with it (at most one
        # per client thread); anything beyond that and 0.5% is a failure.
        bad = {k: v for k, v in counts.items() if k.endswith("FAILED")}
        total = sum(counts.values())
        allowed = counts.get("die ok", 0) * THREADS + total * 0.005
        if sum(bad.values()) > allowed:
            failed.append(f"{sum(bad.values())} requests failed (allowed {allowed:.0f}): {bad}")
        after = [(t, s) for t, s in samples if t >= WARMUP]
        if len(after) < 3:
            failed.append("too few samples after the warm-up (SOAK_SECONDS too short)")
        else:
            # The baseline: the largest of the first samples after the warm-up (one taken while
            # a replacement worker starts is low, and not the level the others keep).
            first = after[:3]
            base = {who: tuple(max(s[who][i] for _, s in first) for i in range(2))
                    for who in ("master", "workers")}
            for t, s in after[1:]:
                for who, idx, what, slack in (("master", 0, "RSS", SLACK_RSS),
                                              ("master", 1, "descriptors", SLACK_FDS),
                                              ("workers", 0, "RSS", SLACK_RSS),
                                              ("workers", 1, "descriptors", SLACK_FDS)):
                    b, v = base[who][idx], s[who][idx]
                    if v > b * (1 + GROWTH) + slack:
                        failed.append(f"{who} {what} grew from {b} to {v} at {t:.0f} s")
        for f in failed:
            print("soak: FAILED: " + f)
        if not failed:
            print(f"soak: flat within {GROWTH:.0%} after {WARMUP:.0f} s of warm-up")
        return 1 if failed else 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
