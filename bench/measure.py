"""Runs wrk (or h2load, with --h2) against a server and reports req/s and the server's CPU
time per request.

CPU time is read from /proc/PID/stat (utime + stime) of the server's whole process tree
before and after the run, so it counts the master, the workers and all their threads.
"""
import os
import re
import subprocess
import sys


def tree(pid):
    pids = [pid]
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    pids.extend(tree(int(p)))
            except OSError:
                pass
    return pids


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


def run(url, pid, seconds, connections, threads, script=None):
    pids = tree(pid)
    before = cpu_ticks(pids)
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    after = cpu_ticks(pids)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if "Socket errors" in out:
        sys.exit("wrk reported socket errors against %s:\n%s" % (url, out))
    cpu_us = (after - before) / os.sysconf("SC_CLK_TCK") * 1e6 / max(total, 1)
    return rps, cpu_us, int(errors.group(1)) if errors else 0


def run_h2load(url, pid, seconds, connections, threads, streams):
    """HTTP/2 (h2load, ALPN over TLS) with `streams` concurrent streams per connection."""
    pids = tree(pid)
    before = cpu_ticks(pids)
    cmd = ["h2load", "-t%d" % threads, "-c%d" % connections, "-m%d" % streams,
           "-D%d" % seconds, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after = cpu_ticks(pids)
    if "Application protocol: h2" not in out:
        sys.exit("h2load did not negotiate h2 with %s:\n%s" % (url, out))
    rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    done, ok = int(m.group(1)), int(m.group(2))
    codes = re.search(r"status codes: (\d+) 2xx", out)
    cpu_us = (after - before) / os.sysconf("SC_CLK_TCK") * 1e6 / max(done, 1)
    return rps, cpu_us, done - ok + (ok - int(codes.group(1)) if codes else 0)


if __name__ == "__main__" and sys.argv[1] == "--h2":
    # measure.py --h2 URL PID SECONDS CONNS THREADS STREAMS
    rps, cpu, errors = run_h2load(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                                  int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
    print("%.0f %.2f %d" % (rps, cpu, errors))
elif __name__ == "__main__":
    url, pid, seconds, conns, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        int(sys.argv[4]), int(sys.argv[5])
    script = sys.argv[6] if len(sys.argv) > 6 else None
    rps, cpu, errors = run(url, pid, seconds, conns, threads, script)
    print("%.0f %.2f %d" % (rps, cpu, errors))
