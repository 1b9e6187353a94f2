#!/usr/bin/env python3
"""How long a failed bind takes, by kind of failure: a bind oracle tells which usernames
exist when these differ. Sends raw LDAP simple binds over one loopback connection each try,
alternating the kinds, and prints the median and p90 per kind in milliseconds.

    benches/bind-timing.py HOST:PORT [TRIES]      # against a server with the demo directory

Kinds: an unknown ONE ID, an existing {SSHA} user with a wrong password, an existing
{ARGON2} user with a wrong password, an existing {CRYPT} user with a wrong password, and a
successful {SSHA} bind for reference. Traffic stays on the given (loopback) address.
"""
import socket
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


KINDS = [
    ("unknown user", "nobody.at.all@oneid.on.ca", "wrong-password"),
    ("{SSHA} user, wrong password", "dewey.rahim@oneid.on.ca", "wrong-password"),
    ("{ARGON2} user, wrong password", "darcy.oneil@oneid.on.ca", "wrong-password"),
    ("{CRYPT} user, wrong password", "helene.cote-tremblay@oneid.on.ca", "wrong-password"),
    ("{SSHA} user, right password", "dewey.rahim@oneid.on.ca", "dewey-demo-2026"),
]


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    tries = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    addr = (host, int(port))
    times = {k[0]: [] for k in KINDS}
    codes = {k[0]: set() for k in KINDS}
    for _ in range(tries):
        for label, name, password in KINDS:
            ms, code = one_bind(addr, name, password)
            times[label].append(ms)
            codes[label].add(code)
    print(f"| failed bind ({tries} tries each) | result | median ms | p90 ms |")
    print("| --- | --- | --- | --- |")
    for label, _, _ in KINDS:
        t = sorted(times[label])
        p90 = t[int(len(t) * 0.9) - 1]
        print(f"| {label} | {sorted(codes[label])} | {statistics.median(t):.2f} | {p90:.2f} |")


if __name__ == "__main__":
    main()
