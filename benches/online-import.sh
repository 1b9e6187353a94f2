#!/usr/bin/env bash
# Issue 15, point 1: a 100,000-entry feed loaded through the running server against the same
# feed loaded offline, and another reader's type-ahead while the online load runs.
#
#   benches/online-import.sh [ENTRIES] [LOAD_SECONDS]
#
# Uses the release build (cargo build --release --bins). The directory is
# `onepages generate --demo --entries ENTRIES --seed 7`; the feed is the same file with every
# person's title changed (a nightly feed in which everyone changes: every record is a real
# replace, the heaviest upsert). Steps, on one machine, one at a time:
#   1. offline: the initial load into an empty data directory, then the changed feed (timed);
#   2. the initial load's copy served; Thunderbird type-ahead (onepages-load, 4 connections,
#      LOAD_SECONDS) idle;
#   3. the changed feed through `import --server` alone (timed);
#   4. the initial feed again through `import --server` (every record changes back) while
#      the same type-ahead load runs.
# Traffic stays on 127.0.0.1; every step is bounded (the load by its seconds).
set -euo pipefail
n=${1:-100000}
secs=${2:-15}
bin=${BIN:-target/release/onepages}
load=${LOAD:-target/release/onepages-load}
w=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$w"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="ldap://127.0.0.1:$port"
admin="cn=demo-admin,ou=services,dc=one-mail,dc=on,dc=ca"
reader="cn=demo-reader,ou=services,dc=one-mail,dc=on,dc=ca"
printf 'demo-admin-2026\n' >"$w/admin.pw"

"$bin" generate --demo --entries "$n" --seed 7 -o "$w/feed.ldif" --queries "$w/queries.txt" 2>/dev/null
sed 's/^title: /title: Senior /' "$w/feed.ldif" >"$w/changed.ldif"
changed=$(grep -c '^title: Senior ' "$w/changed.ldif")
echo "feed: $(grep -c '^dn: ' "$w/feed.ldif") records, $changed with a changed title"

secs_of() { # command... -> wall seconds
  local t0 t1
  t0=$(date +%s.%N); "$@" >"$w/out" 2>"$w/err" || { cat "$w/err"; return 1; }; t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.1f}')"
}
summary() { grep -E "records" "$w/err" | grep -v '%)' | tail -3 | sed 's/^/    /'; }

t=$(secs_of "$bin" import --data-dir "$w/off" "$w/feed.ldif"); echo "offline initial load: $t s"; summary
cp -a "$w/off" "$w/on"
t_off=$(secs_of "$bin" import --data-dir "$w/off" "$w/changed.ldif"); echo "offline changed feed: $t_off s"; summary

"$bin" serve --data-dir "$w/on" --listen "127.0.0.1:$port" >"$w/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do ldapsearch -x -H "$url" -b "" -s base >/dev/null 2>&1 && break; sleep 0.2; done
typeahead() {
  "$load" --url "$url" --bind-dn "$reader" --password demo-reader-2026 --queries "$w/queries.txt" \
    --workload thunderbird --connections 4 --seconds "$secs" | tail -1
}
echo "type-ahead idle:        $(typeahead)"
t_on=$(secs_of "$bin" import --server "$url" --bind-dn "$admin" --password-file "$w/admin.pw" "$w/changed.ldif")
echo "online changed feed (alone): $t_on s"; summary
python3 -c "print(f'online / offline = {$t_on / $t_off:.2f}')"
"$bin" import --server "$url" --bind-dn "$admin" --password-file "$w/admin.pw" "$w/feed.ldif" >"$w/out2" 2>"$w/err2" &
ipid=$!
sleep 1
echo "type-ahead during load: $(typeahead)"
t0=$(date +%s)
wait "$ipid"
echo "online feed under type-ahead finished $(( $(date +%s) - t0 )) s after the load run ended"
grep -E "records" "$w/err2" | grep -v '%)' | tail -1 | sed 's/^/    /'
