#!/usr/bin/env bash
# The misleading-data attacks of issue 14, re-run with OpenLDAP's clients against a live
# server holding the demo directory (`onepages serve --demo`), as its demo administrator:
#
#   benches/attacks.sh ldap://127.0.0.1:3389
#
# Prints each attack and the server's answer. Writes only entries it names itself
# (uid=attack-*), which every refused attack leaves absent.
set -u
H=${1:-ldap://127.0.0.1:3389}
S=dc=one-mail,dc=on,dc=ca
A="cn=demo-admin,ou=services,$S"
AP=demo-admin-2026
P="uid=dewey.rahim@oneid.on.ca,ou=people,$S"

try() { # label, LDIF on stdin
  local label=$1 out
  out=$(ldapmodify -x -H "$H" -D "$A" -w "$AP" 2>&1)
  printf '%-58s %s\n' "$label" "$(echo "$out" | grep -E 'ldap_|additional info|modifying|adding' | tr '\n' ' ' | cut -c1-200)"
}

person() { # rdn uid, extra LDIF lines
  printf 'dn: uid=%s,ou=people,%s\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: onePagesPerson\ncn: Attack\nsn: Attack\n%s\n' "$1" "$S" "$2"
}

try "duplicate ONE ID (second entry, under ou=contacts)" <<EOF
dn: uid=dewey.rahim@oneid.on.ca,ou=contacts,$S
changetype: add
objectClass: inetOrgPerson
cn: Dewey Twin
sn: Twin
EOF
try "duplicate mail address" <<<"$(person attack-1@oneid.on.ca 'mail: dewey.rahim@one-mail.on.ca')"
for status in "disabled " inactive suspended; do
  try "onePagesStatus: '$status'" <<EOF
dn: $P
changetype: modify
replace: onePagesStatus
onePagesStatus: $status
EOF
done
try "mail: amir.haddad@@one-mail" <<<"$(person attack-2@oneid.on.ca 'mail: amir.haddad@@one-mail')"
for name in "NUL:QWFtaXIASGFkZGFk" "ESC:QW1pchtbMm1IYWRkYWQ=" "CR/LF:QW1pcg0KSGFkZGFk" "U+202E:QW1pcuKArkhhZGRhZA=="; do
  try "cn with ${name%%:*}" <<EOF
dn: uid=attack-3@oneid.on.ca,ou=people,$S
changetype: add
objectClass: inetOrgPerson
cn:: ${name#*:}
sn: Attack
EOF
done
try "telephoneNumber: not a phone" <<<"$(person attack-4@oneid.on.ca 'telephoneNumber: not a phone')"
try "two structural classes (inetOrgPerson + organizationalUnit)" <<<"$(person attack-5@oneid.on.ca 'objectClass: organizationalUnit
ou: x')"
printf '%-58s %s\n' "onepages domains add gmail.com" \
  "$(target/release/onepages domains add gmail.com --server "$H" --bind-dn "$A" --password "$AP" 2>&1 | tr '\n' ' ' | cut -c1-200)"
printf '%-58s %s\n' "left behind (uid=attack-*)" \
  "$(ldapsearch -x -LLL -H "$H" -D "$A" -w "$AP" -b "$S" '(uid=attack-*)' dn | grep -c '^dn:') entries"
