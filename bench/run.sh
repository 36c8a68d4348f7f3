#!/bin/bash
# bench/run.sh BIN - side-by-side benchmarks on this machine (see docs/PERFORMANCE.md).
#
#   hello    a handler returning a small dict; Portico and uWSGI (2 processes, same handler)
#   rows     100 rows of a 100,000-row SQLite table; Portico (rows served from the cursor in C)
#            and uWSGI (sqlite3 + json.dumps on the same file)
#   webhook  durable 1 KiB JSON events posted with keep-alive (no peer: target 10,000/s): the
#            embedded SQLite inbox, then (when PostgreSQL 15 is installed) the inbox of a
#            PostgreSQL store on a throwaway server on this machine, fsync and
#            synchronous_commit on
#   lookup   one row by id of a 100,000-row imported table: imported with `id` as its primary
#            key (`db import` does it), and the same rows without a key (a scan per lookup)
#   crash    hello alone, then while one client calls, one request after another, a handler
#            that calls os._exit(1) (bench/crashloop.py; target: >= 90% of hello's req/s,
#            p99 < 20 ms)
#   tls      hello over TLS: HTTP/1.1 (wrk over https) and HTTP/2 (h2load, 1 and 10 streams
#            per connection), beside cleartext HTTP/1.1, on one server with both listeners
#   blocking hello (wrk -c8) alone, beside 20 and beside 200 clients of a handler sleeping
#            0.5 s (bench/blocking.py); Portico and uWSGI (2 processes x 100 threads), and
#            Portico's RSS per waiting request (targets: >= 360 req/s for 200 sleepers, hello
#            p99 < 20 ms, no errors)
#   cache    the rows endpoint with `--cache 1h` (answered from the shared response cache) and
#            hello on the same server, alternated (target: cached rows >= 90% of hello's req/s)
#
# Every section uses 2 workers / processes and wrk with keep-alive, alternating the servers
# RUNS times in the same run, and prints req/s and server CPU microseconds per request with
# medians. SECTIONS="hello rows webhook" selects sections.
set -euo pipefail
BIN=${1:?usage: bench/run.sh PATH/TO/portico}
RUNS=${RUNS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONNS=${CONNS:-50}
SECTIONS=${SECTIONS:-hello rows lookup webhook crash tls blocking cache}
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
PIDS=()

stop_all() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
}
PGBIN=${PORTICO_PG_BIN:-/usr/lib/postgresql/15/bin}
PGRUN=() # how PostgreSQL's commands run: as `nobody` when we are root (it refuses root)
[ "$(id -u)" = 0 ] && PGRUN=(runuser -u nobody --)
PG_STARTED=
cleanup() {
    stop_all
    [ -n "$PG_STARTED" ] && "${PGRUN[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop \
        >/dev/null 2>&1 || true
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
# rss_of PID: the resident KiB of PID's children (a server's workers and spares).
rss_of() {
    local kids
    kids=$(pgrep -P "$1" | paste -sd,)
    [ -n "$kids" ] && ps -o rss= -p "$kids" | awk '{s+=$1} END {print s+0}' || echo 0
}
# publish_hello: the hello script and its endpoint in $D, whichever section runs first.
publish_hello() {
    "$BIN" --data "$D" script add hello "$HERE/hello.py" >/dev/null
    "$BIN" --data "$D" endpoint show hello >/dev/null 2>&1 ||
        "$BIN" --data "$D" endpoint add hello --path /hello --script hello --auth public >/dev/null
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# serve_portico DATA LOG: starts `portico serve` on a free port (no admin listener: its
# default port may be taken); sets PPORT and PPID_.
serve_portico() {
    PPORT=$(free_port)
    PORTICO_LOG=warn "$BIN" --data "$1" serve --listen "127.0.0.1:$PPORT" --workers 2 \
        --admin-listen off >"$2" 2>&1 &
    PPID_=$!
    PIDS+=("$PPID_")
}

# start_pg: a throwaway PostgreSQL server in $WORK/pg on a free port, durable (fsync and
# synchronous_commit on, as a production server); sets PG_DSN. Returns 1 without PostgreSQL.
start_pg() {
    [ -x "$PGBIN/initdb" ] || return 1
    mkdir -p "$WORK/pg"
    chmod 755 "$WORK" "$WORK/pg"
    [ "$(id -u)" = 0 ] && chown nobody "$WORK/pg"
    "${PGRUN[@]}" "$PGBIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust -E UTF8 \
        --no-locale >/dev/null
    local port
    port=$(free_port)
    "${PGRUN[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w -t 60 \
        -o "-p $port -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on" \
        start >/dev/null
    PG_STARTED=1
    PG_DSN="host=127.0.0.1 port=$port user=postgres dbname=postgres"
}

# serve_uwsgi APP LOG [ARGS...]: starts uWSGI (2 processes, keep-alive HTTP/1.1 socket, and
# ARGS) on a free port; sets UPORT, UPID and HAVE_UWSGI. uWSGI reloads on SIGTERM unless told
# --die-on-term.
HAVE_UWSGI=0
command -v uwsgi >/dev/null && [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] && HAVE_UWSGI=1
serve_uwsgi() {
    [ $HAVE_UWSGI = 1 ] || return 0
    UPORT=$(free_port)
    local app=$1 log=$2
    shift 2
    uwsgi --plugin python3 --http11-socket "127.0.0.1:$UPORT" --processes 2 --master \
        --disable-logging --die-on-term --wsgi-file "$HERE/$app" --pythonpath "$HERE" "$@" \
        >"$log" 2>&1 &
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
        publish_hello
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
        if start_pg; then
            echo "-- the same, the inbox in a PostgreSQL store (init --store; same machine)"
            DP="$WORK/data-pg"
            "$BIN" --data "$DP" init --store "$PG_DSN" >/dev/null
            serve_portico "$DP" "$WORK/portico-webhook-pg.log"
            wait_http "http://127.0.0.1:$PPORT/_portico/health"
            URL=$("$BIN" --data "$DP" webhook url --base "http://127.0.0.1:$PPORT")
            pg_count() { "$PGBIN/psql" -X -q -A -t -d "$PG_DSN" -c "SELECT count(*) FROM webhooks.events"; }
            before=$(pg_count)
            compare "target >= 10000 events/s, each committed (synchronous_commit on) before its 200" \
                "$URL" "$PPID_" "" "" "$HERE/webhook_post.lua"
            after=$(pg_count)
            echo "stored   $((after - before)) events in PostgreSQL's webhooks.events"
        else
            echo "-- no PostgreSQL in $PGBIN: the PostgreSQL inbox figure is skipped"
        fi
        ;;
    crash)
        echo "== crash: hello while a client loops on an os._exit(1) handler, 2 workers, wrk -c8 =="
        [ -e "$WORK/die.py" ] || printf 'import os\n\ndef handler(request):\n    os._exit(1)\n' >"$WORK/die.py"
        publish_hello
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
    tls)
        echo "== tls: hello over TLS (self-signed P-256, TLS 1.3), $head =="
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
            -subj /CN=bench -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
        publish_hello
        TPORT=$(free_port)
        PPORT=$(free_port)
        PORTICO_LOG=warn "$BIN" --data "$D" serve --listen "127.0.0.1:$PPORT" --workers 2 \
            --admin-listen off \
            --listen-tls "127.0.0.1:$TPORT" --tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key" \
            >"$WORK/portico-tls.log" 2>&1 &
        PPID_=$!
        PIDS+=("$PPID_")
        wait_http "http://127.0.0.1:$PPORT/hello"
        curl -fsk -o /dev/null "https://127.0.0.1:$TPORT/hello"
        : >"$WORK/tls.txt"
        for i in $(seq "$RUNS"); do
            for kind in "h1 http" "h1 https" "h2 m1" "h2 m10"; do
                set -- $kind
                case $2 in
                http) r=$($PY "$HERE/measure.py" "http://127.0.0.1:$PPORT/hello" "$PPID_" \
                    "$SECONDS_PER_RUN" "$CONNS" 2) ;;
                https) r=$($PY "$HERE/measure.py" "https://127.0.0.1:$TPORT/hello" "$PPID_" \
                    "$SECONDS_PER_RUN" "$CONNS" 2) ;;
                m1) r=$($PY "$HERE/measure.py" --h2 "https://127.0.0.1:$TPORT/hello" "$PPID_" \
                    "$SECONDS_PER_RUN" "$CONNS" 2 1) ;;
                m10) r=$($PY "$HERE/measure.py" --h2 "https://127.0.0.1:$TPORT/hello" "$PPID_" \
                    "$SECONDS_PER_RUN" "$CONNS" 2 10) ;;
                esac
                echo "$1-$2 $r" >>"$WORK/tls.txt"
                printf "run %d  %-9s %8s req/s  %7s us CPU/req  errors %s\n" "$i" "$1-$2" $r
            done
        done
        for k in h1-http h1-https h2-m1 h2-m10; do
            rps=$(grep "^$k " "$WORK/tls.txt" | cut -d' ' -f2 | median)
            cpu=$(grep "^$k " "$WORK/tls.txt" | cut -d' ' -f3 | median)
            printf "median   %-9s %8s req/s  %7s us CPU/req\n" "$k" "$rps" "$cpu"
        done
        echo "(h1-http: cleartext HTTP/1.1, wrk; h1-https: HTTP/1.1 over TLS, wrk; h2-mN: HTTP/2"
        echo " over TLS, h2load with N concurrent streams per connection; all keep-alive)"
        ;;
    blocking)
        echo "== blocking: hello (wrk -c8) beside clients of a handler sleeping 0.5 s, 2 workers =="
        publish_hello
        "$BIN" --data "$D" script add sleep "$HERE/sleep.py" >/dev/null
        "$BIN" --data "$D" endpoint add sleep --path /sleep --script sleep --auth public >/dev/null
        serve_portico "$D" "$WORK/portico-blocking.log"
        wait_http "http://127.0.0.1:$PPORT/hello"
        serve_uwsgi uwsgi_blocking.py "$WORK/uwsgi-blocking.log" --threads 100
        : >"$WORK/blocking.txt"
        for i in $(seq "$RUNS"); do
            for n in 0 20 200; do
                for srv in portico uwsgi; do
                    if [ $srv = portico ]; then base="http://127.0.0.1:$PPORT"; else
                        [ $HAVE_UWSGI = 1 ] || continue
                        base="http://127.0.0.1:$UPORT"
                    fi
                    $PY "$HERE/blocking.py" "$base/sleep" "$base/hello" "$SECONDS_PER_RUN" "$n" \
                        >"$WORK/b.txt"
                    while read -r what rest; do
                        printf "run %d  %-7s %3d sleepers  %-5s %s\n" "$i" $srv "$n" "$what" "$rest"
                        echo "$srv $n $what $rest" >>"$WORK/blocking.txt"
                    done <"$WORK/b.txt"
                done
            done
        done
        for srv in portico uwsgi; do
            for n in 0 20 200; do
                grep -q "^$srv $n hello" "$WORK/blocking.txt" || continue
                h_p99=$(awk -v s=$srv -v n=$n '$1==s && $2==n && $3=="hello" {print $10}' \
                    "$WORK/blocking.txt" | median)
                h_err=$(awk -v s=$srv -v n=$n '$1==s && $2==n && $3=="hello" {e+=$NF} END {print e+0}' \
                    "$WORK/blocking.txt")
                line=$(printf "median   %-7s %3d sleepers  hello p99 %7.2f ms (errors %d)" $srv "$n" \
                    "$h_p99" "$h_err")
                if [ "$n" -gt 0 ]; then
                    s_rps=$(awk -v s=$srv -v n=$n '$1==s && $2==n && $3=="sleep" {print $4}' \
                        "$WORK/blocking.txt" | median)
                    line="$line  sleep $(printf '%6.1f' "$s_rps") req/s (ideal $((n * 2)))"
                fi
                echo "$line"
            done
        done
        echo "targets: 200 sleepers >= 360 req/s; hello p99 < 20 ms beside 20 and 200, no errors"
        # Memory per waiting request: a fresh server whose sleep endpoint has run once (its
        # module loaded, the endpoint known to wait), the RSS of its workers and spares before
        # and while 200 clients wait, over 200.
        stop_all
        serve_portico "$D" "$WORK/portico-blocking.log"
        wait_http "http://127.0.0.1:$PPORT/hello"
        curl -fs -o /dev/null "http://127.0.0.1:$PPORT/sleep"
        curl -fs -o /dev/null "http://127.0.0.1:$PPORT/sleep"
        rss_idle=$(rss_of "$PPID_")
        wrk -t1 -c200 -d4s --timeout 10s "http://127.0.0.1:$PPORT/sleep" >/dev/null &
        bpid=$!
        sleep 2
        rss_during=$(rss_of "$PPID_")
        wait $bpid
        echo "memory   portico  200 waiting requests: RSS $rss_idle -> $rss_during KiB," \
            "$(((rss_during - rss_idle) / 200)) KiB per waiting request"
        ;;
    cache)
        echo "== cache: 100 cached rows beside hello on one server, $head =="
        publish_hello
        if ! "$BIN" --data "$D" endpoint show rows >/dev/null 2>&1; then
            "$BIN" --data "$D" run "$HERE/rows_setup.py"
            "$BIN" --data "$D" script add rows "$HERE/rows.py" >/dev/null
            "$BIN" --data "$D" endpoint add rows --path /rows --script rows --auth public >/dev/null
        fi
        "$BIN" --data "$D" endpoint add rows_cached --path /rows_cached --script rows \
            --auth public --cache 1h >/dev/null
        serve_portico "$D" "$WORK/portico-cache.log"
        wait_http "http://127.0.0.1:$PPORT/hello"
        curl -fs -o /dev/null "http://127.0.0.1:$PPORT/rows_cached"
        hdrs=$(curl -fs -D - -o /dev/null "http://127.0.0.1:$PPORT/rows_cached")
        case "$hdrs" in
        *"x-cache: HIT"*) ;;
        *) echo "bench: the second GET of /rows_cached was not a cache hit" >&2; exit 1 ;;
        esac
        : >"$WORK/h.txt"
        : >"$WORK/c.txt"
        $PY "$HERE/measure.py" "http://127.0.0.1:$PPORT/hello" "$PPID_" 1 "$CONNS" 2 >/dev/null
        for i in $(seq "$RUNS"); do
            for which in hello rows_cached; do
                r=$($PY "$HERE/measure.py" "http://127.0.0.1:$PPORT/$which" "$PPID_" \
                    "$SECONDS_PER_RUN" "$CONNS" 2)
                [ $which = hello ] && echo "$r" >>"$WORK/h.txt" || echo "$r" >>"$WORK/c.txt"
                set -- $r
                printf "run %d  %-11s %8s req/s  %7s us CPU/req  non-2xx %s\n" "$i" "$which" \
                    "$1" "$2" "$3"
            done
        done
        H_RPS=$(cut -d' ' -f1 "$WORK/h.txt" | median)
        C_RPS=$(cut -d' ' -f1 "$WORK/c.txt" | median)
        echo "median   hello $H_RPS req/s, cached rows $C_RPS req/s"
        awk -v c="$C_RPS" -v h="$H_RPS" \
            'BEGIN {printf "ratio    cached rows/hello %.2fx   (target >= 0.90)\n", c/h}'
        ;;
    *)
        echo "bench: unknown section '$section'" \
            "(hello, rows, lookup, webhook, crash, tls, blocking, cache)" >&2
        exit 2
        ;;
    esac
    stop_all
done
