#!/usr/bin/env bash
# Reads while writing (issue 18, items 4 and 5): the type-ahead load alone, then the same load
# beside a steady writer (modify at RATE/s) and an online import of IMPORT entries; and Outlook
# browsing (VLV pages of 20 at random offsets over the sorted people) alone and beside a writer
# at one modify a second, so that every page is read within a second of a write. Reports p50 /
# p99 of each and their ratios (mixed / alone).
#
#   benches/mixed.sh                   # N=100000
#   N=1000000 SECONDS_PER=20 benches/mixed.sh
#
# Traffic stays on 127.0.0.1; every load run is bounded by SECONDS_PER.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
SECONDS_PER=${SECONDS_PER:-15}
RATE=${RATE:-50}
IMPORT=${IMPORT:-10000}
PORT=${PORT:-14021}
SUFFIX="dc=one-mail,dc=on,dc=ca"
READER="cn=demo-reader,ou=services,$SUFFIX"
ADMIN="cn=demo-admin,ou=services,$SUFFIX"
cargo build --release --quiet --bins
OP=target/release/onepages
LOAD=target/release/onepages-load
work=$(mktemp -d /tmp/onepages-mixed.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

$OP generate --entries "$N" --seed 1 -o "$work/data.ldif" --queries "$work/q.tsv" --query-count 20000
# The feed: other people (another seed), under their own unit so that nothing collides
# (records whose DN is base64, names with accents, are left out).
$OP generate --entries "$IMPORT" --seed 9 -o "$work/feed-src.ldif"
awk -v S="$SUFFIX" '
  /^dn:: / { skip = 1 } /^dn: / && $0 !~ /ou=people,/ { skip = 1 } /^dn: / && $0 ~ /ou=people,/ { skip = 0 }
  !skip { gsub(/ou=people,/, "ou=feed,"); gsub(/@oneid\.on\.ca/, ".feed@oneid.on.ca"); gsub(/@([a-z-]+\.)*one-mail\.on\.ca/, ".feed&"); print }
' "$work/feed-src.ldif" >"$work/feed.ldif"
printf 'dn: ou=feed,%s\nobjectClass: organizationalUnit\nou: feed\n\n' "$SUFFIX" >"$work/unit.ldif"
printf 'admins = ["%s"]\n' "$ADMIN" >"$work/onepages.toml"
$OP import --config "$work/onepages.toml" --data-dir "$work/d" "$work/data.ldif" "$work/unit.ldif" >/dev/null 2>&1
printf 'demo-admin-2026\n' >"$work/admin.pw"
ONEPAGES_SIZE_LIMIT=1000 $OP serve --config "$work/onepages.toml" --data-dir "$work/d" --listen "127.0.0.1:$PORT" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 1 600); do
  ldapsearch -x -H "ldap://127.0.0.1:$PORT" -b "" -s base >/dev/null 2>&1 && break
  sleep 0.2
done

load() { # bind workload conns [extra args] -> the load generator's line
  local bind=$READER pw=demo-reader-2026
  if [ "$1" = admin ]; then bind=$ADMIN; pw=demo-admin-2026; fi
  $LOAD --url "ldap://127.0.0.1:$PORT" --bind-dn "$bind" --password "$pw" --queries "$work/q.tsv" \
    --workload "$2" --connections "$3" --seconds "$SECONDS_PER" --tsv "${@:4}"
}
p() { IFS=$'\t' read -r _ _ _ ops _ p50 _ p99 err <<<"$1"; echo "$ops $p50 $p99 $err"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b>0 else 'n/a')" "$1" "$2"; }

# Warm the sorted view once (its first build is not what is measured).
load reader browse 1 --max-requests 3 >/dev/null
# And the type-ahead: its first seconds on a fresh server are slower (pages of the index and
# the store read for the first time), which would flatter the ratio of the run beside writers.
load reader thunderbird 8 --max-requests 20000 >/dev/null

echo "| run | ops/s | p50 ms | p99 ms | errors | p99 / alone |"
echo "| --- | --- | --- | --- | --- | --- |"
read -r a_ops a50 a99 aerr < <(p "$(load reader thunderbird 8 --timeline "$work/alone.tsv")")
echo "| thunderbird:8 alone | $a_ops | $a50 | $a99 | $aerr | 1.00 |"
load admin modify 1 --rate "$RATE" >"$work/w.txt" &
w=$!
( sleep 1; $OP import --server "ldap://127.0.0.1:$PORT" --bind-dn "$ADMIN" --password-file "$work/admin.pw" "$work/feed.ldif" >"$work/import.txt" 2>&1 ) &
imp=$!
read -r m_ops m50 m99 merr < <(p "$(load reader thunderbird 8 --timeline "$work/mixed.tsv")")
wait "$w"; wait "$imp" || true
read -r w_ops w50 w99 werr < <(p "$(cat "$work/w.txt")")
echo "| thunderbird:8 beside modify at $RATE/s and an import of $IMPORT | $m_ops | $m50 | $m99 | $merr | $(ratio "$m99" "$a99") |"
echo "| (the writer: modify:1) | $w_ops | $w50 | $w99 | $werr | |"
echo "| (the import) | $(grep -o '[0-9]* records:.*' "$work/import.txt" | head -1) | | | | |"
timeline_alone=$(tail -n +2 "$work/alone.tsv" | cut -f4 | paste -sd' ')
timeline_mixed=$(tail -n +2 "$work/mixed.tsv" | cut -f4 | paste -sd' ')

read -r b_ops b50 b99 berr < <(p "$(load reader browse 8)")
echo "| browse:8 alone | $b_ops | $b50 | $b99 | $berr | 1.00 |"
load admin modify 1 --rate 1 >"$work/w1.txt" &
w=$!
read -r c_ops c50 c99 cerr < <(p "$(load reader browse 8)")
wait "$w"
echo "| browse:8 beside a modify a second | $c_ops | $c50 | $c99 | $cerr | $(ratio "$c99" "$b99") |"
echo
echo "N=$N; $(nproc) cores; serving peak RSS $(awk '/VmHWM/ {print $2}' "/proc/$pid/status") KiB"
echo
echo "Type-ahead p99 (ms) second by second, alone: $timeline_alone"
echo "beside the writer and the import (started at second 1): $timeline_mixed"
