#!/usr/bin/env python3
"""DNS probes for the benchmark (python3 stdlib only).

  probe.py wait --port P --name NAME --since T0 [--timeout 300]
      Query NAME A every 10 ms until the answer holds the redirect address;
      print the milliseconds from T0 (Unix time, e.g. `date +%s.%N` taken
      just before the resolver was started) to that answer.

  probe.py steady --port P --listed F --allowed F --new F [--rate 2000]
                  [--duration 10] [--max-duration 120] [--trigger-after 3]
                  --trigger-cmd CMD
      Send A queries at a fixed rate from one UDP socket (45 % listed names,
      45 % allowed names, 10 % names listed only in the new list version),
      recording every send and receive time. After --trigger-after seconds
      run CMD (the reload). Sends for --duration seconds, or longer until
      2 s after the new version is visible (at most --max-duration).
      Print key=value lines:
        visible_ms  trigger -> first answer redirecting a new-version name
        max_gap_ms  longest time without an answer (between consecutive
                    answers, or from the first send / to the last send)
        lost        queries not answered within --timeout (2 s)
        wrong       answers that are neither the expected redirect nor the
                    expected forward (SERVFAIL, old version after visible...)
        sent, answered

  probe.py latency --port P --file F [--rate 10000] [--duration 10]
      Fixed-rate sender for when dnsperf -v is not usable: prints p50_ms,
      p99_ms, sent, answered.
"""
import argparse
import random
import socket
import struct
import subprocess
import sys
import threading
import time

REDIRECT = bytes([192, 0, 2, 80])


def build_query(qid, name, qtype=1):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", qtype, 1)


def skip_name(msg, off):
    while True:
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += n + 1


def parse(msg):
    """Return (id, rcode, [A rdata bytes]) or None."""
    if len(msg) < 12:
        return None
    qid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
    off = 12
    try:
        for _ in range(qd):
            off = skip_name(msg, off) + 4
        addrs = []
        for _ in range(an):
            off = skip_name(msg, off)
            rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
            off += 10
            if rtype == 1 and rdlen == 4:
                addrs.append(bytes(msg[off:off + 4]))
            off += rdlen
    except (IndexError, struct.error):
        return None
    return qid, flags & 0xF, addrs


def cmd_wait(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.01)
    qid = 0
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        qid = (qid + 1) & 0xFFFF
        t_send = time.time()
        try:
            s.sendto(build_query(qid, a.name), ("127.0.0.1", a.port))
        except OSError:
            pass
        end = t_send + 0.01
        while True:
            left = end - time.time()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                data = s.recv(4096)
            except (socket.timeout, ConnectionRefusedError, OSError):
                # ECONNREFUSED while nothing listens yet: wait out the period
                time.sleep(max(0.0, end - time.time()))
                break
            r = parse(data)
            if r and r[2] and REDIRECT in r[2]:
                t = time.time()
                print("%.1f" % ((t - a.since) * 1000))
                return 0
    print("timeout", file=sys.stderr)
    return 1


