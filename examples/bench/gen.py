#!/usr/bin/env python3
"""Generate the benchmark data set (python3 stdlib only, deterministic).

    gen.py --n N --dir DIR [--seed S] [--allowed 100000] [--miss 1000000]

Writes into DIR:
  list-v1.txt, list-v2.txt     Rempart list format v1 (v2: serial+1, some
                               names removed, the reload names added)
  rpz-v1.zone, rpz-v2.zone     the same lists as an RPZ zone for Unbound
                               (name A 192.0.2.80 and *.name A 192.0.2.80)
  dnsdist-v1.names             the names of list-v1, one a line, read by
                               dnsdist's Lua config into a SuffixMatchNode
  allowed.zone                 zone allowed.test for NSD: aI.allowed.test A
                               198.51.100.x, and rI.allowed.test (reload names)
  miss.zone                    zone miss.test for NSD: *.miss.test A
                               203.0.113.77 (answers any name below it)
  q_listed.txt                 dnsperf: listed names and random subnames (A)
  q_allowed.txt                dnsperf: every allowed name once, shuffled (A)
  q_mixed.txt                  dnsperf: half listed, half allowed (A)
  extra-K.txt                  K = 1..--extra-lists: small lists (--extra-n
                               names each) for the several-lists row
  q_extra.txt                  dnsperf: names of the extra lists (A)
  q_miss.txt                   dnsperf: --miss distinct names below miss.test
                               (A), so that no query can be a cache hit
  probe_listed.txt, probe_allowed.txt, probe_new.txt
                               names for probe.py (listed in v1 and v2,
                               allowed, listed in v2 only)
  first_listed.txt             one listed name (startup probe)

Names, the order of entries and the queries depend only on N and the seed;
the issued/expires times depend on the clock (issued = now - 1 h, expires =
now + 30 days) since Rempart refuses an expired list.
"""
import argparse
import datetime as dt
import os
import random

TLDS = ["fr", "fr", "fr", "com", "com", "net", "org", "info", "eu"]
SYLL = ["ba", "ko", "ri", "tu", "ne", "mo", "la", "pi", "zu", "ge", "do",
        "sa", "vi", "ro", "mu", "te", "ka", "no", "li", "pe", "xo", "ju"]
REDIRECT_V4 = "192.0.2.80"
MISS_V4 = "203.0.113.77"  # NSD's wildcard answer below miss.test
NEW_NAMES = 100          # rI.allowed.test, listed in v2 only


def words(rng, count):
    out, seen = [], set()
    while len(out) < count:
        w = "".join(rng.choice(SYLL) for _ in range(rng.randint(3, 4)))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def make_names(n, rng):
    pool = words(rng, 3000)
    names, seen = [], set()
    while len(names) < n:
        h = "w%08x" % rng.getrandbits(32)
        tld = rng.choice(TLDS)
        k = rng.random()
        if k < 0.35:                      # 2 labels: wXXXXXXXX-word.fr
            name = "%s-%s.%s" % (h, rng.choice(pool), tld)
        elif k < 0.85:                    # 3 labels: wXXXXXXXX.word.fr
            name = "%s.%s.%s" % (h, rng.choice(pool), tld)
        else:                             # 4 labels
            name = "%s.%s.%s.%s" % (h, rng.choice(pool), rng.choice(pool), tld)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_list(path, serial, names, now):
    issued = now - dt.timedelta(hours=1)
    expires = now + dt.timedelta(days=30)
    with open(path, "w", newline="\n") as f:
        f.write("#rempart-list v1\n")
        f.write("issuer: BENCH (synthetic benchmark list)\n")
        f.write("serial: %d\n" % serial)
        f.write("issued: %s\n" % rfc3339(issued))
        f.write("expires: %s\n" % rfc3339(expires))
        f.write("\n")
        f.write("name\tmatch\tcategory\treference\tadded\n")
        for i, name in enumerate(names, 1):
            f.write("%s\tsubtree\tterrorism\tBENCH-%06d\t2026-11-20\n" % (name, i))


