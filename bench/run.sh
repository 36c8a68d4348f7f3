#!/bin/bash
# bench/run.sh BIN - side-by-side benchmarks on this machine (see docs/PERFORMANCE.md).
#
#   hello    a handler returning a small dict; Portico and uWSGI (2 processes, same handler)
#   rows     100 rows of a 100,000-row SQLite table; Portico (rows served from the cursor in C)
#            and uWSGI (sqlite3 + json.dumps on the same file)
#   webhook  durable 1 KiB JSON events posted with keep-alive (no peer: target 10,000/s)
#   lookup   one row by id of a 100,000-row imported table: imported with `id` as its primary
#            key (`db import` does it), and the same rows without a key (a scan per lookup)
#   crash    hello alone, then while one client calls, one request after another, a handler
#            that calls os._exit(1) (bench/crashloop.py; target: >= 90% of hello's req/s,
#            p99 < 20 ms)
#
# Every section uses 2 workers / processes and wrk with keep-alive, alternating the servers
# RUNS times in the same run, and prints req/s and server CPU microseconds per request with
# medians. SECTIONS="hello rows webhook" selects sections.
set -euo pipefail
BIN=${1:?usage: bench/run.sh PATH/TO/portico}
RUNS=${RUNS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONNS=${CONNS:-50}
SECTIONS=${SECTIONS:-hello rows lookup webhook crash}
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
PIDS=()

stop_all() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
}
cleanup() {
    stop_all
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
    for _ in $(seq 100); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "bench: server at $1 did not come up" >&2
    return 1
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# serve_portico DATA LOG: starts `portico serve` on a free port; sets PPORT and PPID_.
serve_portico() {
    PPORT=$(free_port)
    PORTICO_LOG=warn "$BIN" --data "$1" serve --listen "127.0.0.1:$PPORT" --admin-listen off --workers 2 \
        >"$2" 2>&1 &
    PPID_=$!
    PIDS+=("$PPID_")
}

# serve_uwsgi APP LOG: starts uWSGI (2 processes, keep-alive HTTP/1.1 socket) on a free port;
# sets UPORT, UPID and HAVE_UWSGI. uWSGI reloads on SIGTERM unless told --die-on-term.
HAVE_UWSGI=0
command -v uwsgi >/dev/null && [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] && HAVE_UWSGI=1
serve_uwsgi() {
    [ $HAVE_UWSGI = 1 ] || return 0
    UPORT=$(free_port)
    uwsgi --plugin python3 --http11-socket "127.0.0.1:$UPORT" --processes 2 --master \
        --disable-logging --die-on-term --wsgi-file "$HERE/$1" --pythonpath "$HERE" \
        >"$2" 2>&1 &
    UPID=$!
    PIDS+=("$UPID")
    wait_http "http://127.0.0.1:$UPORT/" || HAVE_UWSGI=0
}

# compare TARGET_TEXT URL_P PID_P [URL_U PID_U] [-- WRK_SCRIPT]: runs both RUNS times,
# alternating, after a warm-up, and prints each run and the medians.
compare() {
    local target=$1 purl=$2 ppid=$3 uurl=${4:-} upid=${5:-} script=${6:-}
    : >"$WORK/p.txt"
    : >"$WORK/u.txt"
    $PY "$HERE/measure.py" "$purl" "$ppid" 1 "$CONNS" 2 $script >/dev/null
    [ -n "$uurl" ] && $PY "$HERE/measure.py" "$uurl" "$upid" 1 "$CONNS" 2 >/dev/null
    for i in $(seq "$RUNS"); do
        r=$($PY "$HERE/measure.py" "$purl" "$ppid" "$SECONDS_PER_RUN" "$CONNS" 2 $script)
        echo "$r" >>"$WORK/p.txt"
        set -- $r
        printf "run %d  portico  %8s req/s  %7s us CPU/req  non-2xx %s\n" "$i" "$1" "$2" "$3"
        if [ -n "$uurl" ]; then
            r=$($PY "$HERE/measure.py" "$uurl" "$upid" "$SECONDS_PER_RUN" "$CONNS" 2)
            echo "$r" >>"$WORK/u.txt"
            set -- $r
            printf "run %d  uwsgi    %8s req/s  %7s us CPU/req  non-2xx %s\n" "$i" "$1" "$2" "$3"
        fi
    done
    P_RPS=$(cut -d' ' -f1 "$WORK/p.txt" | median)
    P_CPU=$(cut -d' ' -f2 "$WORK/p.txt" | median)
    echo "median   portico  $P_RPS req/s  $P_CPU us CPU/req   ($target)"
    if [ -n "$uurl" ]; then
        U_RPS=$(cut -d' ' -f1 "$WORK/u.txt" | median)
        U_CPU=$(cut -d' ' -f2 "$WORK/u.txt" | median)
        echo "median   uwsgi    $U_RPS req/s  $U_CPU us CPU/req"
        awk -v p="$P_RPS" -v u="$U_RPS" 'BEGIN {printf "ratio    portico/uwsgi %.2fx req/s\n", p/u}'
    fi
}

D="$WORK/data"
"$BIN" --data "$D" init >/dev/null
head="2 workers, wrk -c$CONNS, ${SECONDS_PER_RUN}s x $RUNS runs"

for section in $SECTIONS; do
    echo
    case $section in
    hello)
        echo "== hello: small dict handler, $head =="
        "$BIN" --data "$D" script add hello "$HERE/hello.py" >/dev/null
        "$BIN" --data "$D" endpoint add hello --path /hello --script hello --auth public >/dev/null
        serve_portico "$D" "$WORK/portico-hello.log"
        wait_http "http://127.0.0.1:$PPORT/hello"
        serve_uwsgi uwsgi_hello.py "$WORK/uwsgi-hello.log"
        if [ $HAVE_UWSGI = 1 ]; then
            compare "target >= 75000 req/s, <= 12 us" "http://127.0.0.1:$PPORT/hello" "$PPID_" \
                "http://127.0.0.1:$UPORT/" "$UPID"
        else
            compare "target >= 75000 req/s, <= 12 us" "http://127.0.0.1:$PPORT/hello" "$PPID_"
        fi
        ;;
    rows)
        echo "== rows: 100 rows of a 100,000-row SQLite table, $head =="
        "$BIN" --data "$D" run "$HERE/rows_setup.py"
        "$BIN" --data "$D" script add rows "$HERE/rows.py" >/dev/null
        "$BIN" --data "$D" endpoint add rows --path /rows --script rows --auth public >/dev/null
        serve_portico "$D" "$WORK/portico-rows.log"
        wait_http "http://127.0.0.1:$PPORT/rows"
        curl -fs "http://127.0.0.1:$PPORT/rows" |
            $PY -c 'import json,sys; r=json.load(sys.stdin); assert len(r) == 100, len(r)'
        BENCH_DB="$D/warehouse/dw/bench.db" serve_uwsgi uwsgi_rows.py "$WORK/uwsgi-rows.log"
        if [ $HAVE_UWSGI = 1 ]; then
            compare "target >= 2.5x uWSGI" "http://127.0.0.1:$PPORT/rows" "$PPID_" \
                "http://127.0.0.1:$UPORT/" "$UPID"
        else
            compare "target >= 2.5x uWSGI" "http://127.0.0.1:$PPORT/rows" "$PPID_"
        fi
        ;;
    lookup)
        echo "== lookup: one row by id of a 100,000-row imported table, $head =="
        $PY -c 'import sys