def cmd_steady(a):
    rd = lambda f: [l.strip() for l in open(f) if l.strip()]
    listed, allowed, new = rd(a.listed), rd(a.allowed), rd(a.new)
    rng = random.Random(7)
    # runs --duration seconds, longer if the new version is not visible yet:
    # until 2 s after it is, at most --max-duration seconds
    total = int(a.rate * max(a.duration, a.max_duration))
    kinds = []
    names = []
    for _ in range(total):
        x = rng.random()
        if x < 0.10:
            kinds.append(2); names.append(rng.choice(new))
        elif x < 0.55:
            kinds.append(0); names.append(rng.choice(listed))
        else:
            kinds.append(1); names.append(rng.choice(allowed))
    pkts = [build_query(i & 0xFFFF, n) for i, n in enumerate(names)]
    send_t = [0.0] * total
    recv_t = [None] * total
    verdict = [None] * total    # 'r' redirect, 'f' forwarded answer, 'e' other
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.connect(("127.0.0.1", a.port))
    sent = [0]
    stop = [False]

    def receiver():
        s.settimeout(0.2)
        while not stop[0]:
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                continue
            t = time.time()
            r = parse(data)
            if not r:
                continue
            qid, rcode, addrs = r
            # the latest query sent with this id (ids wrap every 65536)
            n = sent[0]
            i = (n - 1) - ((n - 1 - qid) & 0xFFFF)
            if i < 0 or recv_t[i] is not None:
                continue
            recv_t[i] = t
            if rcode == 0 and REDIRECT in addrs:
                verdict[i] = "r"
                if kinds[i] == 2 and trig[0] is not None and seen[0] is None:
                    seen[0] = t
            elif rcode == 0 and addrs:
                verdict[i] = "f"
            else:
                verdict[i] = "e"

    trig = [None]
    seen = [None]

    def trigger():
        time.sleep(a.trigger_after)
        trig[0] = time.time()
        rc = subprocess.run(a.trigger_cmd, shell=True).returncode
        if rc != 0:
            print("trigger command failed: %d" % rc, file=sys.stderr)

    th = threading.Thread(target=receiver, daemon=True)
    th.start()
    tt = threading.Thread(target=trigger, daemon=True)
    tt.start()
    start = time.time()
    i = 0
    while i < total:
        now = time.time()
        el = now - start
        if el >= a.duration and seen[0] is not None and now >= seen[0] + 2.0:
            break
        due = min(total, int(el * a.rate) + 1)
        while i < due:
            send_t[i] = time.time()
            sent[0] = i + 1
            try:
                s.send(pkts[i])
            except OSError:
                pass
            i += 1
        time.sleep(0.0005)
    time.sleep(a.timeout + 0.2)
    stop[0] = True
    th.join()
    tt.join()
    total = i
    t0 = trig[0]
    lost = 0
    wrong = 0
    wrong_kinds = {}
    answers = []
    visible = None
    for j in range(total):
        rt = recv_t[j]
        if rt is None or rt - send_t[j] > a.timeout:
            lost += 1
            continue
        answers.append(rt)
        v, k = verdict[j], kinds[j]
        if k == 2 and v == "r" and t0 is not None and rt >= t0:
            if visible is None or rt < visible:
                visible = rt
        if (k == 0 and v != "r") or (k == 1 and v != "f") or (k == 2 and v == "e"):
            wrong += 1
            key = ("listed", "allowed", "new")[k] + "_" + {"r": "redirect", "f": "forwarded", "e": "error"}[v]
            wrong_kinds[key] = wrong_kinds.get(key, 0) + 1
    answers.sort()
    # the timeline runs from the first send to the last send: silence at the
    # start or at the end (a resolver that stopped answering) counts as a gap
    edges = [send_t[0]] + answers + [send_t[total - 1]]
    edges = [x for x in edges if send_t[0] <= x <= send_t[total - 1]] or [0.0]
    edges.sort()
    gap = max((b - a_ for a_, b in zip(edges, edges[1:])), default=0.0)
    # new-version names answered with the old version after it was visible
    stale = sum(1 for j in range(total) if kinds[j] == 2 and visible is not None
                and verdict[j] == "f" and send_t[j] > visible)
    print("duration_s=%.1f" % (send_t[total - 1] - start))
    print("sent=%d" % total)
    print("answered=%d" % len(answers))
    print("lost=%d" % lost)
    print("wrong=%d" % wrong)
    print("wrong_by_kind=%s" % (",".join("%s:%d" % kv for kv in sorted(wrong_kinds.items())) or "none"))
    print("stale_after_visible=%d" % stale)
    print("max_gap_ms=%.1f" % (gap * 1000))
    print("visible_ms=%s" % ("%.1f" % ((visible - t0) * 1000) if visible and t0 else "NA"))
    return 0


def cmd_latency(a):
    qs = [l.split()[0] for l in open(a.file) if l.strip()]
    total = int(a.rate * a.duration)
    send_t = [0.0] * total
    lat = [None] * total
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.connect(("127.0.0.1", a.port))
    sent = [0]
    stop = [False]

    def receiver():
        s.settimeout(0.2)
        while not stop[0]:
            try:
                data = s.recv(4096)
            except OSError:
                continue
            t = time.time()
            qid = struct.unpack(">H", data[:2])[0]
            n = sent[0]
            i = (n - 1) - ((n - 1 - qid) & 0xFFFF)
            if i >= 0 and lat[i] is None:
                lat[i] = t - send_t[i]

    th = threading.Thread(target=receiver, daemon=True)
    th.start()
    start = time.time()
    i = 0
    while i < total:
        due = min(total, int((time.time() - start) * a.rate) + 1)
        while i < due:
            send_t[i] = time.time()
            sent[0] = i + 1
            s.send(build_query(i & 0xFFFF, qs[i % len(qs)]))
            i += 1
        time.sleep(0.0002)
    time.sleep(2.2)
    stop[0] = True
    th.join()
    got = sorted(x for x in lat if x is not None)
    pct = lambda p: got[min(len(got) - 1, int(p * len(got)))] * 1000 if got else float("nan")
    print("sent=%d\nanswered=%d\np50_ms=%.3f\np99_ms=%.3f" % (total, len(got), pct(0.50), pct(0.99)))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--port", type=int, required=True)
    w.add_argument("--name", required=True)
    w.add_argument("--since", type=float, required=True)
    w.add_argument("--timeout", type=float, default=300)
    st = sub.add_parser("steady")
    st.add_argument("--port", type=int, required=True)
    st.add_argument("--listed", required=True)
    st.add_argument("--allowed", required=True)
    st.add_argument("--new", required=True)
    st.add_argument("--rate", type=float, default=2000)
    st.add_argument("--duration", type=float, default=10)
    st.add_argument("--max-duration", type=float, default=120)
    st.add_argument("--trigger-after", type=float, default=3)
    st.add_argument("--trigger-cmd", required=True)
    st.add_argument("--timeout", type=float, default=2.0)
    la = sub.add_parser("latency")
    la.add_argument("--port", type=int, required=True)
    la.add_argument("--file", required=True)
    la.add_argument("--rate", type=float, default=10000)
    la.add_argument("--duration", type=float, default=10)
    a = ap.parse_args()
    return {"wait": cmd_wait, "steady": cmd_steady, "latency": cmd_latency}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
