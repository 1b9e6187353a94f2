#!/usr/bin/env bash
# ONE Pages against OpenLDAP slapd (mdb) on the same machine and the same generated data, in
# one run: import time; slapd's `threads` picked by tuning runs; every workload in ROUNDS
# alternating pairs (medians; reads, writes, browse on an sssvlv instance); peak memory.
# Prints markdown tables of ONE Pages / slapd ratios.
#
#   benches/compare-slapd.sh                 # N=100000, ROUNDS=3, SECONDS_PER=10
#   N=1000000 benches/compare-slapd.sh       # a million entries
#   SECONDS_PER=5 CONNS="1 8" benches/compare-slapd.sh
#   THREADS=8 PLAN="modify:1 modify:8" benches/compare-slapd.sh   # skip the tuning, some workloads
#   PLAN="connect-bind-tls:8 connect-bind-argon2:8" benches/compare-slapd.sh
#   CERTS_EVERY=10 PLAN="mail-eq:8 cert-lookup:8" benches/compare-slapd.sh   # every 10th person
#                                            # publishes S/MIME certificates (cert-lookup)
#
# Traffic stays on 127.0.0.1; every load run is bounded by SECONDS_PER.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
N=${N:-100000}
SECONDS_PER=${SECONDS_PER:-10}
CONNS=${CONNS:-"1 8 64"}
SUFFIX="dc=one-mail,dc=on,dc=ca"
READER="cn=demo-reader,ou=services,$SUFFIX"
ADMIN="cn=demo-admin,ou=services,$SUFFIX"
OP_PORT=${OP_PORT:-13389}
SL_PORT=${SL_PORT:-13390}
OP_TLS_PORT=${OP_TLS_PORT:-13636}
SL_TLS_PORT=${SL_TLS_PORT:-13637}