def write_rpz(path, serial, names):
    with open(path, "w") as f:
        f.write("$ORIGIN rpz.bench.\n$TTL 60\n")
        f.write("@ SOA localhost. hostmaster.localhost. %d 3600 600 86400 60\n" % (serial % 4294967296))
        f.write("@ NS localhost.\n")
        for name in names:
            f.write("%s A %s\n*.%s A %s\n" % (name, REDIRECT_V4, name, REDIRECT_V4))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000000)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--seed", type=int, default=20261120)
    ap.add_argument("--allowed", type=int, default=100000)
    ap.add_argument("--queries", type=int, default=200000)
    ap.add_argument("--extra-lists", type=int, default=4,
                    help="small lists for the several-lists row (each --extra-n names)")
    ap.add_argument("--extra-n", type=int, default=10000)
    ap.add_argument("--miss", type=int, default=1000000,
                    help="distinct cache-miss queries (more than one run sends)")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    rng = random.Random(a.seed)
    p = lambda name: os.path.join(a.dir, name)

    names = make_names(a.n, rng)
    removed = max(1, min(1000, a.n // 10))          # delisted in v2
    kept = names[:-removed]
    new = ["r%d.allowed.test" % i for i in range(NEW_NAMES)]
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    serial = int(now.strftime("%Y%m%d")) * 100 + 1
    write_list(p("list-v1.txt"), serial, names, now)
    write_list(p("list-v2.txt"), serial + 1, kept + new, now)
    write_rpz(p("rpz-v1.zone"), serial, names)
    write_rpz(p("rpz-v2.zone"), serial + 1, kept + new)
    with open(p("dnsdist-v1.names"), "w") as f:
        f.writelines("%s\n" % name for name in names)

    with open(p("allowed.zone"), "w") as f:
        f.write("$ORIGIN allowed.test.\n$TTL 86400\n")
        f.write("@ SOA ns.allowed.test. hostmaster.allowed.test. 1 3600 600 86400 3600\n")
        f.write("@ NS ns.allowed.test.\nns A 127.0.0.1\n")
        for i in range(a.allowed):
            f.write("a%d A 198.51.100.%d\n" % (i, i % 254 + 1))
        for i in range(NEW_NAMES):
            f.write("r%d A 198.51.100.200\n" % i)
    with open(p("miss.zone"), "w") as f:
        f.write("$ORIGIN miss.test.\n$TTL 3600\n")
        f.write("@ SOA ns.miss.test. hostmaster.miss.test. 1 3600 600 86400 3600\n")
        f.write("@ NS ns.miss.test.\nns A 127.0.0.1\n")
        f.write("* A %s\n" % MISS_V4)

    # Several lists: small lists of other authorities, names of their own
    # (an "x" prefix: never a name of the main list).
    xrng = random.Random(a.seed + 2)
    extra_q = []
    for k in range(1, a.extra_lists + 1):
        xs = ["x%d%s" % (k, n[1:]) for n in make_names(a.extra_n, xrng)]
        write_list(p("extra-%d.txt" % k), serial, xs, now)
        extra_q.extend(xs[: max(1, a.queries // (4 * max(1, a.extra_lists)))])
    xrng.shuffle(extra_q)
    with open(p("q_extra.txt"), "w") as f:
        f.writelines("%s A\n" % q for q in extra_q)

    qrng = random.Random(a.seed + 1)
    listed_q = []
    for _ in range(a.queries):
        name = qrng.choice(kept)
        if qrng.random() < 0.5:
            name = "s%06x.%s" % (qrng.getrandbits(24), name)
        listed_q.append(name)
    allowed_q = ["a%d.allowed.test" % i for i in range(a.allowed)]
    qrng.shuffle(allowed_q)
    with open(p("q_listed.txt"), "w") as f:
        f.writelines("%s A\n" % q for q in listed_q)
    with open(p("q_allowed.txt"), "w") as f:
        f.writelines("%s A\n" % q for q in allowed_q)
    with open(p("q_mixed.txt"), "w") as f:
        for i in range(min(len(listed_q), len(allowed_q))):
            f.write("%s A\n%s A\n" % (listed_q[i], allowed_q[i]))
    # Cache misses: the index makes every name distinct; the random label
    # keeps consecutive names from sharing a long prefix.
    with open(p("q_miss.txt"), "w") as f:
        f.writelines("m%x-%06x.miss.test A\n" % (i, qrng.getrandbits(24))
                     for i in range(a.miss))
    with open(p("probe_listed.txt"), "w") as f:
        f.writelines("%s\n" % q for q in listed_q[:5000])
    with open(p("probe_allowed.txt"), "w") as f:
        f.writelines("%s\n" % q for q in allowed_q[:5000])
    with open(p("probe_new.txt"), "w") as f:
        f.writelines("%s\n" % q for q in new)
    with open(p("first_listed.txt"), "w") as f:
        f.write(kept[0] + "\n")
    print("gen: %d names (%d delisted in v2, %d added), serial %d, %d allowed names,"
          " %d cache-miss queries" % (len(names), removed, len(new), serial, a.allowed, a.miss))


if __name__ == "__main__":
    main()
