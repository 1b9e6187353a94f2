#!/usr/bin/env bash
# A/B of two ONE Pages builds on the same data: each workload is run against both servers in
# alternating order, ROUNDS times, and the median entries/s (ops/s for mail-eq and
# connect-bind) of each is reported with their ratio B / A. Use it to tell a change's effect
# from the machine's noise (compare-slapd.sh measures against slapd, one run each).
#
#   benches/ab-onepages.sh OLD_BINARY NEW_BINARY
#   ROUNDS=5 SECONDS_PER=8 N=100000 WORKLOADS="mail-eq:1 thunderbird:8" benches/ab-onepages.sh A B
#   A_ENV="ONEPAGES_RECORD_SIGN_INS=false" WORKLOADS="connect-bind:8" benches/ab-onepages.sh X X
#     (one build under two configurations: A_ENV / B_ENV are put in each server's environment)
#   B_CERTS_EVERY=10 WORKLOADS="outlook:8 thunderbird:8" benches/ab-onepages.sh X X
#     (one build on two data sets: B's every 10th person publishes S/MIME certificates, A's
#     people are the same without them)
#
# Traffic stays on 127.0.0.1; every load run is bounded by SECONDS_PER.
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?usage: ab-onepages.sh OLD_BINARY NEW_BINARY}
B=${2:?usage: ab-onepages.sh OLD_BINARY NEW_BINARY}
N=${N:-100000}
ROUNDS=${ROUNDS:-3}
SECONDS_PER=${SECONDS_PER:-8}
WORKLOADS=${WORKLOADS:-"mail-eq:1 mail-eq:8 outlook:8 thunderbird:8 connect-bind:8 dump:1"}
SUFFIX="dc=one-mail,dc=on,dc=ca"
READER="cn=demo-reader,ou=services,$SUFFIX"
ADMIN="cn=demo-admin,ou=services,$SUFFIX"
A_PORT=${A_PORT:-14001}
B_PORT=${B_PORT:-14002}

cargo build --release --quiet --bin onepages-load
LOAD=target/release/onepages-load
work=$(mktemp -d /tmp/onepages-ab.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$B" generate --entries "$N" --seed 1 -o "$work/data.ldif" --queries "$work/q.tsv" --query-count 20000
printf 'admins = ["%s"]\n' "$ADMIN" >"$work/onepages.toml"
if [ "${B_CERTS_EVERY:-0}" != 0 ]; then
  "$B" generate --entries "$N" --seed 1 --certificates-every "$B_CERTS_EVERY" -o "$work/data-b.ldif"
  "$B" import --config "$work/onepages.toml" --data-dir "$work/a" "$work/data.ldif" 2>/dev/null
  "$B" import --config "$work/onepages.toml" --data-dir "$work/b" "$work/data-b.ldif" 2>/dev/null
else
  # Each build imports its own copy: the two may write different record versions.
  "$A" import --config "$work/onepages.toml" --data-dir "$work/a" "$work/data.ldif" 2>/dev/null
  "$B" import --config "$work/onepages.toml" --data-dir "$work/b" "$work/data.ldif" 2>/dev/null
fi
env ONEPAGES_SIZE_LIMIT=1000 ${A_ENV:-} "$A" serve --config "$work/onepages.toml" --data-dir "$work/a" --listen "127.0.0.1:$A_PORT" 2>"$work/a.log" &
pids+=("$!")
env ONEPAGES_SIZE_LIMIT=1000 ${B_ENV:-} "$B" serve --config "$work/onepages.toml" --data-dir "$work/b" --listen "127.0.0.1:$B_PORT" 2>"$work/b.log" &
pids+=("$!")
for port in $A_PORT $B_PORT; do
  for _ in $(seq 1 600); do
    ldapsearch -x -H "ldap://127.0.0.1:$port" -b "" -s base >/dev/null 2>&1 && break
    sleep 0.2
  done
done

run() { # port workload conns -> the figure compared
  local bind=$READER pw=demo-reader-2026
  case $2 in dump|modify|add-delete) bind=$ADMIN; pw=demo-admin-2026 ;; esac
  IFS=$'\t' read -r _ _ _ ops ent _ < <($LOAD --url "ldap://127.0.0.1:$1" --bind-dn "$bind" --password "$pw" \
    --queries "$work/q.tsv" --workload "$2" --connections "$3" --seconds "$SECONDS_PER" --tsv)
  case $2 in
    outlook|outlook-no-mail|thunderbird|dump|browse) echo "$ent" ;;
    *) echo "$ops" ;;
  esac
}
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

echo "| workload | conns | A (median of $ROUNDS) | B (median of $ROUNDS) | B / A | A runs | B runs |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for item in $WORKLOADS; do
  w=${item%%:*}; c=${item##*:}
  as=(); bs=()
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
      as+=("$(run $A_PORT "$w" "$c")"); bs+=("$(run $B_PORT "$w" "$c")")
    else
      bs+=("$(run $B_PORT "$w" "$c")"); as+=("$(run $A_PORT "$w" "$c")")
    fi
  done
  ma=$(median "${as[@]}"); mb=$(median "${bs[@]}")
  ratio=$(python3 -c "import sys; print(f'{float(sys.argv[2])/float(sys.argv[1]):.3f}')" "$ma" "$mb")
  echo "| $w | $c | $ma | $mb | $ratio | ${as[*]} | ${bs[*]} |"
done
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo "?"; }
echo
echo "Peak RSS (VmHWM, KiB) after the runs: A $(hwm "${pids[0]}"), B $(hwm "${pids[1]}")"
