#!/usr/bin/env python3
"""A burst of concurrent failed binds, and what it costs the server: its peak memory while
the burst runs and another user's search latency meanwhile.

    benches/bind-burst.py HOST:PORT SERVER_PID [BINDS] [KIND]

KIND is `unknown` (a ONE ID that does not exist, the default) or `argon2` (an existing
{ARGON2} demo user with a wrong password: every bind needs a slow check). All BINDS
connections are opened first, then every bind is sent at once. Meanwhile a demo reader
searches `(cn=dewey*)` in a loop on its own connection. Start the server with
`address_failures = 0`, `lockout_failures = 0` and `max_connections_per_ip = 4000` (the brakes would otherwise answer most of
the burst without a look-up, which is what they are for, but not what is measured here).
Prints the burst's wall time, the server's RSS before and its peak during the burst, and the
reader's search latencies. Traffic stays on the given (loopback) address.
"""
import asyncio
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


def search_pdu(msgid, base, value):
    # (cn=VALUE*) asking for cn
    sub = tlv(0x04, b"cn") + tlv(0x30, tlv(0x80, value.encode()))
    req = (tlv(0x04, base.encode()) + bytes([0x0a, 1, 2, 0x0a, 1, 0]) + tlv(0x02, b"\x00")
           + tlv(0x02, b"\x00") + bytes([0x01, 1, 0]) + tlv(0xa4, sub)
           + tlv(0x30, tlv(0x04, b"cn")))
    return tlv(0x30, tlv(0x02, bytes([msgid])) + tlv(0x63, req))


async def read_pdu(reader):
    head = await reader.readexactly(2)
    n = head[1]
    if n & 0x80:
        n = int.from_bytes(await reader.readexactly(n & 0x7F), "big")
    return head + await reader.readexactly(n)


def op_tag(pdu):
    """The operation tag of an LDAPMessage (after its length and message ID)."""
    i = 2 + (pdu[1] & 0x7F if pdu[1] & 0x80 else 0)
    id_len = pdu[i + 1]
    return pdu[i + 2 + id_len]


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


async def one_bind(addr, name, password, go):
    reader, writer = await asyncio.open_connection(*addr)
    await go.wait()
    writer.write(bind_pdu(1, name, password))
    await writer.drain()
    pdu = await read_pdu(reader)
    writer.close()
    i = pdu.find(b"\x0a\x01")
    return pdu[i + 2] if i >= 0 else None


async def searcher(addr, stop, latencies):
    reader, writer = await asyncio.open_connection(*addr)
    writer.write(bind_pdu(1, "cn=demo-reader,ou=services,dc=one-mail,dc=on,dc=ca",
                          "demo-reader-2026"))
    await read_pdu(reader)
    msgid = 2
    while not stop.is_set():
        started = time.perf_counter()
        writer.write(search_pdu(msgid, "ou=people,dc=one-mail,dc=on,dc=ca", "dewey"))
        while True:
            pdu = await read_pdu(reader)
            if op_tag(pdu) == 0x65:  # SearchResultDone
                break
        latencies.append((time.perf_counter() - started) * 1000.0)
        msgid = msgid % 120 + 2
        await asyncio.sleep(0.02)
    writer.close()


async def sampler(pid, stop, peak):
    while not stop.is_set():
        peak[0] = max(peak[0], status_kib(pid, "VmRSS"))
        await asyncio.sleep(0.01)


async def main():
    host, port = sys.argv[1].rsplit(":", 1)
    pid = int(sys.argv[2])
    binds = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    kind = sys.argv[4] if len(sys.argv) > 4 else "unknown"
    addr = (host, int(port))
    name, password = {
        "unknown": ("nobody.at.all@oneid.on.ca", "wrong-password"),
        "argon2": ("darcy.oneil@oneid.on.ca", "wrong-password"),
    }[kind]
    before = status_kib(pid, "VmRSS")
    go, stop = asyncio.Event(), asyncio.Event()
    latencies, peak = [], [before]
    tasks = [asyncio.create_task(one_bind(addr, name, password, go)) for _ in range(binds)]
    await asyncio.sleep(0.5)  # let every connection open
    idle = []
    idle_stop = asyncio.Event()
    idle_task = asyncio.create_task(searcher(addr, idle_stop, idle))
    await asyncio.sleep(1.0)
    idle_stop.set()
    await idle_task
    side = asyncio.create_task(searcher(addr, stop, latencies))
    watch = asyncio.create_task(sampler(pid, stop, peak))
    await asyncio.sleep(0.1)  # the reader is bound and searching
    started = time.perf_counter()
    go.set()
    codes = await asyncio.gather(*tasks, return_exceptions=True)
    wall = time.perf_counter() - started
    await asyncio.sleep(0.1)
    stop.set()
    await side
    await watch
    ok = sum(1 for c in codes if c == 49)
    print(f"burst: {binds} concurrent {kind} binds, {ok} answered 49, in {wall:.2f} s")
    print(f"server RSS before {before / 1024:.1f} MiB, peak during the burst "
          f"{peak[0] / 1024:.1f} MiB (+{(peak[0] - before) / 1024:.1f} MiB)")
    for label, ls in (("idle", idle), ("during the burst", latencies)):
        if ls:
            ls = sorted(ls)
            print(f"reader (cn=dewey*) {label}: {len(ls)} searches, median "
                  f"{statistics.median(ls):.2f} ms, max {ls[-1]:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
