#!/usr/bin/env bash
# Listed-name queries/s over DNS over HTTPS, Rempart's listener against
# dnsdist's (SpoofAction for the same name), in the same run: h2load
# (Debian's nghttp2-client) posting one query for a listed name, on
# connections kept open (HTTP/2, several streams each). dnsperf 2.10's DoH
# client stalls after a few queries per connection against either server,
# hence h2load.
#
#   examples/bench/doh.sh [-r REPEATS] [-d SECONDS]
#
# Needs: openssl, h2load, dnsdist, python3; REMPART_BIN (default
# target/release/rempart). Ports 18053, 18443, 18444, 19153 on loopback.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
R=3
D=8
while getopts "r:d:" opt; do
    case $opt in
        r) R=$OPTARG ;;
        d) D=$OPTARG ;;
        *) echo "usage: $0 [-r REPEATS] [-d SECONDS]" >&2; exit 2 ;;
    esac
done
BIN=${REMPART_BIN:-$REPO/target/release/rempart}
for t in openssl h2load dnsdist python3; do
    command -v "$t" >/dev/null || { echo "doh.sh: $t is missing (Debian: openssl nghttp2-client dnsdist python3)" >&2; exit 1; }
done
[[ -x $BIN ]] || { echo "doh.sh: $BIN is not built (cargo build --release)" >&2; exit 1; }
W=$(mktemp -d /tmp/rempart-doh.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=doh.rempart.test" -keyout "$W/tls.key" -out "$W/tls.crt" >/dev/null 2>&1
chmod 600 "$W/tls.key"
cat >"$W/rempart.toml" <<EOT
[server]
listen = ["127.0.0.1:18053"]
https_listen = ["127.0.0.1:18443"]
tls_certificate = "$W/tls.crt"
tls_key = "$W/tls.key"
tcp_max_per_client = 1000
[upstream]
servers = ["127.0.0.1:1"]
[list]
path = "$REPO/config/demo/list.txt"
trusted_keys = ["$REPO/config/demo/demo.pub"]
state_dir = "$W/state"
[redirect]
ipv4 = ["192.0.2.80"]
[admin]
listen = "127.0.0.1:19153"
[audit]
enabled = false
[log]
level = "warn"
EOT
cat >"$W/dnsdist.lua" <<EOT
setSecurityPollSuffix("")
setLocal("127.0.0.1:18054")
addDOHLocal("127.0.0.1:18444", "$W/tls.crt", "$W/tls.key", "/dns-query")
newServer({address="127.0.0.1:18053", checkName="bad.test."})
local listed = newSuffixMatchNode()
listed:add("bad.test")
addAction(SuffixMatchNodeRule(listed, true), SpoofAction({"192.0.2.80"}))
EOT
# The same listed name, ID 0 (RFC 8484 section 4.1).
python3 - "$W/query.bin" <<'PY'
import struct, sys
h = struct.pack(">HHHHHH", 0, 0x0100, 1, 0, 0, 0)
q = b"".join(bytes([len(p)]) + p.encode() for p in ["www", "bad", "test"]) + b"\0"
open(sys.argv[1], "wb").write(h + q + struct.pack(">HH", 1, 1))
PY
"$BIN" serve --config "$W/rempart.toml" >"$W/rempart.log" 2>&1 &
pids+=($!)
dnsdist --supervised --disable-syslog -C "$W/dnsdist.lua" >"$W/dnsdist.log" 2>&1 &
pids+=($!)
sleep 3
run() {   # port -> requests/s (h2load's "finished in" line)
    h2load -D "$D" -c 16 -m 16 -t 1 -d "$W/query.bin" \
        -H "content-type: application/dns-message" -H "accept: application/dns-message" \
        "https://127.0.0.1:$1/dns-query" 2>&1 | tee -a "$W/h2load.log" |
        awk '/^finished in/ {printf "%.0f", $4}'
}
rem=() dd=()
for i in $(seq "$R"); do
    rem+=("$(run 18443)")
    dd+=("$(run 18444)")
    echo "doh.sh: repetition $i: rempart ${rem[-1]} req/s, dnsdist ${dd[-1]} req/s" >&2
done
python3 - "${rem[*]}" "${dd[*]}" <<'PY'
import statistics, sys
r = [float(x) for x in sys.argv[1].split()]
d = [float(x) for x in sys.argv[2].split()]
mr, md = statistics.median(r), statistics.median(d)
print(f"| Max QPS, listed name, DNS over HTTPS (h2load -c 16 -m 16) | {mr:,.0f} | dnsdist {md:,.0f} | ratio {mr / md:.2f} |")
PY
grep -h "failed\|status codes" "$W/h2load.log" | sort | uniq -c >&2
