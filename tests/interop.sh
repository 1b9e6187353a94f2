#!/usr/bin/env bash
# Drives a real ONE Pages server with OpenLDAP's own clients (ldapsearch, ldapwhoami,
# ldapcompare, ldapmodify, ldapdelete) and checks what they print. Needs ldap-utils.
# Usage: tests/interop.sh [path/to/onepages]
set -euo pipefail

bin=${1:-target/debug/onepages}
S="dc=one-mail,dc=on,dc=ca"
R="cn=demo-reader,ou=services,$S"
A="cn=demo-admin,ou=services,$S"
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 3390)
H="ldap://127.0.0.1:$port"
log="$data/server.log"

"$bin" serve --demo --data-dir "$data/dir" --listen "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
  ldapsearch -x -H "$H" -b "" -s base >/dev/null 2>&1 && break
  sleep 0.2
done

pass=0; fail=0
check() { # name, expected substring, command...
  local name=$1 want=$2; shift 2
  local out
  out=$("$@" 2>&1) || true
  if grep -qF -- "$want" <<<"$out"; then
    pass=$((pass+1)); echo "ok   $name"
  else
    fail=$((fail+1)); echo "FAIL $name: expected '$want' in:"; sed 's/^/     /' <<<"$out"
  fi
}

check "root DSE" "namingContexts: $S" ldapsearch -x -LLL -H "$H" -b "" -s base +
check "root DSE vendor" "vendorName: ONE Pages" ldapsearch -x -LLL -H "$H" -b "" -s base
check "subschema attributeTypes" "attributeTypes: ( 2.5.4.3 NAME ( 'cn' 'commonName' )" \
  ldapsearch -x -LLL -o ldif-wrap=no -H "$H" -b cn=subschema -s base +
check "subschema objectClasses" "NAME 'inetOrgPerson'" \
  ldapsearch -x -LLL -o ldif-wrap=no -H "$H" -b cn=subschema -s base objectClasses
check "anonymous read refused" "Insufficient access (50)" \
  ldapsearch -x -LLL -H "$H" -b "$S" "(cn=dewey*)"
check "reader search" "mail: dewey.rahim@one-mail.on.ca" \
  ldapsearch -x -LLL -H "$H" -D "$R" -w demo-reader-2026 -b "ou=people,$S" "(cn=dewey*)" cn mail
check "outlook check names" "dn: uid=dewey.rahim@oneid.on.ca,ou=people,$S" \
  ldapsearch -x -LLL -H "$H" -D "$R" -w demo-reader-2026 -a always -z 100 -b "$S" \
  "(&(mail=*)(|(mail=dewey*)(|(cn=dewey*)(|(sn=dewey*)(givenName=dewey*)))))" cn mail
check "thunderbird substring" "dn: uid=helene.cote-tremblay@oneid.on.ca" \
  ldapsearch -x -LLL -H "$H" -D "$R" -w demo-reader-2026 -z 100 -b "$S" \
  "(|(cn=*hélène*côté*)(mail=*hélène côté*)(givenName=*hélène*)(sn=*hélène côté*))"
check "size limit" "Size limit exceeded (4)" \
  ldapsearch -x -LLL -H "$H" -D "$R" -w demo-reader-2026 -z 5 -b "$S" "(mail=*)" mail
check "unknown critical control" "Critical extension is unavailable (12)" \
  ldapsearch -x -LLL -H "$H" -D "$R" -w demo-reader-2026 -e '!1.2.3.4' -b "$S" "(cn=dewey*)"
check "whoami by ONE ID" "dn:uid=dewey.rahim@oneid.on.ca,ou=people,$S" \
  ldapwhoami -x -H "$H" -D dewey.rahim@oneid.on.ca -w dewey-demo-2026
check "whoami by DN ({CRYPT})" "dn:uid=helene.cote-tremblay" \
  ldapwhoami -x -H "$H" -D "uid=helene.cote-tremblay@oneid.on.ca,ou=people,$S" -w helene-demo-2026
check "wrong password" "Invalid credentials (49)" \
  ldapwhoami -x -H "$H" -D dewey.rahim@oneid.on.ca -w wrong
check "mail address bind hint" "ONE ID username" \
  ldapwhoami -x -H "$H" -D dewey.rahim@one-mail.on.ca -w dewey-demo-2026
check "anonymous whoami" "anonymous" ldapwhoami -x -H "$H"
check "compare true" "TRUE" \
  ldapcompare -x -H "$H" -D "$R" -w demo-reader-2026 "uid=dewey.rahim@oneid.on.ca,ou=people,$S" sn:RAHIM
check "compare false" "FALSE" \
  ldapcompare -x -H "$H" -D "$R" -w demo-reader-2026 "uid=dewey.rahim@oneid.on.ca,ou=people,$S" sn:Smith

cat >"$data/add.ldif" <<LDIF
dn: uid=interop.test@oneid.on.ca,ou=people,$S
changetype: add
objectClass: inetOrgPerson
objectClass: onePagesPerson
cn: Interop Test
sn: Test
mail: interop.test@one-mail.on.ca

dn: uid=interop.test@oneid.on.ca,ou=people,$S
changetype: modify
replace: title
title: Infirmière
LDIF
check "ldapmodify add+modify" "modifying entry" \
  ldapmodify -x -H "$H" -D "$A" -w demo-admin-2026 -f "$data/add.ldif"
check "modified entry is found" "title:: SW5maXJtacOocmU=" \
  ldapsearch -x -LLL -H "$H" -D "$R" -w demo-reader-2026 -b "$S" "(mail=interop.test@one-mail.on.ca)" title
check "reader cannot write" "Insufficient access (50)" \
  ldapdelete -x -H "$H" -D "$R" -w demo-reader-2026 "uid=interop.test@oneid.on.ca,ou=people,$S"
ldapdelete -x -H "$H" -D "$A" -w demo-admin-2026 "uid=interop.test@oneid.on.ca,ou=people,$S"
check "deleted entry is gone" "# numResponses: 1" \
  ldapsearch -x -H "$H" -D "$R" -w demo-reader-2026 -b "$S" "(mail=interop.test*)" dn

check "offline import refuses a served data directory" "in use by another process: onepages serve" \
  "$bin" import --data-dir "$data/dir" "$data/add.ldif"

kill -TERM "$pid"
if wait "$pid"; then pass=$((pass+1)); echo "ok   SIGTERM shuts down cleanly"; else fail=$((fail+1)); echo "FAIL SIGTERM exit status"; cat "$log"; fi
trap 'rm -rf "$data"' EXIT

echo "interop: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
