#!/usr/bin/env bash
# Drives a real ONE Pages server with OpenLDAP's own clients (ldapsearch, ldapwhoami,
# ldapcompare, ldapmodify, ldapdelete) and checks what they print, over plain LDAP and LDAPS
# (a throw-away CA and certificate made with openssl). Needs ldap-utils and openssl.
# Usage: tests/interop.sh [path/to/onepages]
set -euo pipefail

bin=${1:-target/debug/onepages}
S="dc=one-mail,dc=on,dc=ca"
R="cn=demo-reader,ou=services,$S"
A="cn=demo-admin,ou=services,$S"
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 3390)
sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 6637)
hport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18389)
H="ldap://127.0.0.1:$port"
HS="ldaps://127.0.0.1:$sport"
log="$data/server.log"

# A CA and a server certificate for 127.0.0.1, and a second CA for the renewal.
pki() { # folder
  mkdir -p "$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/ca.key" \
    -out "$1/ca.pem" -days 2 -subj "/CN=interop CA $(basename "$1")" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/server.key" \
    -out "$1/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$1/ext.cnf"
  openssl x509 -req -in "$1/server.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial \
    -out "$1/server.pem" -days 2 -extfile "$1/ext.cnf" 2>/dev/null
}
pki "$data/pki1"
pki "$data/pki2"
cp "$data/pki1/server.pem" "$data/server.pem"
cp "$data/pki1/server.key" "$data/server.key"
cat >"$data/onepages.toml" <<TOML
tls_cert_file = "$data/server.pem"
tls_key_file = "$data/server.key"
ldaps_listen = "127.0.0.1:$sport"
audit_log = "$data/audit.log"
access_log = "$data/access.log"
http_listen = "127.0.0.1:$hport"
TOML
printf 'demo-admin-2026\n' >"$data/admin.pw"

