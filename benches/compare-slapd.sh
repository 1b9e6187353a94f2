#!/usr/bin/env bash
# ONE Pages against OpenLDAP slapd (mdb) on the same machine and the same generated data, in
# one run: import time, every workload at the given connection counts (alternating servers),
# and peak memory. Prints a markdown table of ONE Pages / slapd ratios.
#
#   benches/compare-slapd.sh                 # N=100000
#   N=1000000 benches/compare-slapd.sh       # a million entries
#   SECONDS_PER=5 CONNS="1 8" benches/compare-slapd.sh
#   PLAN="connect-bind:8 connect-bind-tls:8" benches/compare-slapd.sh   # some workloads only
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
$OP generate --entries "$N" --seed 1 --argon2-every 100 -o "$work/data.ldif" --queries "$work/q.tsv" --query-count 20000

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
cat >"$work/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include $repo/schema/20-onepages.schema
pidfile $work/slapd.pid
modulepath $modpath
moduleload back_mdb
moduleload sssvlv
moduleload argon2
sizelimit 1000
database mdb
maxsize 8589934592
suffix "$SUFFIX"
rootdn "cn=root,$SUFFIX"
rootpw not-used-by-the-benchmark
directory $work/slapd-db
TLSCertificateFile $work/tls/server.pem
TLSCertificateKeyFile $work/tls/server.key
TLSCACertificateFile $work/tls/ca.pem
index objectClass eq
index cn,sn,givenName,mail eq,sub
index uid,o,ou eq
limits dn.exact="$ADMIN" size=unlimited time=unlimited
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
overlay sssvlv
CONF
echo "# importing into slapd (slapadd -q)" >&2
read -r sl_import sl_import_rss < <(wall $SLAPADD -q -f "$work/slapd.conf" -l "$work/data.ldif")

# --- servers ----------------------------------------------------------------------------------
ONEPAGES_SIZE_LIMIT=1000 $OP serve --config "$work/onepages.toml" --data-dir "$work/op" --listen "127.0.0.1:$OP_PORT" 2>"$work/op.log" &
op_pid=$!; pids+=("$op_pid")
$SLAPD -f "$work/slapd.conf" -h "ldap://127.0.0.1:$SL_PORT/ ldaps://127.0.0.1:$SL_TLS_PORT/" -d 0 2>"$work/slapd.log" &
sl_pid=$!; pids+=("$sl_pid")
for port in $OP_PORT $SL_PORT; do
  for _ in $(seq 1 600); do
    ldapsearch -x -H "ldap://127.0.0.1:$port" -b "" -s base >/dev/null 2>&1 && break
    sleep 0.2
  done
done

run() { # server (op|sl) workload conns
  local bind=$READER pw=demo-reader-2026 url
  if [ "$2" = dump ]; then bind=$ADMIN; pw=demo-admin-2026; fi
  case $1:$2 in
    op:connect-bind-tls) url="ldaps://127.0.0.1:$OP_TLS_PORT" ;;
    sl:connect-bind-tls) url="ldaps://127.0.0.1:$SL_TLS_PORT" ;;
    op:*) url="ldap://127.0.0.1:$OP_PORT" ;;
    sl:*) url="ldap://127.0.0.1:$SL_PORT" ;;
  esac
  $LOAD --url "$url" --ca-file "$work/tls/ca.pem" --bind-dn "$bind" --password "$pw" --queries "$work/q.tsv" \
    --workload "$2" --connections "$3" --seconds "$SECONDS_PER" --tsv
}

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b>0 else 'n/a')" "$1" "$2"; }

echo "| workload | conns | ONE Pages ops/s | slapd ops/s | ONE Pages entries/s | slapd entries/s | ratio | ONE Pages p50/p99 ms | slapd p50/p99 ms | errors (OP/slapd) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
plan=""
for c in $CONNS; do plan="$plan mail-eq:$c"; done
plan="$plan outlook:8 thunderbird:8 connect-bind:8 connect-bind-tls:8 connect-bind-argon2:8 browse:8 dump:1"
PLAN=${PLAN:-$plan}
for item in $PLAN; do
  w=${item%%:*}; c=${item##*:}
  IFS=$'\t' read -r _ _ _ ops_o ent_o p50_o _ p99_o err_o < <(run op "$w" "$c")
  IFS=$'\t' read -r _ _ _ ops_s ent_s p50_s _ p99_s err_s < <(run sl "$w" "$c")
  case $w in
    outlook|thunderbird|dump) r=$(ratio "$ent_o" "$ent_s") ;;
    *) r=$(ratio "$ops_o" "$ops_s") ;;
  esac
  echo "| $w | $c | $ops_o | $ops_s | $ent_o | $ent_s | $r | $p50_o / $p99_o | $p50_s / $p99_s | $err_o / $err_s |"
done

hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
op_mem=$(hwm "$op_pid"); sl_mem=$(hwm "$sl_pid")
echo
echo "| measure | ONE Pages | slapd | ratio |"
echo "| --- | --- | --- | --- |"
echo "| import of $N entries, wall s | $op_import | $sl_import | $(ratio "$op_import" "$sl_import") |"
echo "| import peak RSS, KiB | $op_import_rss | $sl_import_rss | $(ratio "$op_import_rss" "$sl_import_rss") |"
echo "| serving peak RSS (VmHWM), KiB | $op_mem | $sl_mem | $(ratio "$op_mem" "$sl_mem") |"
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; slapd $($SLAPD -VV 2>&1 | head -1 | sed 's/.*slapd //')"
