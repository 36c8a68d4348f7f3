#!/bin/bash
# bench/run.sh BIN - side-by-side benchmarks on this machine (see docs/PERFORMANCE.md).
#
# hello: a handler returning a small dict, 2 workers, wrk with keep-alive; Portico and uWSGI
# (2 processes, the same handler) in the same run, alternating, RUNS times each; prints
# req/s and server CPU microseconds per request, with medians.
set -euo pipefail
BIN=${1:?usage: bench/run.sh PATH/TO/portico}
RUNS=${RUNS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONNS=${CONNS:-50}
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
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

echo "== hello: small dict handler, 2 workers, wrk -c$CONNS, ${SECONDS_PER_RUN}s x $RUNS runs =="
D="$WORK/data"
"$BIN" --data "$D" init >/dev/null
"$BIN" --data "$D" script add hello "$HERE/hello.py" >/dev/null
"$BIN" --data "$D" endpoint add hello --path /hello --script hello --auth public >/dev/null
PPORT=$(free_port)
PORTICO_LOG=warn "$BIN" --data "$D" serve --listen "127.0.0.1:$PPORT" --workers 2 \
    >"$WORK/portico.log" 2>&1 &
PPID_=$!
PIDS+=("$PPID_")
wait_http "http://127.0.0.1:$PPORT/hello"

HAVE_UWSGI=0
if command -v uwsgi >/dev/null && [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ]; then
    UPORT=$(free_port)
    # --http11-socket: uWSGI's keep-alive HTTP/1.1 socket, no router process in between.
    uwsgi --plugin python3 --http11-socket "127.0.0.1:$UPORT" --processes 2 --master \
        --disable-logging --die-on-term --wsgi-file "$HERE/uwsgi_hello.py" --pythonpath "$HERE" \
        >"$WORK/uwsgi.log" 2>&1 &
    UPID=$!
    PIDS+=("$UPID")
    wait_http "http://127.0.0.1:$UPORT/" && HAVE_UWSGI=1
fi

: >"$WORK/p.txt"
: >"$WORK/u.txt"
# Warm up both.
$PY "$HERE/measure.py" "http://127.0.0.1:$PPORT/hello" "$PPID_" 1 "$CONNS" 2 >/dev/null
[ $HAVE_UWSGI = 1 ] && $PY "$HERE/measure.py" "http://127.0.0.1:$UPORT/" "$UPID" 1 "$CONNS" 2 >/dev/null
for i in $(seq "$RUNS"); do
    r=$($PY "$HERE/measure.py" "http://127.0.0.1:$PPORT/hello" "$PPID_" "$SECONDS_PER_RUN" "$CONNS" 2)
    echo "$r" >>"$WORK/p.txt"
    set -- $r
    printf "run %d  portico  %8s req/s  %6s us CPU/req  non-2xx %s\n" "$i" "$1" "$2" "$3"
    if [ $HAVE_UWSGI = 1 ]; then
        r=$($PY "$HERE/measure.py" "http://127.0.0.1:$UPORT/" "$UPID" "$SECONDS_PER_RUN" "$CONNS" 2)
        echo "$r" >>"$WORK/u.txt"
        set -- $r
        printf "run %d  uwsgi    %8s req/s  %6s us CPU/req  non-2xx %s\n" "$i" "$1" "$2" "$3"
    fi
done
P_RPS=$(cut -d' ' -f1 "$WORK/p.txt" | median)
P_CPU=$(cut -d' ' -f2 "$WORK/p.txt" | median)
echo "median   portico  $P_RPS req/s  $P_CPU us CPU/req   (target >= 75000 req/s, <= 12 us)"
if [ $HAVE_UWSGI = 1 ]; then
    U_RPS=$(cut -d' ' -f1 "$WORK/u.txt" | median)
    U_CPU=$(cut -d' ' -f2 "$WORK/u.txt" | median)
    echo "median   uwsgi    $U_RPS req/s  $U_CPU us CPU/req"
    awk -v p="$P_RPS" -v u="$U_RPS" 'BEGIN {printf "ratio    portico/uwsgi %.2fx req/s\n", p/u}'
fi

# rows: a handler returning 100 rows of a 100,000-row SQLite table (pq.fetch, served from the
# cursor in C), against the same handler on uWSGI with sqlite3 + json.dumps on the same file.
echo
echo "== rows: 100 rows of a 100,000-row SQLite table, 2 workers, wrk -c$CONNS, ${SECONDS_PER_RUN}s x $RUNS runs =="
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
PIDS=()
"$BIN" --data "$D" run "$HERE/rows_setup.py"
"$BIN" --data "$D" script add rows "$HERE/rows.py" >/dev/null
"$BIN" --data "$D" endpoint add rows --path /rows --script rows --auth public >/dev/null
PPORT=$(free_port)
PORTICO_LOG=warn "$BIN" --data "$D" serve --listen "127.0.0.1:$PPORT" --workers 2 \
    >"$WORK/portico-rows.log" 2>&1 &
PPID_=$!
PIDS+=("$PPID_")
wait_http "http://127.0.0.1:$PPORT/rows"
if [ "$HAVE_UWSGI" = 1 ]; then
    UPORT=$(free_port)
    BENCH_DB="$D/warehouse/dw/bench.db" uwsgi --plugin python3 --http11-socket "127.0.0.1:$UPORT" \
        --processes 2 --master --disable-logging --die-on-term \
        --wsgi-file "$HERE/uwsgi_rows.py" --pythonpath "$HERE" >"$WORK/uwsgi-rows.log" 2>&1 &
    UPID=$!
    PIDS+=("$UPID")
    wait_http "http://127.0.0.1:$UPORT/" || HAVE_UWSGI=0
fi
# Same rows from both (compared as parsed JSON: uWSGI's booleans are 0/1 integers).
curl -fs "http://127.0.0.1:$PPORT/rows" | $PY -c 'import json,sys; r=json.load(sys.stdin); assert len(r) == 100, len(r)'
: >"$WORK/p.txt"
: >"$WORK/u.txt"
$PY "$HERE/measure.py" "http://127.0.0.1:$PPORT/rows" "$PPID_" 1 "$CONNS" 2 >/dev/null
[ $HAVE_UWSGI = 1 ] && $PY "$HERE/measure.py" "http://127.0.0.1:$UPORT/" "$UPID" 1 "$CONNS" 2 >/dev/null
for i in $(seq "$RUNS"); do
    r=$($PY "$HERE/measure.py" "http://127.0.0.1:$PPORT/rows" "$PPID_" "$SECONDS_PER_RUN" "$CONNS" 2)
    echo "$r" >>"$WORK/p.txt"
    set -- $r
    printf "run %d  portico  %8s req/s  %6s us CPU/req  non-2xx %s\n" "$i" "$1" "$2" "$3"
    if [ $HAVE_UWSGI = 1 ]; then
        r=$($PY "$HERE/measure.py" "http://127.0.0.1:$UPORT/" "$UPID" "$SECONDS_PER_RUN" "$CONNS" 2)
        echo "$r" >>"$WORK/u.txt"
        set -- $r
        printf "run %d  uwsgi    %8s req/s  %6s us CPU/req  non-2xx %s\n" "$i" "$1" "$2" "$3"
    fi
done
P_RPS=$(cut -d' ' -f1 "$WORK/p.txt" | median)
P_CPU=$(cut -d' ' -f2 "$WORK/p.txt" | median)
echo "median   portico  $P_RPS req/s  $P_CPU us CPU/req"
if [ $HAVE_UWSGI = 1 ]; then
    U_RPS=$(cut -d' ' -f1 "$WORK/u.txt" | median)
    U_CPU=$(cut -d' ' -f2 "$WORK/u.txt" | median)
    echo "median   uwsgi    $U_RPS req/s  $U_CPU us CPU/req"
    awk -v p="$P_RPS" -v u="$U_RPS" 'BEGIN {printf "ratio    portico/uwsgi %.2fx req/s   (target >= 2.5x)\n", p/u}'
fi
