#!/usr/bin/env python3
"""Another user's type-ahead while one reader attacks (issue 14): the attacks of the issue
re-run against a live server, each bounded in requests and time.

    benches/isolation.py HOST:PORT [VICTIM_SEARCHES]

against a server holding a generated directory with the demo accounts
(`onepages generate --demo --entries 100000`), default settings. The victim is a reader
that types "dewey" ((cn=dewey*) asking for cn and mail with a size limit of 50, as
type-ahead clients cap their look-ups), one search at a time on its own connection; its latency is measured unloaded, then while each attack runs:

  A. rounds of four connections that pipeline 200 whole-directory searches each and never
     read (the server ends them);
  B. one connection pipelining batches of 8 searches of 1,000 approximate (~=) branches;
  C. 2,000 idle connections from one address (the excess is refused at the per-address cap).

The victim connects from 127.0.0.2 (another client machine), the attacks from 127.0.0.1.

Prints, per phase, the victim's median and p99 in milliseconds and what the attack got.
Traffic stays on the given (loopback) address.
"""
import socket
import statistics
import sys
import threading
import time


def ber_len(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag, body):
    return bytes([tag]) + ber_len(len(body)) + body


def int_tlv(n):
    return tlv(0x02, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big"))


def bind_pdu(msgid, name, password):
    req = int_tlv(3) + tlv(0x04, name.encode()) + tlv(0x80, password.encode())
    return tlv(0x30, int_tlv(msgid) + tlv(0x60, req))


def search_pdu(msgid, base, filt, attrs=(b"cn",), size_limit=0):
    body = (tlv(0x04, base.encode()) + tlv(0x0a, b"\x02") + tlv(0x0a, b"\x00")
            + int_tlv(size_limit) + int_tlv(0) + tlv(0x01, b"\x00") + filt
            + tlv(0x30, b"".join(tlv(0x04, a) for a in attrs)))
    return tlv(0x30, int_tlv(msgid) + tlv(0x63, body))


def substring_initial(attr, value):
    return tlv(0xa4, tlv(0x04, attr) + tlv(0x30, tlv(0x80, value)))


def present(attr):
    return tlv(0x87, attr)


def approx(attr, value):
    return tlv(0xa8, tlv(0x04, attr) + tlv(0x04, value))


READER = ("cn=demo-reader,ou=services,dc=one-mail,dc=on,dc=ca", "demo-reader-2026")
SUFFIX = "dc=one-mail,dc=on,dc=ca"


def read_dones(s, msgids):
    """Reads PDUs until the SearchResultDone (0x65) of every message ID in msgids has come
    (pipelined answers may come in any order); returns {msgid: result code}."""
    want, codes, buf = set(msgids), {}, b""
    while want:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 2:
            n = buf[1]
            head = 2 + (n & 0x7f if n & 0x80 else 0)
            if len(buf) < head:
                break
            size = head + (int.from_bytes(buf[2:head], "big") if n & 0x80 else n)
            if len(buf) < size:
                break
            pdu, buf = buf[:size], buf[size:]
            id_len = pdu[head + 1]
            got = int.from_bytes(pdu[head + 2:head + 2 + id_len], "big")
            tag = pdu[head + 2 + id_len]
            if tag == 0x65 and got in want:
                j = pdu.find(b"\x0a\x01", head + 2 + id_len)
                codes[got] = pdu[j + 2]
                want.discard(got)
    return codes


def read_until_done(s, msgid):
    return read_dones(s, [msgid]).get(msgid)


def connect(addr, rcvbuf=None, source=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source:
        s.bind((source, 0))
    s.settimeout(60)
    s.connect(addr)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


# The victim is another client machine: 127.0.0.2 is loopback too, but not the attacker's
# address, so the per-address connection cap applies to the attacker alone.
VICTIM_SOURCE = "127.0.0.2"
VICTIM_SIZE_LIMIT = 50


def victim(addr, searches, out):
    s = connect(addr, source=VICTIM_SOURCE)
    s.sendall(bind_pdu(1, *READER))
    s.recv(4096)
    times = []
    for i in range(searches):
        mid = 2 + (i % 100)
        t = time.perf_counter()
        # Type-ahead asks for a screenful: Outlook and Thunderbird cap their look-ups.
        s.sendall(search_pdu(mid, SUFFIX, substring_initial(b"cn", b"dewey"),
                             (b"cn", b"mail"), size_limit=VICTIM_SIZE_LIMIT))
        code = read_until_done(s, mid)
        times.append((time.perf_counter() - t) * 1000.0)
        if code not in (0, 4):  # success, or sizeLimitExceeded at the client's own cap
            out["errors"] = out.get("errors", 0) + 1
    s.close()
    out["times"] = times


def measure(addr, searches, label, attack=None):
    out = {}
    state = {}
    stop = threading.Event()
    t = None
    if attack:
        t = threading.Thread(target=attack, args=(addr, state, stop))
        t.start()
        time.sleep(1.0)  # let the attack take hold
    victim(addr, searches, out)
    stop.set()
    if t:
        t.join(timeout=120)
    times = sorted(out["times"])
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"{label:<46} victim median {statistics.median(times):6.2f} ms  p99 {p99:7.2f} ms"
          f"  errors {out.get('errors', 0)}", flush=True)
    if state.get("note"):
        print(f"{'':<46} attack: {state['note']}", flush=True)
    return statistics.median(times)


def drain_until_closed(s, limit):
    """Reads until the server closes the connection; True if it did within limit seconds."""
    s.settimeout(limit)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except (socket.timeout, OSError):
        return False
    finally:
        s.close()


def attack_never_read(addr, state, stop):
    """Rounds of four connections that pipeline 200 whole-directory searches and stop
    reading, until the victim is done; counts how many the server ended by itself."""
    rounds = opened = closed = 0
    while not stop.is_set():
        conns = []
        for _ in range(4):
            s = connect(addr, rcvbuf=4096)
            s.sendall(bind_pdu(1, *READER) + b"".join(
                search_pdu(2 + i, SUFFIX, present(b"objectClass"), (b"*",))
                for i in range(200)))
            conns.append(s)
        opened += len(conns)
        # Not reading: wait for the server to give up on these readers.
        stop.wait(5)
        closed += sum(drain_until_closed(s, 30) for s in conns)
        rounds += 1
    state["note"] = (f"{rounds} rounds, {opened} connections; "
                     f"{closed} closed by the server")


def attack_approx(addr, state, stop):
    """Batches of 8 pipelined searches of 1,000 ~= branches each, read, until the victim
    is done."""
    s = connect(addr)
    s.sendall(bind_pdu(1, *READER))
    s.recv(4096)
    branches = b"".join(approx(b"cn", f"name{i}".encode()) for i in range(1000))
    filt = tlv(0xa1, branches)
    codes, batches, mid = {}, 0, 2
    started = time.perf_counter()
    while not stop.is_set():
        ids = list(range(mid, mid + 8))
        mid += 8
        s.sendall(b"".join(search_pdu(i, SUFFIX, filt) for i in ids))
        for c in read_dones(s, ids).values():
            codes[c] = codes.get(c, 0) + 1
        batches += 1
    took = time.perf_counter() - started
    s.close()
    state["note"] = (f"{batches * 8} searches in {took:.1f} s, result codes "
                     + ", ".join(f"{c}: {n}" for c, n in sorted(codes.items(), key=str)))


def attack_idle(addr, state, stop):
    """2,000 connections from one address that send nothing."""
    conns, failed = [], 0
    for _ in range(2000):
        try:
            conns.append(connect(addr))
        except OSError:
            failed += 1
    time.sleep(0.5)
    refused = 0
    for s in conns:
        s.settimeout(0.01)
        try:
            if s.recv(4096):
                refused += 1  # the busy Notice of Disconnection
        except (socket.timeout, OSError):
            pass
    state["note"] = (f"2,000 sockets: {len(conns) - refused} held open, {refused} got the "
                     f"busy notice, {failed} failed to connect")
    stop.wait(120)
    for s in conns:
        s.close()


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    addr = (host, int(port))
    searches = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    base = measure(addr, searches, "unloaded")
    for label, attack in (("A. 4 x 200 pipelined searches, never read", attack_never_read),
                          ("B. 8 pipelined filters of 1,000 ~= branches", attack_approx),
                          ("C. 2,000 idle connections from one address", attack_idle)):
        m = measure(addr, searches, label, attack)
        print(f"{'':<46} median / unloaded = {m / base:.2f}", flush=True)
    measure(addr, searches, "unloaded again (the noise of the machine)")


if __name__ == "__main__":
    main()
