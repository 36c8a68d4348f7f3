#!/bin/sh
# install-deps.sh - installs the Debian packages Portico builds and tests with, only those
# missing. `--check-only` installs nothing: exit 0 when all are present, 1 otherwise.
set -eu

PACKAGES="libh2o-evloop-dev libpython3-dev libsqlite3-dev libpq-dev libsodium-dev
libjansson-dev libssl-dev pkg-config gcc make python3 python3-pytest python3-requests
python3-jwt python3-cryptography postgresql wrk uwsgi-core uwsgi-plugin-python3 valgrind curl
clang libclang-rt-14-dev clang-format python3-pandas libjs-codemirror chromium
chromium-driver python3-selenium nghttp2-client openssl python3-jsonschema
python3-prometheus-client python3-pytest-xdist nginx-light"

check_only=0
case "${1:-}" in
--check-only) check_only=1 ;;
"") ;;
-h | --help)
    echo "usage: $0 [--check-only]"
    exit 0
    ;;
*)
    echo "install-deps: unknown option '$1' (usage: $0 [--check-only])" >&2
    exit 2
    ;;
esac

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
    *" installed") ;;
    *) missing="$missing $p" ;;
    esac
done
missing=${missing# }
total=$(echo "$PACKAGES" | wc -w)

if [ -z "$missing" ]; then
    echo "install-deps: all $total packages present"
    exit 0
fi
if [ "$check_only" = 1 ]; then
    echo "install-deps: missing: $missing"
    exit 1
fi

if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-deps: need root or sudo to install: $missing" >&2
    exit 1
fi

echo "install-deps: installing $(echo "$missing" | wc -w) of $total packages: $missing"
log=$(mktemp "${TMPDIR:-/tmp}/portico-install-deps.XXXXXX")
trap 'rm -f "$log"' EXIT

# Refresh the package lists only when one of the missing packages is unknown to them.
need_update=0
for p in $missing; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then
        need_update=1
        break
    fi
done
if [ "$need_update" = 1 ] &&
    ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: apt-get update failed" >&2
    exit 1
fi
# shellcheck disable=SC2086 # $missing is a list of words
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    $missing >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: apt-get install failed" >&2
    exit 1
fi