if ! command -v slapd >/dev/null 2>&1 && [ ! -x /usr/sbin/slapd ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slapd ldap-utils >/dev/null
fi
SLAPD=$(command -v slapd || echo /usr/sbin/slapd)
SLAPADD=$(command -v slapadd || echo /usr/sbin/slapadd)

cargo build --release --quiet
OP=target/release/onepages
LOAD=target/release/onepages-load

work=$(mktemp -d /tmp/onepages-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "# generating $N entries" >&2
# Every 100th user's password is stored as argon2id (both servers verify {ARGON2}): the
# connect-bind-argon2 workload binds as them.
$OP generate --entries "$N" --seed 1 --argon2-every 100 --certificates-every "${CERTS_EVERY:-0}" \
  -o "$work/data.ldif" --queries "$work/q.tsv" --query-count 20000

# --- imports ----------------------------------------------------------------------------------
wall() { /usr/bin/env python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.time()
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
dt = time.time() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{dt:.2f} {rss}")
sys.exit(rc)
PY
}

# One certificate for both servers (ECDSA P-256, signed by a throw-away CA): the
# connect-bind-tls workload makes a full handshake per connection against either.
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/tls/ca.key" \
  -out "$work/tls/ca.pem" -days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/tls/server.key" \
  -out "$work/tls/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$work/tls/ext.cnf"
openssl x509 -req -in "$work/tls/server.csr" -CA "$work/tls/ca.pem" -CAkey "$work/tls/ca.key" \
  -CAcreateserial -out "$work/tls/server.pem" -days 2 -extfile "$work/tls/ext.cnf" 2>/dev/null

cat >"$work/onepages.toml" <<TOML
admins = ["$ADMIN"]
tls_cert_file = "$work/tls/server.pem"
tls_key_file = "$work/tls/server.key"
ldaps_listen = "127.0.0.1:$OP_TLS_PORT"
TOML
echo "# importing into ONE Pages" >&2
read -r op_import op_import_rss < <(wall $OP import --config "$work/onepages.toml" --data-dir "$work/op" "$work/data.ldif")

mkdir -p "$work/slapd-db"
modpath=/usr/lib/ldap
# slapd's cn (a system attribute, not redefinable in its configuration) has no ORDERING rule,
# so sssvlv refuses to sort by it as Outlook asks; the browse workload's sort key names
# caseIgnoreOrderingMatch (2.5.13.3) for slapd (--sort-rule), and nothing for ONE Pages.
# slapd refuses operational attribute types from a schema file: ONE Pages' own (sign-in and
# status stamps, the tombstone view's) become plain ones in slapd's copy.
sed -e 's/ NO-USER-MODIFICATION//' -e 's/ USAGE [A-Za-z]*//' \
  "$repo/schema/20-onepages.schema" >"$work/20-onepages.schema"
# slapd as an expert would set it up for these workloads: mdb with its default durable
# commits, the indexes the templates use (pres where one has a presence term), an ACL as
# simple as ONE Pages' policy (people and readers read, the administrator writes, passwords
# are for binding only), `threads` chosen by the tuning runs below, and no overlay but for
# the browse workload, which needs sssvlv (its own slapd start on the same database: the
# overlay also takes over paged results, which would slow the dump).
slapd_conf() { # file threads overlay(yes|no)
  {
    echo "include /etc/ldap/schema/core.schema"
    echo "include /etc/ldap/schema/cosine.schema"
    echo "include /etc/ldap/schema/inetorgperson.schema"
    echo "include $work/20-onepages.schema"
    echo "pidfile $work/slapd.pid"
    echo "modulepath $modpath"
    echo "moduleload back_mdb"
    echo "moduleload argon2"
    if [ "$3" = yes ]; then echo "moduleload sssvlv"; fi
    echo "threads $2"
    echo "sizelimit 1000"
    echo "TLSCertificateFile $work/tls/server.pem"
    echo "TLSCertificateKeyFile $work/tls/server.key"
    echo "TLSCACertificateFile $work/tls/ca.pem"
    echo "database mdb"
    echo "maxsize 8589934592"
    echo "suffix \"$SUFFIX\""
    echo "rootdn \"cn=root,$SUFFIX\""
    echo "rootpw not-used-by-the-benchmark"
    echo "directory $work/slapd-db"
    echo "index objectClass eq,pres"
    echo "index cn,sn,givenName,mail eq,sub,pres"
    echo "index uid,o,ou eq"
    echo "limits dn.exact=\"$ADMIN\" size=unlimited time=unlimited"
    echo "access to attrs=userPassword by self write by anonymous auth by * none"
    echo "access to * by dn.exact=\"$ADMIN\" write by users read by * none"
    if [ "$3" = yes ]; then echo "overlay sssvlv"; fi
  } >"$1"
}
slapd_conf "$work/slapd.conf" 16 no
echo "# importing into slapd (slapadd -q)" >&2
read -r sl_import sl_import_rss < <(wall $SLAPADD -q -f "$work/slapd.conf" -l "$work/data.ldif")

# --- servers ----------------------------------------------------------------------------------
wait_for() { # port
  for _ in $(seq 1 600); do
    ldapsearch -x -H "ldap://127.0.0.1:$1" -b "" -s base >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "nothing answers on $1" >&2; return 1
}
sl_pid=""
start_slapd() { # threads overlay
  stop_slapd
  slapd_conf "$work/slapd.conf" "$1" "$2"
  $SLAPD -f "$work/slapd.conf" -h "ldap://127.0.0.1:$SL_PORT/ ldaps://127.0.0.1:$SL_TLS_PORT/" -d 0 2>"$work/slapd.log" &
  sl_pid=$!; pids+=("$sl_pid")
  wait_for "$SL_PORT"
}
stop_slapd() {
  if [ -n "$sl_pid" ]; then
    kill -INT "$sl_pid" 2>/dev/null || true
    wait "$sl_pid" 2>/dev/null || true
    sl_pid=""
  fi
}
ONEPAGES_SIZE_LIMIT=1000 $OP serve --config "$work/onepages.toml" --data-dir "$work/op" --listen "127.0.0.1:$OP_PORT" 2>"$work/op.log" &
op_pid=$!; pids+=("$op_pid")
wait_for "$OP_PORT"

run() { # server (op|sl) workload conns -> the load generator's line
  local bind=$READER pw=demo-reader-2026 url
  case $2 in dump|modify|add-delete) bind=$ADMIN; pw=demo-admin-2026 ;; esac
  case $1:$2 in
    op:connect-bind-tls) url="ldaps://127.0.0.1:$OP_TLS_PORT" ;;
    sl:connect-bind-tls) url="ldaps://127.0.0.1:$SL_TLS_PORT" ;;
    op:*) url="ldap://127.0.0.1:$OP_PORT" ;;
    sl:*) url="ldap://127.0.0.1:$SL_PORT" ;;
  esac
  local extra=()
  if [ "$1:$2" = sl:browse ]; then extra=(--sort-rule 2.5.13.3); fi
  $LOAD --url "$url" --ca-file "$work/tls/ca.pem" --bind-dn "$bind" --password "$pw" --queries "$work/q.tsv" \
    --workload "$2" --connections "$3" --seconds "$SECONDS_PER" --tsv "${extra[@]}"
}
figure() { # workload, load line -> the figure compared (entries/s for entry-heavy workloads)
  local w=$1; shift
  IFS=$'\t' read -r _ _ _ ops ent _ <<<"$*"
  case $w in
    outlook|outlook-no-mail|thunderbird|dump|browse) echo "$ent" ;;
    *) echo "$ops" ;;
  esac
}
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b>0 else 'n/a')" "$1" "$2"; }
median() { python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.0f}')" "$@"; }

# --- slapd's threads: the fastest of the candidates on two read workloads ----------------------
THREAD_CANDIDATES=${THREAD_CANDIDATES:-"4 8 16 32"}
if [ -n "${THREADS:-}" ]; then
  best=$THREADS
  echo "slapd threads: $best (given)"
