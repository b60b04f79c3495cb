#!/usr/bin/env python3
"""A tiny authoritative DNS server for the end-to-end test (stdlib only).

Answers A queries for the names given as NAME=ADDRESS arguments (and names
below them), NODATA for their other types, NXDOMAIN for any other name; the
negative answers carry a SOA (RFC 2308). A query with an OPT record (EDNS)
gets an OPT back (UDP size 1232, no options); anything else in the
additional section is ignored. UDP only, which is all Rempart needs from it
here (the answers are far below 512 bytes).

usage: upstream.py LISTEN_IP PORT NAME=ADDRESS...
"""

import socket
import struct
import sys

TYPE_A, TYPE_SOA, TYPE_OPT = 1, 6, 41


def read_name(packet, i):
    """(lowercase labels, offset after the name); no compression expected."""
    labels = []
    while True:
        n = packet[i]
        i += 1
        if n == 0:
            return labels, i
        if n & 0xC0:
            raise ValueError("compressed name in a query")
        labels.append(packet[i:i + n].decode("ascii").lower())
        i += n


def has_opt(packet, i, arcount):
    """Whether the additional section (starting at i) holds an OPT record."""
    for _ in range(arcount):
        _, i = read_name(packet, i)
        rtype, _, _, rdlen = struct.unpack("!HHIH", packet[i:i + 10])
        i += 10 + rdlen
        if rtype == TYPE_OPT:
            return True
    return False


def encode_name(labels):
    return b"".join(bytes([len(l)]) + l.encode("ascii") for l in labels) + b"\0"


def answer(packet, zone):
    qid, flags, qdcount, ancount, nscount, arcount = struct.unpack("!HHHHHH", packet[:12])
    if flags & 0x8000 or qdcount != 1 or ancount or nscount:
        raise ValueError("not a plain query")
    labels, i = read_name(packet, 12)
    qtype, _ = struct.unpack("!HH", packet[i:i + 4])
    end = i + 4
    edns = has_opt(packet, end, arcount)

    name = ".".join(labels)
    owner, address = None, None
    for zname, addr in zone.items():
        if name == zname or name.endswith("." + zname):
            owner, address = zname, addr
            break

    answers, authority = [], []
    rcode = 0 if address else 3
    if address and qtype == TYPE_A:
        # Name pointer to the question (offset 12), A, IN, TTL 300.
        answers.append(struct.pack("!HHHIH", 0xC00C, TYPE_A, 1, 300, 4) + socket.inet_aton(address))
    else:
        zone_labels = owner.split(".") if owner else labels[-1:]
        rdata = (encode_name(["ns"] + zone_labels) + encode_name(["hostmaster"] + zone_labels)
                 + struct.pack("!IIIII", 1, 3600, 600, 86400, 60))
        authority.append(encode_name(zone_labels) + struct.pack("!HHIH", TYPE_SOA, 1, 60, len(rdata)) + rdata)
    additional = []
    if edns:
        # Root owner, OPT, UDP payload 1232, extended rcode/version/flags 0.
        additional.append(b"\0" + struct.pack("!HHIH", TYPE_OPT, 1232, 0, 0))

    rd = flags & 0x0100
    header = struct.pack("!HHHHHH", qid, 0x8400 | rd | rcode, 1,
                         len(answers), len(authority), len(additional))
    return header + packet[12:end] + b"".join(answers + authority + additional)


def main():
    listen, port = sys.argv[1], int(sys.argv[2])
    zone = dict(arg.lower().split("=", 1) for arg in sys.argv[3:])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((listen, port))
    print(f"upstream.py: serving {zone} on {listen}:{port}", flush=True)
    while True:
        packet, peer = sock.recvfrom(4096)
        try:
            sock.sendto(answer(packet, zone), peer)
        except (ValueError, IndexError, UnicodeDecodeError, struct.error) as err:
            print(f"upstream.py: dropped a query from {peer}: {err}", flush=True)


if __name__ == "__main__":
    main()
