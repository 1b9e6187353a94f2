#!/usr/bin/env python3
"""How long a failed bind takes, by kind of failure: a bind oracle tells which usernames
exist when these differ. Sends raw LDAP simple binds over one loopback connection each try,
alternating the kinds, and prints the median and p90 per kind in milliseconds.

    benches/bind-timing.py HOST:PORT [TRIES] [LOCK_AFTER]

against a server with the demo directory, started with `lockout_failures = LOCK_AFTER`
(default 250: more than TRIES, so that the wrong-password kinds never lock) and
`address_failures = 0`. The script first disables one demo account and locks another (with
ldapmodify as the demo admin, then LOCK_AFTER wrong passwords).

Kinds: an unknown ONE ID; existing {SSHA}, {ARGON2} and {CRYPT} users with a wrong password;
a disabled account with its right password; a locked account with its right password; and a
successful {SSHA} bind for reference. Traffic stays on the given (loopback) address.
"""
import concurrent.futures
import socket
import subprocess
import statistics
import sys
import time


def ber_len(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag, body):
    return bytes([tag]) + ber_len(len(body)) + body


def bind_pdu(msgid, name, password):
    req = tlv(0x02, bytes([3])) + tlv(0x04, name.encode()) + tlv(0x80, password.encode())
    return tlv(0x30, tlv(0x02, bytes([msgid])) + tlv(0x60, req))


def result_code(pdu):
    i = pdu.find(b"\x0a\x01")
    return pdu[i + 2] if i >= 0 else None


def one_bind(addr, name, password):
    with socket.create_connection(addr, timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        s.sendall(bind_pdu(1, name, password))
        data = s.recv(4096)
        elapsed = time.perf_counter() - started
    return elapsed * 1000.0, result_code(data)


ADMIN = ("cn=demo-admin,ou=services,dc=one-mail,dc=on,dc=ca", "demo-admin-2026")
PEOPLE = "ou=people,dc=one-mail,dc=on,dc=ca"
DISABLED = ("david.okafor@oneid.on.ca", "david-bench-2026")
LOCKED = ("zoe.paquette@oneid.on.ca", "zoe-bench-2026")


def setup(host, port, lock_after):
    """Disables DISABLED and locks LOCKED (both get a known argon2id password first)."""
    ldif = ""
    for (name, password), extra in ((DISABLED, "onePagesStatus: disabled\n"), (LOCKED, "")):
        ldif += f"dn: uid={name},{PEOPLE}\nchangetype: modify\nreplace: userPassword\n"
        ldif += f"userPassword: {password}\n"
        ldif += "-\nreplace: onePagesStatus\n" + extra if extra else ""
        ldif += "\n"
    subprocess.run(
        ["ldapmodify", "-x", "-H", f"ldap://{host}:{port}", "-D", ADMIN[0], "-w", ADMIN[1]],
        input=ldif.encode(), check=True, stdout=subprocess.DEVNULL)
    addr = (host, int(port))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: one_bind(addr, LOCKED[0], f"guess-{i}")[1],
                              range(lock_after)))
    ms, code = one_bind(addr, LOCKED[0], LOCKED[1])
    if code != 49:
        sys.exit(f"{LOCKED[0]} did not lock after {lock_after} failures (codes {set(codes)})")


KINDS = [
    ("unknown user", "nobody.at.all@oneid.on.ca", "wrong-password"),
    ("{SSHA} user, wrong password", "dewey.rahim@oneid.on.ca", "wrong-password"),
    ("{ARGON2} user, wrong password", "darcy.oneil@oneid.on.ca", "wrong-password"),
    ("{CRYPT} user, wrong password", "helene.cote-tremblay@oneid.on.ca", "wrong-password"),
    ("disabled account, right password", DISABLED[0], DISABLED[1]),
    ("locked account, right password", LOCKED[0], LOCKED[1]),
    ("{SSHA} user, right password", "dewey.rahim@oneid.on.ca", "dewey-demo-2026"),
]


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    tries = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    lock_after = int(sys.argv[3]) if len(sys.argv) > 3 else 250
    if tries >= lock_after:
        sys.exit("TRIES must be below LOCK_AFTER, or the wrong-password kinds lock too")
    setup(host, port, lock_after)
    addr = (host, int(port))
    times = {k[0]: [] for k in KINDS}
    codes = {k[0]: set() for k in KINDS}
    for _ in range(tries):
        for label, name, password in KINDS:
            ms, code = one_bind(addr, name, password)
            times[label].append(ms)
            codes[label].add(code)
    failed = [statistics.median(times[k[0]]) for k in KINDS if k[2] != "dewey-demo-2026"]
    spread = (max(failed) - min(failed)) / min(failed) * 100.0
    print(f"| bind ({tries} tries each) | result | median ms | p90 ms |")
    print("| --- | --- | --- | --- |")
    for label, _, _ in KINDS:
        t = sorted(times[label])
        p90 = t[int(len(t) * 0.9) - 1]
        print(f"| {label} | {sorted(codes[label])} | {statistics.median(t):.2f} | {p90:.2f} |")
    print(f"\nfailed kinds: medians within {spread:.1f}% of each other")


if __name__ == "__main__":
    main()
