#!/bin/sh
# demo.sh - sets up the demo data dir (warehouse dw_2 with salesforce.accounts, the /accounts
# endpoint running examples/accounts.py) and serves it. Usage: scripts/demo.sh PATH/TO/portico
#
# Idempotent: each step runs only when its result is missing, so a second run just serves.
# The data dir is ./portico-data (relative to where you run it; `make run` runs at the root).
set -eu

BIN=${1:?usage: scripts/demo.sh PATH/TO/portico}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=./portico-data
URL=http://127.0.0.1:8080
CONSOLE=http://127.0.0.1:8081

p() {
    "$BIN" --data "$DATA" "$@"
}

[ -f "$DATA/portico.db" ] || p init

if ! p db list | awk 'NR > 1 { print $1 }' | grep -qx dw_2; then
    p db add dw_2 --sqlite
fi

if ! p db query dw_2 "SELECT count(*) FROM salesforce.accounts" >/dev/null 2>&1; then
    p db import dw_2 salesforce accounts "$ROOT/examples/accounts.csv"
fi

# A new version only when the example changed since it was added.
if ! p script show accounts 2>/dev/null | cmp -s - "$ROOT/examples/accounts.py"; then
    p script add accounts "$ROOT/examples/accounts.py"
fi

if ! p endpoint show accounts >/dev/null 2>&1; then
    p endpoint add accounts --path /accounts --script accounts --auth public
fi

# The console's first user: only when the data dir has none. Its password is printed once.
password=""
if [ "$(p user list | awk 'NR > 1' | wc -l)" -eq 0 ]; then
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    printf '%s\n' "$password" | p user add admin --role admin >/dev/null
fi

cat <<MSG

Portico demo: $URL/accounts (data dir $DATA)
Try it:
  curl -H 'X-Api-Client: demo' $URL/accounts

Web console: $CONSOLE/
MSG
if [ -n "$password" ]; then
    cat <<MSG
  log in as admin with the password $password
  (shown this once: change it with \`portico --data $DATA user passwd admin\`)
MSG
fi
echo
exec "$BIN" --data "$DATA" serve --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:8081