for h in ("id", "nr"):
    with open(sys.argv[1] + "/" + h + ".csv", "w") as f:
        f.write(h + ",name,email,amount\n")
        f.writelines("%d,customer %d,user%d@example.com,%.2f\n" % (i, i, i, i * 1.25)
                     for i in range(1, 100001))' "$WORK"
        "$BIN" --data "$D" db import dw bench keyed "$WORK/id.csv"
        "$BIN" --data "$D" db import dw bench plain "$WORK/nr.csv"
        "$BIN" --data "$D" script add lookup "$HERE/lookup.py" >/dev/null
        "$BIN" --data "$D" endpoint add lookup --path '/lookup/{table}/{id}' --script lookup \
            --auth public >/dev/null
        serve_portico "$D" "$WORK/portico-lookup.log"
        wait_http "http://127.0.0.1:$PPORT/lookup/keyed/7"
        # wrk -c8 for both: with 50 connections waiting on scans, wrk's 2 s timeout fires.
        echo "-- keyed (primary key id), wrk -c8"
        CONNS=8 compare "target: an index seek" "http://127.0.0.1:$PPORT/lookup/keyed" "$PPID_" \
            "" "" "$HERE/lookup.lua"
        K_RPS=$P_RPS
        echo "-- plain (no key: a scan per lookup), wrk -c8"
        CONNS=8 compare "a scan of 100,000 rows" "http://127.0.0.1:$PPORT/lookup/plain" \
            "$PPID_" "" "" "$HERE/lookup.lua"
        awk -v k="$K_RPS" -v p="$P_RPS" 'BEGIN {printf "ratio    keyed/plain %.1fx req/s\n", k/p}'
        ;;
    webhook)
        echo "== webhook: durable 1 KiB JSON events, $head =="
        serve_portico "$D" "$WORK/portico-webhook.log"
        wait_http "http://127.0.0.1:$PPORT/_portico/health"
        URL=$("$BIN" --data "$D" webhook url --base "http://127.0.0.1:$PPORT")
        before=$("$BIN" --data "$D" db query dw "SELECT count(*) AS n FROM webhooks.events" --json |
            $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["n"])')
        compare "target >= 10000 events/s, each fsynced before its 200" "$URL" "$PPID_" "" "" \
            "$HERE/webhook_post.lua"
        after=$("$BIN" --data "$D" db query dw "SELECT count(*) AS n FROM webhooks.events" --json |
            $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["n"])')
        echo "stored   $((after - before)) events in webhooks.events"
        ;;
    crash)
        echo "== crash: hello while a client loops on an os._exit(1) handler, 2 workers, wrk -c8 =="
        [ -e "$WORK/die.py" ] || printf 'import os\n\ndef handler(request):\n    os._exit(1)\n' >"$WORK/die.py"
        "$BIN" --data "$D" script add hello "$HERE/hello.py" >/dev/null
        "$BIN" --data "$D" endpoint add hello --path /hello --script hello --auth public \
            >/dev/null 2>&1 || true
        "$BIN" --data "$D" script add die "$WORK/die.py" >/dev/null
        "$BIN" --data "$D" endpoint add die --path /die --script die --auth public >/dev/null
        for i in $(seq "$RUNS"); do
            serve_portico "$D" "$WORK/portico-crash.log"
            wait_http "http://127.0.0.1:$PPORT/hello"
            echo "run $i (a fresh server)"
            $PY "$HERE/crashloop.py" "http://127.0.0.1:$PPORT/hello" "http://127.0.0.1:$PPORT/die" \
                "$SECONDS_PER_RUN" | tee -a "$WORK/crash.txt"
            stop_all
        done
        grep '^alone' "$WORK/crash.txt" | awk '{print $2}' | median |
            xargs printf "median   alone     %8.0f req/s\n"
        grep '^crashing' "$WORK/crash.txt" | awk '{print $2}' | median |
            xargs printf "median   crashing  %8.0f req/s\n"
        grep '^crashing' "$WORK/crash.txt" | awk '{print $8}' | median |
            xargs printf "median   crashing  p99 %.2f ms   (target >= 90%% of alone, p99 < 20 ms)\n"
        ;;
    *)
        echo "bench: unknown section '$section' (hello, rows, lookup, webhook, crash)" >&2
        exit 2
        ;;
    esac
    stop_all
done
