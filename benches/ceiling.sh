#!/usr/bin/env bash
# ONE Pages against the machine's ceiling (issue 18, item 6): `onepages-canned`, a server that
# reads only the LDAP envelope and answers every search with one canned entry, on the same
# load generator and connections, in ROUNDS alternating pairs; prints ONE Pages / canned.
#
#   benches/ceiling.sh                 # N=100000, mail-eq at 1, 8, 64 connections, connect-bind:8
#   ROUNDS=5 SECONDS_PER=10 benches/ceiling.sh
#
# Traffic stays on 127.0.0.1; every load run is bounded by SECONDS_PER.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
ROUNDS=${ROUNDS:-3}
SECONDS_PER=${SECONDS_PER:-8}
PLAN=${PLAN:-"mail-eq:1 mail-eq:8 mail-eq:64 connect-bind:8"}
OP_PORT=${OP_PORT:-14031}
CAN_PORT=${CAN_PORT:-14032}
SUFFIX="dc=one-mail,dc=on,dc=ca"
READER="cn=demo-reader,ou=services,$SUFFIX"
cargo build --release --quiet --bins
OP=target/release/onepages
LOAD=target/release/onepages-load
work=$(mktemp -d /tmp/onepages-ceiling.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

$OP generate --entries "$N" --seed 1 -o "$work/data.ldif" --queries "$work/q.tsv" --query-count 20000
$OP import --data-dir "$work/d" "$work/data.ldif" >/dev/null 2>&1
ONEPAGES_SIZE_LIMIT=1000 $OP serve --data-dir "$work/d" --listen "127.0.0.1:$OP_PORT" 2>"$work/op.log" &
pids+=("$!")
target/release/onepages-canned --listen "127.0.0.1:$CAN_PORT" 2>"$work/canned.log" &
pids+=("$!")
for port in $OP_PORT $CAN_PORT; do
  for _ in $(seq 1 600); do
    ldapsearch -x -H "ldap://127.0.0.1:$port" -b "" -s base >/dev/null 2>&1 && break
    sleep 0.2
  done
done

run() { # port workload conns -> ops/s
  IFS=$'\t' read -r _ _ _ ops _ < <($LOAD --url "ldap://127.0.0.1:$1" --bind-dn "$READER" --password demo-reader-2026 \
    --queries "$work/q.tsv" --workload "$2" --connections "$3" --seconds "$SECONDS_PER" --tsv)
  echo "$ops"
}
median() { python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.0f}')" "$@"; }

echo "| workload | conns | ONE Pages ops/s | canned ops/s | ONE Pages / canned | ONE Pages runs | canned runs |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for item in $PLAN; do
  w=${item%%:*}; c=${item##*:}
  os=(); cs=()
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
      os+=("$(run $OP_PORT "$w" "$c")"); cs+=("$(run $CAN_PORT "$w" "$c")")
    else
      cs+=("$(run $CAN_PORT "$w" "$c")"); os+=("$(run $OP_PORT "$w" "$c")")
    fi
  done
  mo=$(median "${os[@]}"); mc=$(median "${cs[@]}")
  echo "| $w | $c | $mo | $mc | $(python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$mo" "$mc") | ${os[*]} | ${cs[*]} |"
done
