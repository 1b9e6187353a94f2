#!/usr/bin/env bash
# The dormant-account rules on a generated directory with realistic account histories
# (`onepages generate --history`): the report offline and through a running server, then
# `--apply` through the server, each timed (wall clock of the command, and the evaluation's
# own `took_ms`).
#
#   benches/dormant.sh                 # 100,000 people, histories as of today
#   N=20000 benches/dormant.sh
#
# Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
PORT=${PORT:-14011}
SUFFIX="dc=one-mail,dc=on,dc=ca"
ADMIN="cn=demo-admin,ou=services,$SUFFIX"   # generate writes it
BIN=target/release/onepages
cargo build --release --quiet --bin onepages
work=$(mktemp -d /tmp/onepages-dormant.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

today=$(date -u +%F)
"$BIN" generate --entries "$N" --seed 1 --history "$today" -o "$work/data.ldif"
/usr/bin/time -f "import: %e s, %M KiB" "$BIN" import --data-dir "$work/d" "$work/data.ldif" 2>&1 | tail -2

secs() { python3 -c "import time; print(time.time())"; }
timed() { # label command... -> prints the label, the wall time and the last line
  local t0 t1 label=$1
  shift
  t0=$(secs)
  "$@" >"$work/out" 2>"$work/err" || { cat "$work/err"; return 1; }
  t1=$(secs)
  printf '%s: %.2f s wall\n' "$label" "$(python3 -c "print($t1 - $t0)")"
}
took() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('  took_ms', r['took_ms'], '|', len(r['items']), 'lines |', {a: sum(1 for i in r['items'] if i['action'] == a) for a in ('remove','disable','skip','exemption-ends')}, '| accounts', r['accounts'])" "$work/out"; }

timed offline-report "$BIN" dormant --data-dir "$work/d" --format json && took
timed offline-report-table "$BIN" dormant --data-dir "$work/d" && tail -2 "$work/out"

"$BIN" serve --data-dir "$work/d" --listen "127.0.0.1:$PORT" 2>"$work/server.log" &
pid=$!
for _ in $(seq 1 600); do
  ldapsearch -x -H "ldap://127.0.0.1:$PORT" -b "" -s base >/dev/null 2>&1 && break
  sleep 0.2
done
online=(--server "ldap://127.0.0.1:$PORT" --bind-dn "$ADMIN" --password demo-admin-2026)
timed online-report "$BIN" dormant "${online[@]}" --format json && took
timed online-apply "$BIN" dormant "${online[@]}" --apply --format json && took
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); import collections; print('  outcomes', dict(collections.Counter((i['outcome'] or '-').split(':')[0] for i in r['items'])))" "$work/out"
timed online-report-after "$BIN" dormant "${online[@]}" --format json && took
echo "trash: $("$BIN" trash list "${online[@]}" | grep -c ' (deleted by') tombstones"