else
  echo "| slapd threads | mail-eq:8 ops/s | outlook:8 entries/s | sum of shares |"
  echo "| --- | --- | --- | --- |"
  declare -A me ou
  for t in $THREAD_CANDIDATES; do
    start_slapd "$t" no
    me[$t]=$(figure mail-eq "$(run sl mail-eq 8)")
    ou[$t]=$(figure outlook "$(run sl outlook 8)")
  done
  maxme=$(printf '%s\n' "${me[@]}" | sort -n | tail -1); maxou=$(printf '%s\n' "${ou[@]}" | sort -n | tail -1)
  best=""; bestscore=0
  for t in $THREAD_CANDIDATES; do
    score=$(python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2])+float(sys.argv[3])/float(sys.argv[4]):.3f}')" "${me[$t]}" "$maxme" "${ou[$t]}" "$maxou")
    echo "| $t | ${me[$t]} | ${ou[$t]} | $score |"
    if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$score" "$bestscore"; then
      best=$t; bestscore=$score
    fi
  done
  echo
  echo "slapd threads: $best (the fastest above)"
fi
echo

# --- with certificates: both servers answer cert-lookup with the same DER values -------------
if [ "${CERTS_EVERY:-0}" != 0 ]; then
  start_slapd "$best" no
  mail=$(awk -F'\t' '$1 == "cert" { print $2; exit }' "$work/q.tsv")
  for port in "$OP_PORT" "$SL_PORT"; do
    ldapsearch -x -LLL -o ldif_wrap=no -H "ldap://127.0.0.1:$port" -D "$READER" -w demo-reader-2026 \
      -b "$SUFFIX" "(mail=$mail)" userSMIMECertificate 'userCertificate;binary' \
      | sed -n 's/^user[A-Za-z;]*:: //Ip' | sort >"$work/certs.$port"
  done
  if cmp -s "$work/certs.$OP_PORT" "$work/certs.$SL_PORT" && [ "$(grep -c . "$work/certs.$OP_PORT")" = 2 ]; then
    echo "cert-lookup: both servers return the same certificate values for $mail"
  else
    echo "cert-lookup: the servers' answers for $mail differ (ONE Pages < > slapd):" >&2
    diff <(cut -c1-60 "$work/certs.$OP_PORT") <(cut -c1-60 "$work/certs.$SL_PORT") >&2 || true
    exit 1
  fi
  echo
fi

# --- the workloads: ROUNDS alternating pairs each, medians ---------------------------------------
ROUNDS=${ROUNDS:-3}
plan=""
for c in $CONNS; do plan="$plan mail-eq:$c"; done
plan="$plan outlook:8 outlook-no-mail:8 thunderbird:8 connect-bind:8 dump:1 modify:1 modify:8 add-delete:1 add-delete:8 browse:8"
PLAN=${PLAN:-$plan}
echo "| workload | conns | ONE Pages (median) | slapd (median) | ratio | ONE Pages runs | slapd runs | ONE Pages p50/p99 ms | slapd p50/p99 ms | errors (OP/slapd) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
overlay=""
for item in $PLAN; do
  w=${item%%:*}; c=${item##*:}
  want=no; [ "$w" = browse ] && want=yes
  if [ "$overlay" != "$want" ]; then
    if [ "$overlay" = no ]; then sl_mem=$(awk '/VmHWM/ {print $2}' "/proc/$sl_pid/status" 2>/dev/null || echo 0); fi
    start_slapd "$best" "$want"; overlay=$want
  fi
  os=(); ss=(); lo=""; ls=""; eo=0; es=0
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then order="op sl"; else order="sl op"; fi
    for who in $order; do
      line=$(run "$who" "$w" "$c")
      IFS=$'\t' read -r _ _ _ _ _ p50 _ p99 err <<<"$line"
      if [ "$who" = op ]; then os+=("$(figure "$w" "$line")"); lo="$p50 / $p99"; eo=$((eo + err))
      else ss+=("$(figure "$w" "$line")"); ls="$p50 / $p99"; es=$((es + err)); fi
    done
  done
  mo=$(median "${os[@]}"); ms=$(median "${ss[@]}")
  echo "| $w | $c | $mo | $ms | $(ratio "$mo" "$ms") | ${os[*]} | ${ss[*]} | $lo | $ls | $eo / $es |"
done
if [ "$overlay" = no ]; then sl_mem=$(awk '/VmHWM/ {print $2}' "/proc/$sl_pid/status" 2>/dev/null || echo 0); fi

op_mem=$(awk '/VmHWM/ {print $2}' "/proc/$op_pid/status" 2>/dev/null || echo 0)
sl_mem=${sl_mem:-0}
echo
echo "| measure | ONE Pages | slapd | ratio |"
echo "| --- | --- | --- | --- |"
echo "| import of $N entries, wall s | $op_import | $sl_import | $(ratio "$op_import" "$sl_import") |"
echo "| import peak RSS, KiB | $op_import_rss | $sl_import_rss | $(ratio "$op_import_rss" "$sl_import_rss") |"
echo "| serving peak RSS (VmHWM), KiB (slapd: the instance without sssvlv) | $op_mem | $sl_mem | $(ratio "$op_mem" "$sl_mem") |"
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; slapd $($SLAPD -VV 2>&1 | head -1 | sed 's/.*slapd //')"
