#!/usr/bin/env bash
# Outlook's first browse after a restart (issue 18, item 5): the first VLV window at a
# directory of N people is timed on a fresh start (the sorted list is built), then after a
# clean restart (the list kept by the shutdown is read back), and the shutdown and start
# themselves; then after a crash: WRITES modifies, a window (the list brought forward), the
# periodic keep (sorted_lists_keep_secs, KEEP_SECS here), WRITES more modifies, SIGKILL, and
# the first window after the restart (the kept list brought forward with the log).
#
#   N=1000000 benches/restart-browse.sh
#
# Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
WRITES=${WRITES:-1000}
KEEP_SECS=${KEEP_SECS:-5}
PORT=${PORT:-14041}
SUFFIX="dc=one-mail,dc=on,dc=ca"
READER="cn=demo-reader,ou=services,$SUFFIX"
cargo build --release --quiet --bins
OP=target/release/onepages
LOAD=target/release/onepages-load
work=$(mktemp -d /tmp/onepages-restart.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

$OP generate --entries "$N" --seed 1 -o "$work/data.ldif" --queries "$work/q.tsv" --query-count 2000
$OP import --data-dir "$work/d" "$work/data.ldif" >/dev/null 2>&1
now() { python3 -c "import time; print(time.time())"; }
took() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.2f}')" "$1" "$(now)"; }
start() { # sets pid; prints how long until the server answered
  local t0; t0=$(now)
  ONEPAGES_SORTED_LISTS_KEEP_SECS=$KEEP_SECS \
    $OP serve --data-dir "$work/d" --listen "127.0.0.1:$PORT" >>"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 3000); do
    ldapsearch -x -H "ldap://127.0.0.1:$PORT" -b "" -s base >/dev/null 2>&1 && break
    sleep 0.05
  done
  took "$t0"
}
first_page() { # -> ms of one VLV window of 20 at a random offset
  IFS=$'\t' read -r _ _ _ _ _ p50 _ < <($LOAD --url "ldap://127.0.0.1:$PORT" --bind-dn "$READER" \
    --password demo-reader-2026 --queries "$work/q.tsv" --workload browse --connections 1 \
    --max-requests 1 --seconds 120 --tsv)
  echo "$p50"
}
modify() { # WRITES modifies of random people, one connection, each durable
  $LOAD --url "ldap://127.0.0.1:$PORT" --bind-dn "cn=demo-admin,ou=services,$SUFFIX" \
    --password demo-admin-2026 --queries "$work/q.tsv" --workload modify --connections 1 \
    --max-requests "$WRITES" --seconds 600 --tsv >/dev/null
}
stop() { # prints how long the clean shutdown took
  local t0; t0=$(now)
  kill -TERM "$pid"; wait "$pid" || true; pid=
  took "$t0"
}
echo "| step | seconds or ms |"
echo "| --- | --- |"
start >"$work/t"; echo "| start (fresh) | $(cat "$work/t") s |"
echo "| first browse window (the list is built) | $(first_page) ms |"
echo "| second window | $(first_page) ms |"
stop >"$work/t"; echo "| clean shutdown (the list is kept) | $(cat "$work/t") s |"
echo "| kept file | $(du -h "$work/d/sorted-views.bin" | cut -f1) |"
start >"$work/t"; echo "| start (the list is read back) | $(cat "$work/t") s |"
echo "| first browse window after the restart | $(first_page) ms |"
echo "| second window | $(first_page) ms |"
modify
echo "| first window after $WRITES modifies (brought forward) | $(first_page) ms |"
sleep $((KEEP_SECS + 2))
modify
kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; pid=
echo "| kept file before the crash | $(du -h "$work/d/sorted-views.bin" | cut -f1) |"
start >"$work/t"; echo "| start after a SIGKILL ($WRITES modifies since the list was kept) | $(cat "$work/t") s |"
echo "| first browse window after the crash | $(first_page) ms |"
echo "| second window | $(first_page) ms |"
grep -c "sorted lists kept from before the restart" "$work/serve.log" | sed 's/^/| starts that read the kept lists back | /; s/$/ |/'
stop >/dev/null
echo
echo "N=$N; $(nproc) cores"