"$bin" serve --demo --config "$data/onepages.toml" --data-dir "$data/dir" --listen "127.0.0.1:$port" >"$log" 2>&1 &
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
refute() { # name, substring that must not appear, command...
  local name=$1 unwanted=$2; shift 2
  local out
  out=$("$@" 2>&1) || true
  if [ -n "$out" ] && ! grep -qF -- "$unwanted" <<<"$out"; then
    pass=$((pass+1)); echo "ok   $name"
  else
    fail=$((fail+1)); echo "FAIL $name: '$unwanted' (or no output) in:"; sed 's/^/     /' <<<"$out"
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
# ldappasswd without -s: the server generates the password (RFC 3062 §3.3) and it works.
J="uid=jessica.hebert@oneid.on.ca,ou=people,$S"
gen=$(ldappasswd -x -H "$H" -D "$A" -w demo-admin-2026 "$J" 2>&1 | sed -n 's/^New password: //p')
check "ldappasswd without -s prints a generated password" "generated=yes" \
  bash -c '[ "${#1}" -eq 20 ] && echo generated=yes || echo "generated: [$1]"' _ "$gen"
check "and the user binds with it" "dn:$J" ldapwhoami -x -H "$H" -D "$J" -w "$gen"
# The same with python's ldap3 (another client stack): modify_password without a new one.
check "python ldap3 modify_password generates a password the user binds with" "bound=True" \
  python3 - "$H" "$A" "$J" <<'PY'
import sys, ldap3
url, admin, user = sys.argv[1:4]
c = ldap3.Connection(ldap3.Server(url), admin, "demo-admin-2026", auto_bind=True)
new = c.extend.standard.modify_password(user=user, old_password=None, new_password=None)
u = ldap3.Connection(ldap3.Server(url), user, new)
print("generated", len(new), "bound=%s" % u.bind())
PY
# Encryption certificates: an S/MIME certificate made with openssl, published with ldapmodify
# (userCertificate;binary, and userSMIMECertificate as the PKCS#7 that Outlook publishes), read
# back with ldapsearch and decoded by openssl.
DW="uid=dewey.rahim@oneid.on.ca,ou=people,$S"
mkdir -p "$data/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$data/certs/dewey.key" \
  -out "$data/certs/dewey.pem" -days 30 -subj "/CN=Dewey Rahim/O=ONE Pages interop" \
  -addext "subjectAltName=email:dewey.rahim@one-mail.on.ca" 2>/dev/null
openssl x509 -in "$data/certs/dewey.pem" -outform DER -out "$data/certs/dewey.der"
openssl crl2pkcs7 -nocrl -certfile "$data/certs/dewey.pem" -outform DER -out "$data/certs/dewey.p7b"
printf 'dn: %s\nchangetype: modify\nadd: userCertificate;binary\nuserCertificate;binary:< file://%s\n-\nadd: userSMIMECertificate\nuserSMIMECertificate:< file://%s\n-\n' \
  "$DW" "$data/certs/dewey.der" "$data/certs/dewey.p7b" >"$data/certs/add.ldif"
check "ldapmodify publishes a certificate and a PKCS#7" "modifying entry" \
  ldapmodify -x -H "$H" -D "$A" -w demo-admin-2026 -f "$data/certs/add.ldif"
printf 'dn: %s\nchangetype: modify\nadd: userCertificate;binary\nuserCertificate;binary: not a certificate\n-\n' \
  "$DW" >"$data/certs/bad.ldif"
check "what is not a certificate is refused" "Invalid syntax (21)" \
  ldapmodify -x -H "$H" -D "$A" -w demo-admin-2026 -f "$data/certs/bad.ldif"
ldapsearch -x -LLL -o ldif_wrap=no -tt -T "$data/certs" -H "$H" -D "$R" -w demo-reader-2026 -b "$S" \
  "(mail=dewey.rahim@one-mail.on.ca)" 'userSMIMECertificate;binary' 'userCertificate;binary' >"$data/certs/found.ldif"
check "ldapsearch userCertificate;binary decodes with openssl x509 -inform DER" "subject=CN = Dewey Rahim" \
  bash -c 'openssl x509 -inform DER -noout -subject -in "$(sed -n "s|^userCertificate;binary:< file://||p" "$1")"' _ "$data/certs/found.ldif"
check "userSMIMECertificate;binary is the PKCS#7 openssl wrote" "subject=CN = Dewey Rahim" \
  bash -c 'openssl pkcs7 -inform DER -print_certs -noout -in "$(sed -n "s|^userSMIMECertificate;binary:< file://||p" "$1")"' _ "$data/certs/found.ldif"
check "onepages check says which certificate is published and warns of its expiry" "WARNING: this certificate expires in" \
  "$bin" check --server "$H" --bind-dn "$R" --password demo-reader-2026 dewey.rahim@one-mail.on.ca
check "a tagged attribute description matches nothing (RFC 4512 2.5.2)" "entries=0 result=0" \
  bash -c 'out=$(ldapsearch -x -LLL -H "$1" -D "$2" -w demo-reader-2026 -b "$3" "(cn;lang-fr=dewey*)" dn); rc=$?; echo "entries=$(grep -c "^dn:" <<<"$out") result=$rc"' _ "$H" "$R" "$S"
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

check "unauthenticated bind (a name, no password) is refused" "Server is unwilling to perform (53)" \
  ldapwhoami -x -H "$H" -D "$R" -w ""

# Lockout: five wrong passwords within the window lock the account (defaults).
D="uid=darcy.oneil@oneid.on.ca,ou=people,$S"
lock_darcy() { for i in 1 2 3 4 5; do ldapwhoami -x -H "$H" -D "$D" -w "guess-$i" >/dev/null 2>&1 || true; done; }
lock_darcy
check "a locked account's right password is refused like a wrong one" "Invalid credentials (49)" \
  ldapwhoami -x -H "$H" -D "$D" -w darcy-demo-2026
check "the ppolicy control says the account is locked" "Account locked" \
  ldapwhoami -x -H "$H" -D "$D" -w darcy-demo-2026 -e ppolicy
check "administrators read pwdAccountLockedTime" "pwdAccountLockedTime: 2" \
  ldapsearch -x -LLL -H "$H" -D "$A" -w demo-admin-2026 -b "$D" -s base pwdAccountLockedTime pwdFailureTime
refute "readers do not" "pwdAccountLockedTime" \
  ldapsearch -x -LLL -H "$H" -D "$R" -w demo-reader-2026 -b "$D" -s base pwdAccountLockedTime
check "onepages unlock --server" "unlocked" \
  "$bin" unlock --server "$H" --bind-dn "$A" --password-file "$data/admin.pw" darcy.oneil@oneid.on.ca
check "the account signs in again" "dn:$D" \
  ldapwhoami -x -H "$H" -D "$D" -w darcy-demo-2026
lock_darcy
printf 'dn: %s\nchangetype: modify\ndelete: pwdAccountLockedTime\n' "$D" >"$data/unlock.ldif"
check "ldapmodify deleting pwdAccountLockedTime unlocks" "modifying entry" \
  ldapmodify -x -H "$H" -D "$A" -w demo-admin-2026 -f "$data/unlock.ldif"
check "and the account signs in again" "dn:$D" \
  ldapwhoami -x -H "$H" -D "$D" -w darcy-demo-2026
check "the audit trail records the lockout" '"event":"lockout"' cat "$data/audit.log"
check "and the unlocks" '"via":"ldap"' cat "$data/audit.log"
check "the audit log is the owner's only" "600" stat -c %a "$data/audit.log"
check "the access log has the searches" 'SEARCH base="'"$D"'" scope=base' cat "$data/access.log"
check "ldapsearch over LDAPS" "mail: dewey.rahim@one-mail.on.ca" \
  env LDAPTLS_CACERT="$data/pki1/ca.pem" ldapsearch -x -LLL -H "$HS" -D "$R" -w demo-reader-2026 \
  -b "$S" "(mail=dewey.rahim@one-mail.on.ca)" mail
check "ldapwhoami over LDAPS" "dn:$R" \
  env LDAPTLS_CACERT="$data/pki1/ca.pem" ldapwhoami -x -H "$HS" -D "$R" -w demo-reader-2026
check "a client that trusts another CA is refused" "Can't contact LDAP server" \
  env LDAPTLS_CACERT="$data/pki2/ca.pem" ldapwhoami -x -H "$HS" -D "$R" -w demo-reader-2026
check "TLS 1.2 is offered" "Protocol  : TLSv1.2" \
  openssl s_client -connect "127.0.0.1:$sport" -tls1_2 </dev/null
check "TLS 1.1 is refused" "SSL alert number" \
  openssl s_client -connect "127.0.0.1:$sport" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' </dev/null
check "root DSE advertises StartTLS" "supportedExtension: 1.3.6.1.4.1.1466.20037" \
  ldapsearch -x -LLL -H "$H" -b "" -s base supportedExtension
check "ldapsearch -ZZ (StartTLS on the plain port)" "mail: dewey.rahim@one-mail.on.ca" \
  env LDAPTLS_CACERT="$data/pki1/ca.pem" ldapsearch -ZZ -x -LLL -H "$H" -D "$R" -w demo-reader-2026 \
  -b "$S" "(mail=dewey.rahim@one-mail.on.ca)" mail
check "ldapwhoami -ZZ" "dn:$R" \
  env LDAPTLS_CACERT="$data/pki1/ca.pem" ldapwhoami -ZZ -x -H "$H" -D "$R" -w demo-reader-2026
# A renewal: new files, SIGHUP; new sessions get the new certificate.
cp "$data/pki2/server.pem" "$data/server.pem"
cp "$data/pki2/server.key" "$data/server.key"
kill -HUP "$pid"
for _ in $(seq 1 50); do grep -q "TLS certificate reloaded" "$log" && break; sleep 0.1; done
check "SIGHUP reloads the certificate" "dn:$R" \
  env LDAPTLS_CACERT="$data/pki2/ca.pem" ldapwhoami -x -H "$HS" -D "$R" -w demo-reader-2026
check "StartTLS gets the reloaded certificate too" "dn:$R" \
  env LDAPTLS_CACERT="$data/pki2/ca.pem" ldapwhoami -ZZ -x -H "$H" -D "$R" -w demo-reader-2026
echo "not a key" >"$data/server.key"
kill -HUP "$pid"
for _ in $(seq 1 50); do grep -q "TLS certificate not reloaded" "$log" && break; sleep 0.1; done
check "a bad file on SIGHUP keeps the certificate in use" "dn:$R" \
  env LDAPTLS_CACERT="$data/pki2/ca.pem" ldapwhoami -x -H "$HS" -D "$R" -w demo-reader-2026
check "and says why" "server.key" grep "TLS certificate not reloaded" "$log"
# Log rotation as dist/onepages.logrotate does it: move the files, SIGHUP; the server writes
# to new files (nothing lost to a copytruncate).
mv "$data/audit.log" "$data/audit.log.1"
mv "$data/access.log" "$data/access.log.1"
kill -HUP "$pid"
for _ in $(seq 1 50); do [ -f "$data/audit.log" ] && [ -f "$data/access.log" ] && break; sleep 0.1; done
ldapwhoami -x -H "$H" -D "$R" -w demo-reader-2026 >/dev/null 2>&1 || true
check "SIGHUP reopens the audit log after a rotation" '"event":"bind"' cat "$data/audit.log"
check "and the access log" "BIND" cat "$data/access.log"
check "the new audit log is private (0600)" "600" stat -c %a "$data/audit.log"

DW="uid=dewey.rahim@oneid.on.ca,ou=people,$S"
printf 'dn: %s\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: not a phone\n' "$DW" >"$data/phone.ldif"
check "ldapmodify: telephoneNumber 'not a phone' is refused" "Invalid syntax (21)" \
  ldapmodify -x -H "$H" -D "$A" -w demo-admin-2026 -f "$data/phone.ldif"
printf 'dn: %s\nchangetype: modify\nreplace: onePagesStatus\nonePagesStatus: suspended\n' "$DW" >"$data/status.ldif"
check "ldapmodify: onePagesStatus 'suspended' is refused, naming the values" "not one of active, disabled" \
  ldapmodify -x -H "$H" -D "$A" -w demo-admin-2026 -f "$data/status.ldif"
check "the start-up survey of stored values ran" "stored entries checked against the value rules" cat "$log"
# Issue 15: an online --sync feed of ou=night, a leaver in the trash, restored; a backup.
N="ou=night,ou=people,$S"
night() { # file, people...
  local f=$1; shift
  printf 'dn: %s\nobjectClass: organizationalUnit\nou: night\n\n' "$N" >"$f"
  for p in "$@"; do
    printf 'dn: uid=%s@oneid.on.ca,%s\nobjectClass: inetOrgPerson\ncn: %s\nsn: Night\nmail: %s@one-mail.on.ca\n\n' \
      "$p" "$N" "$p" "$p" >>"$f"
  done
}
night "$data/night1.ldif" ann.a bob.b cyd.c dee.d eli.e fay.f gus.g hal.h ivy.i jon.j
night "$data/night2.ldif" ann.a bob.b cyd.c dee.d eli.e fay.f gus.g hal.h ivy.i
check "onepages import --server loads into the running server" "11 records: 11 added" \
  "$bin" import --server "$H" --bind-dn "$A" --password-file "$data/admin.pw" "$data/night1.ldif"
check "a --sync dry run names the leaver" "delete uid=jon.j@oneid.on.ca,$N" \
  "$bin" import --server "$H" --bind-dn "$A" --password-file "$data/admin.pw" --sync "$N" --dry-run "$data/night2.ldif"
check "ldapsearch still finds the leaver after the dry run" "dn: uid=jon.j@oneid.on.ca,$N" \
  ldapsearch -x -LLL -H "$H" -D "$R" -w demo-reader-2026 -b "$N" "(uid=jon.j@oneid.on.ca)" 1.1
check "the --sync feed deletes the leaver" "1 deleted" \
  "$bin" import --server "$H" --bind-dn "$A" --password-file "$data/admin.pw" --sync "$N" "$data/night2.ldif"
refute "ldapsearch no longer finds the leaver" "jon.j" \
  ldapsearch -x -LLL -H "$H" -D "$R" -w demo-reader-2026 -b "$N" "(sn=Night)" uid
check "ldapsearch with Show Deleted shows the tombstone to an administrator" "isDeleted: TRUE" \
  ldapsearch -x -LLL -H "$H" -D "$A" -w demo-admin-2026 -E '!1.2.840.113556.1.4.417' -b "$N" "(uid=jon.j@oneid.on.ca)" isDeleted onePagesDeletedAt
check "and refuses a reader" "Insufficient access (50)" \
  ldapsearch -x -LLL -H "$H" -D "$R" -w demo-reader-2026 -E '!1.2.840.113556.1.4.417' -b "$N" "(objectClass=*)"
check "onepages trash list --server" "uid=jon.j@oneid.on.ca,$N" \
  "$bin" trash list --server "$H" --bind-dn "$A" --password-file "$data/admin.pw" --suffix "$S"
if command -v ldapexop >/dev/null; then
  check "ldapexop restores the leaver" "oid: 2.25.284118977951875160080438219710100426701.4.1" \
    ldapexop -x -H "$H" -D "$A" -w demo-admin-2026 "2.25.284118977951875160080438219710100426701.4.1:jon.j@oneid.on.ca"
else
  check "onepages trash restore --server" "restored" \
    "$bin" trash restore --server "$H" --bind-dn "$A" --password-file "$data/admin.pw" jon.j@oneid.on.ca
fi
check "ldapsearch finds the restored leaver" "dn: uid=jon.j@oneid.on.ca,$N" \
  ldapsearch -x -LLL -H "$H" -D "$R" -w demo-reader-2026 -b "$N" "(uid=jon.j@oneid.on.ca)" 1.1
check "a truncated --sync feed is refused before writing" "nothing was written" \
  "$bin" import --server "$H" --bind-dn "$A" --password-file "$data/admin.pw" --sync "$N" "$data/night2.ldif" --max-deletes 0
check "onepages backup --server while serving" "deleted entries kept" \
  "$bin" backup --server "$H" --bind-dn "$A" --password-file "$data/admin.pw" -o "$data/dir.backup"
check "a backup is the owner's only" "600" stat -c %a "$data/dir.backup"
check "restore-backup into a new data directory" "restored" \
  "$bin" restore-backup "$data/dir.backup" --data-dir "$data/restored"
check "the restored directory holds the restored leaver" "dn: uid=jon.j@oneid.on.ca,$N" \
  "$bin" export --data-dir "$data/restored"
# Issue 16: sign-ins recorded at bind (the binds above), for administrators only; an
# exemption set with ldapmodify and listed by onepages dormant --server.
check "administrators read the sign-in recorded at bind" "onePagesLastSignIn: 20" \
  ldapsearch -x -LLL -H "$H" -D "$A" -w demo-admin-2026 -b "uid=dewey.rahim@oneid.on.ca,ou=people,$S" -s base onePagesLastSignIn
check "readers do not see the sign-in" "hidden" \
  sh -c "ldapsearch -x -LLL -H '$H' -D '$R' -w demo-reader-2026 -b 'uid=dewey.rahim@oneid.on.ca,ou=people,$S' -s base '*' '+' | grep -q onePagesLastSignIn || echo hidden"
until=$(date -u -d '+10 days' +%Y%m%d235959Z)
check "ldapmodify sets an exemption" "modifying entry" \
  ldapmodify -x -H "$H" -D "$A" -w demo-admin-2026 <<LDIF
dn: uid=helene.cote-tremblay@oneid.on.ca,ou=people,$S
changetype: modify
replace: onePagesExemptUntil
onePagesExemptUntil: $until
-
replace: onePagesExemptReason
onePagesExemptReason: parental leave
LDIF
check "onepages dormant --server lists it as ending soon" "exemption-ends,helene.cote-tremblay@oneid.on.ca" \
  "$bin" dormant --server "$H" --bind-dn "$A" --password-file "$data/admin.pw" --format csv
# A generated directory with known histories: the report as of a fixed day matches what the
# rules say of the LDIF, computed here independently.
"$bin" generate --entries 1500 --seed 5 --history 2026-12-01 -o "$data/hist.ldif"
"$bin" import --data-dir "$data/hist" "$data/hist.ldif" >/dev/null 2>&1
expected=$(awk -v RS= -F'\n' '
  { uid=""; c=""; l=""; st="active"; ex=""; kind=""
    for (i = 1; i <= NF; i++) { k = $i; sub(/: .*/, "", k); v = substr($i, length(k) + 3)
      if (k == "uid") uid = v; else if (k == "createTimestamp") c = v
      else if (k == "authTimestamp") l = v; else if (k == "onePagesStatus") st = v
      else if (k == "onePagesExemptUntil") ex = v; else if (k == "onePagesAccountType") kind = v }
    if (uid == "" || kind == "external") next
    due = ""
    if (l == "" && c != "" && c < "20260601000000Z") due = "remove"
    else if (l != "" && st == "active" && l < "20251031000000Z") due = "disable"
    exempt = (ex != "" && ex > "20261201000000Z")
    if (due != "" && exempt) a = "skip"; else if (due != "") a = due
    else if (exempt && ex <= "20261231000000Z") a = "exemption-ends"; else next
    n[a]++ }
  END { printf "remove=%d disable=%d skip=%d exemption-ends=%d", n["remove"], n["disable"], n["skip"], n["exemption-ends"] }' "$data/hist.ldif")
check "onepages dormant --as-of matches the rules computed from the LDIF ($expected)" "$expected" \
  sh -c "'$bin' dormant --data-dir '$data/hist' --as-of 2026-12-01 --format csv | awk -F, 'NR > 1 { n[\$1]++ } END { printf \"remove=%d disable=%d skip=%d exemption-ends=%d\", n[\"remove\"], n[\"disable\"], n[\"skip\"], n[\"exemption-ends\"] }'"
check "and its table ends with the summary" "accounts as of 2026-12-01:" \
  "$bin" dormant --data-dir "$data/hist" --as-of 2026-12-01
# Issue 17: the operators' endpoints, read with curl; the exposition through real parsers
# (promtool's, from Debian's prometheus package, and Python prometheus_client's).
M="http://127.0.0.1:$hport"
check "GET /healthz" '"status":"serving"' curl -sf "$M/healthz"
check "GET /readyz" '"ready":true' curl -sf "$M/readyz"
check "GET /metrics counts the searches above" 'onepages_operations_total{op="search",code="0"}' \
  curl -sf "$M/metrics"
check "and the failed binds" 'onepages_binds_total{outcome="invalid_credentials"}' \
  curl -sf "$M/metrics"
check "and the entries by kind" 'onepages_directory_entries_by_kind{kind="people"}' \
  curl -sf "$M/metrics"
check "and the last import (online, above: the sync the guard stopped)" 'onepages_last_import_success 0' \
  sh -c "curl -sf '$M/metrics' | grep -x 'onepages_last_import_success 0'"
check "and the certificate's expiry" 'onepages_tls_certificate_expiry_timestamp_seconds 1' \
  sh -c "curl -sf '$M/metrics' | grep -E '^onepages_tls_certificate_expiry_timestamp_seconds [0-9]{10}$'"
check "it is the text format 0.0.4 by default" "text/plain; version=0.0.4" \
  curl -sfi "$M/metrics"
if command -v promtool >/dev/null 2>&1; then
  check "promtool check metrics passes (no lint)" "promtool: clean" \
    sh -c "curl -sf '$M/metrics' | promtool check metrics && echo 'promtool: clean'"
  check "promtool check rules dist/prometheus-alerts.yml" "SUCCESS: 8 rules found" \
    promtool check rules dist/prometheus-alerts.yml
else
  fail=$((fail+1)); echo "FAIL promtool is not installed (apt-get install prometheus)"
fi
check "the 0.0.4 text parses (prometheus_client) with the counters typed" "counters typed" \
  sh -c "curl -sf '$M/metrics' | python3 -c 'import sys; from prometheus_client.parser import text_string_to_metric_families as p; f = list(p(sys.stdin.read())); n = sum(1 for x in f if x.type == \"counter\"); assert n >= 5, n; print(\"counters typed:\", n)'"
check "OpenMetrics when asked (what Prometheus asks), parsed strictly" "families:" \
  sh -c "curl -sf -H 'Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' '$M/metrics' | python3 -c 'import sys; from prometheus_client.openmetrics.parser import text_string_to_metric_families as p; f = list(p(sys.stdin.read())); assert any(x.name == \"onepages_operations\" for x in f); print(\"families:\", len(f))'"
check "GET /status is the snapshot" "\"naming_context\":\"$S\"" curl -sf "$M/status"
check "ldapsearch cn=Monitor as an administrator (counters with +)" "monitorOpCompleted: " \
  ldapsearch -x -H "$H" -D "$A" -w demo-admin-2026 -b "cn=Operations,cn=Monitor" -s one "(cn=Search)" +
check "cn=Monitor's database counts the people" "monitorCounter: " \
  ldapsearch -x -H "$H" -D "$A" -w demo-admin-2026 -b "cn=People,cn=Database 1,cn=Databases,cn=Monitor" -s base monitorCounter
check "cn=Monitor refuses a reader" "result: 50 Insufficient access" \
  ldapsearch -x -H "$H" -D "$R" -w demo-reader-2026 -b "cn=Monitor" "(objectClass=*)"
check "the root DSE names it" "monitorContext: cn=Monitor" \
  ldapsearch -x -H "$H" -b "" -s base monitorContext
check "onepages status over HTTP: one screen" "Failed binds" "$bin" status --server "$M"
check "it warns of the 2-day certificate and exits 1" "rc=1" \
  sh -c "'$bin' status --server '$M' | grep -q 'WARNING: the TLS certificate expires in' ; '$bin' status --server '$M' >/dev/null; echo rc=\$?"
check "it shows the last import and its outcome (the guard's refusal)" "STOPPED: " \
  sh -c "'$bin' status --server '$M' | grep '^Last import'"
check "onepages status from cn=Monitor shows the same entries as over HTTP" "same" \
  sh -c "a=\$('$bin' status --server '$M' | grep '^Entries'); b=\$('$bin' status --server '$H' --bind-dn '$A' --password-file '$data/admin.pw' | grep '^Entries'); [ -n \"\$a\" ] && [ \"\$a\" = \"\$b\" ] && echo same || echo \"\$a / \$b\""
check "onepages status refuses a reader's cn=Monitor (exit 2)" "rc=2" \
  sh -c "ONEPAGES_PASSWORD=demo-reader-2026 '$bin' status --server '$H' --bind-dn '$R' >/dev/null 2>&1; echo rc=\$?"
if command -v systemd-analyze >/dev/null 2>&1; then
  sed "s|/usr/local/bin/onepages|$(realpath "$bin")|" dist/onepages.service >"$data/onepages.service"
  check "systemd-analyze verify dist/onepages.service" "verified" \
    sh -c "systemd-analyze verify '$data/onepages.service' && echo verified"
fi
check "offline import refuses a served data directory" "in use by another process: onepages serve" \
  "$bin" import --data-dir "$data/dir" "$data/add.ldif"
lock_darcy

kill -TERM "$pid"
if wait "$pid"; then pass=$((pass+1)); echo "ok   SIGTERM shuts down cleanly"; else fail=$((fail+1)); echo "FAIL SIGTERM exit status"; cat "$log"; fi
trap 'rm -rf "$data"' EXIT
check "a lockout survives the restart: onepages unlock offline" "$D: unlocked" \
  "$bin" unlock --data-dir "$data/dir" darcy.oneil@oneid.on.ca
check "onepages check --values --duplicates finds nothing in the demo" "0 uid or mail values are held by more than one entry" \
  "$bin" check --data-dir "$data/dir" --values --duplicates
check "onepages check --repair-names has nothing to remove in the demo" "nothing to do" \
  "$bin" check --data-dir "$data/dir" --repair-names

# serve --demo makes its own throw-away CA and certificate and prints how to use them; a
# listener given in the configuration (here the LDAPS port) takes precedence.
dport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 6638)
ONEPAGES_LDAPS_LISTEN="127.0.0.1:$dport" ONEPAGES_CLEARTEXT_BINDS=never "$bin" serve --demo --data-dir "$data/demo2" --listen "127.0.0.1:$port" >"$data/demo2.log" 2>&1 &
dpid=$!
for _ in $(seq 1 300); do grep -q "LDAPTLS_CACERT=" "$data/demo2.log" && break; sleep 0.2; done
check "serve --demo prints an LDAPS line" "LDAPTLS_CACERT=$data/demo2/demo-tls/ca.pem ldapsearch -x -H ldaps://127.0.0.1:$dport" \
  cat "$data/demo2.log"
check "and it works" "mail: dewey.rahim@one-mail.on.ca" \
  env LDAPTLS_CACERT="$data/demo2/demo-tls/ca.pem" ldapsearch -x -LLL -H "ldaps://127.0.0.1:$dport" \
  -D "$R" -w demo-reader-2026 -b "$S" "(mail=dewey.rahim@one-mail.on.ca)" mail
check "with cleartext_binds = never, a password without TLS is refused" "Confidentiality required (13)" \
  ldapwhoami -x -H "ldap://127.0.0.1:$port" -D "$R" -w demo-reader-2026
check "and the message says what to do" "connect with ldaps://" \
  ldapwhoami -x -H "ldap://127.0.0.1:$port" -D "$R" -w demo-reader-2026
kill -TERM "$dpid"; wait "$dpid" || true

check "the data directory is the owner's only" "700" stat -c %a "$data/dir"
"$bin" export --data-dir "$data/dir" -o "$data/export.ldif" 2>/dev/null
check "an export is the owner's only" "600" stat -c %a "$data/export.ldif"

echo "interop: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
