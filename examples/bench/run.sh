#!/usr/bin/env bash
# Rempart vs Unbound (RPZ) and dnsdist (SuffixMatchNode) benchmark. See
# examples/bench/README.md.
#
#   examples/bench/run.sh [-n NAMES] [-r REPEATS] [-l SECONDS] [-o DIR]
#
# Run as root: it re-executes itself in a network namespace with only the
# loopback interface (unshare -n), so nothing reaches or comes from outside.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
N=1000000
R=3
L=10
OUT=/tmp/rempart-bench

usage() {
    cat <<EOF
usage: $0 [-n NAMES] [-r REPEATS] [-l SECONDS] [-o DIR]
  -n NAMES    names in the list (default $N)
  -r REPEATS  repetitions of every measurement, medians reported (default $R)
  -l SECONDS  duration of each dnsperf run (default $L)
  -o DIR      work and results directory (default $OUT)
Environment:
  REMPART_BIN   rempart binary (default: cargo build --release, then
                target/release/rempart)
  DNSPERF_ARGS  load options for the max-QPS runs (default "-c 16 -T 2 -q 512")
  MISS_ARGS     load options for the cache-miss runs (default "-c 16 -T 2 -q 2000")
EOF
}

while getopts "n:r:l:o:h" opt; do
    case $opt in
        n) N=$OPTARG ;;
        r) R=$OPTARG ;;
        l) L=$OPTARG ;;
        o) OUT=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
for v in "$N" "$R" "$L"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "bench: -n, -r and -l take positive integers (got '$v')" >&2; exit 2; }
done

die() { echo "bench: ERROR: $*" >&2; exit 1; }
log() { echo "bench: $(date +%H:%M:%S) $*" >&2; }

# ---------------------------------------------------------------- outside
if [[ -z ${BENCH_IN_NETNS:-} ]]; then
    [[ $EUID -eq 0 ]] || die "run as root (the benchmark runs in its own network namespace: unshare -n)"
    missing=()
    for t in python3 unshare ip unbound unbound-control nsd nsd-control dnsdist dnsperf minisign dig openssl; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    if ((${#missing[@]})); then
        die "missing tools: ${missing[*]} (Debian: apt-get install python3 util-linux iproute2 unbound nsd dnsdist dnsperf minisign dnsutils)"
    fi
    if [[ -z ${REMPART_BIN:-} ]]; then
        command -v cargo >/dev/null 2>&1 || die "REMPART_BIN is not set and cargo is missing: install Rust or point REMPART_BIN at a rempart binary"
        log "building rempart (cargo build --release)"
        (cd "$REPO" && cargo build --release) || die "cargo build --release failed"
        REMPART_BIN=$REPO/target/release/rempart
    fi
    [[ -x $REMPART_BIN ]] || die "REMPART_BIN=$REMPART_BIN is not an executable file"
    REMPART_BIN=$(readlink -f "$REMPART_BIN")
    export REMPART_BIN BENCH_IN_NETNS=1
    exec unshare -n -- "$0" "$@"
fi

# ---------------------------------------------------------------- inside the namespace
ip link set lo up || die "cannot bring up lo in the network namespace"

PY=python3
GEN=$HERE/gen.py
PROBE=$HERE/probe.py
DNSPERF_ARGS=${DNSPERF_ARGS:-"-c 16 -T 2 -q 512"}
MISS_ARGS=${MISS_ARGS:-"-c 16 -T 2 -q 2000"}
REM_PORT=5353
UNB_PORT=5354
DD_PORT=5355
NSD_PORT=5300
DOT_PORT=8853
DOH_PORT=8443
W=$OUT/work
LOGS=$OUT/logs
RAW=$OUT/raw.tsv
mkdir -p "$OUT"
rm -rf "$W" "$LOGS"
mkdir -p "$W" "$W/stage" "$LOGS"
: >"$RAW"

PIDS=()
cleanup() {
    local rc=$?
    for p in "${PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
        fi
    done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    done
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: start in the background, stderr+stdout to logs/NAME.log
start() {
    local name=$1; shift
    "$@" >>"$LOGS/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}
stop_pid() {
    local p=$1
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
# The most the process has held at any moment since it started (VmHWM).
peak_mib() { awk '/^VmHWM:/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
# rempart_cache_bytes in MiB (Rempart's admin listener), NA if unread.
cache_mib() {
    $PY - <<'PYEOF'
import urllib.request
try:
    body = urllib.request.urlopen("http://127.0.0.1:9153/metrics", timeout=5).read().decode()
except OSError:
    body = ""
for line in body.splitlines():
    if line.startswith("rempart_cache_bytes "):
        print(f"{float(line.split()[1]) / 1048576:.1f}")
        break
else:
    print("NA")
PYEOF
}
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; }   # rep resolver metric value

# ---------------------------------------------------------------- data
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
awk '{exit !($1 > 0.5)}' /proc/loadavg && log "warning: load average is $LOAD0: other work on this machine will skew the results"
# Distinct cache-miss names: more than any resolver answers in one run
# (100k/s for -l seconds); dnsperf runs through them once (-n 1), so none
# repeats, and the script warns if a run used them all.
MISS_Q=$((100000 * L))
MISS_V4=203.0.113.77
log "generating $N names, RPZ zones, dnsdist names, NSD zones, query files"
$PY "$GEN" --n "$N" --dir "$W" --miss "$MISS_Q" >&2
log "signing the lists with minisign"
(
    cd "$W"
    minisign -G -W -f -p bench.pub -s bench.key >/dev/null
    minisign -S -s bench.key -m list-v1.txt >/dev/null
    minisign -S -s bench.key -m list-v2.txt >/dev/null
    # the several-lists row: each small list signed by its own authority
    for f in extra-*.txt; do
        k=${f%.txt}
        minisign -G -W -f -p "$k.pub" -s "$k.key" >/dev/null
        minisign -S -s "$k.key" -m "$f" >/dev/null
    done
) || die "minisign failed"
LISTED_NAME=$(cat "$W/first_listed.txt")

# ---------------------------------------------------------------- NSD
cat >"$W/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$NSD_PORT
    port: $NSD_PORT
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$W"
    database: ""
    pidfile: "$W/nsd.pid"
    xfrdfile: "$W/nsd-xfrd.state"
    xfrdir: "$W"
    zonelistfile: "$W/nsd-zone.list"
    logfile: "$LOGS/nsd.log"
    verbosity: 1
    # Response rate limiting off: every cache miss is a wildcard answer, and
    # RRL would cap those at 200/s from one source.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    # a local socket, no keys: the query counter checks that every cache
    # miss reached NSD
    control-enable: yes
    control-interface: "$W/nsd.ctl"
zone:
    name: allowed.test
    zonefile: "$W/allowed.zone"
zone:
    name: miss.test
    zonefile: "$W/miss.zone"
EOF
log "starting NSD on 127.0.0.1:$NSD_PORT"
start nsd nsd -d -c "$W/nsd.conf"
NSD_PID=$LAST_PID
for _ in $(seq 300); do
    dig +short +time=1 +tries=1 @127.0.0.1 -p $NSD_PORT a1.allowed.test A 2>/dev/null | grep -q '^198\.51\.100\.' && break
    kill -0 "$NSD_PID" 2>/dev/null || die "NSD exited, see $LOGS/nsd.log"
    sleep 0.1
done
dig +short @127.0.0.1 -p $NSD_PORT a1.allowed.test A | grep -q '^198\.51\.100\.' || die "NSD does not answer a1.allowed.test, see $LOGS/nsd.log"
[[ $(dig +short @127.0.0.1 -p $NSD_PORT check.miss.test A) == "$MISS_V4" ]] || die "NSD does not answer check.miss.test with $MISS_V4, see $LOGS/nsd.log"
nsd_queries() { nsd-control -c "$W/nsd.conf" stats_noreset 2>/dev/null | awk -F= '$1=="num.queries" {print $2}'; }
[[ -n $(nsd_queries) ]] || die "nsd-control stats_noreset gives no num.queries (NSD built without statistics?)"

# ---------------------------------------------------------------- configs
rem_config() {   # $1 = file, $2 = audit on|off
    cat >"$1" <<EOF
[server]
listen = ["127.0.0.1:$REM_PORT"]
tls_listen = ["127.0.0.1:$DOT_PORT"]
https_listen = ["127.0.0.1:$DOH_PORT"]
tls_certificate = "$W/tls.crt"
tls_key = "$W/tls.key"

[upstream]
servers = ["127.0.0.1:$NSD_PORT"]
# Room for every allowed name of the run, as Unbound's caches below.
cache_bytes = 134217728

[list]
path = "$W/list.txt"
trusted_keys = ["$W/bench.pub"]
state_dir = "$W/rempart-state"
protected_defaults = false

[redirect]
ipv4 = ["192.0.2.80"]
ipv6 = ["2001:db8::80"]

[admin]
listen = "127.0.0.1:9153"

[log]
level = "info"
EOF
    if [[ $2 == on ]]; then
        printf '\n[audit]\nenabled = true\ndir = "%s"\nclient_ip = "none"\n' "$W/audit" >>"$1"
    else
        printf '\n[audit]\nenabled = false\n' >>"$1"
    fi
}
# A self-signed certificate for the DoT and DoH rows (dnsperf does not
# check it: the rows measure the encrypted path, not the PKI).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=bench.rempart.test" -keyout "$W/tls.key" -out "$W/tls.crt" >/dev/null 2>&1 ||
    die "openssl could not make the benchmark's certificate"
chmod 600 "$W/tls.key"
rem_config "$W/rempart.toml" off
rem_config "$W/rempart-audit.toml" on
# Several lists (BEHAVIOUR section 8): the 1M list first, then the small
# lists of four other authorities, each with its own key and redirect.
{
    sed -n '/^\[list\]/q;p' "$W/rempart.toml"
    printf '[list]\nstate_dir = "%s"\nprotected_defaults = false\n\n' "$W/rempart-multi-state"
    printf '[[lists]]\nid = "main"\npath = "%s"\ntrusted_keys = ["%s"]\n\n' "$W/list.txt" "$W/bench.pub"
    for f in "$W"/extra-*.txt; do
        k=$(basename "${f%.txt}")
        printf '[[lists]]\nid = "%s"\npath = "%s"\ntrusted_keys = ["%s"]\nredirect = { ipv4 = ["198.51.100.53"] }\n\n' "$k" "$f" "$W/$k.pub"
    done
    sed -n '/^\[redirect\]/,$p' "$W/rempart.toml"
} >"$W/rempart-multi.toml"
"$REMPART_BIN" config check "$W/rempart.toml" >&2 || die "rempart config check refused $W/rempart.toml"
MULTI=1
"$REMPART_BIN" config check "$W/rempart-multi.toml" >&2 || { log "warning: this rempart does not take several lists: no several-lists row"; MULTI=; }

cat >"$W/unbound.conf" <<EOF
server:
    interface: 127.0.0.1@$UNB_PORT
    port: $UNB_PORT
    do-ip6: no
    num-threads: 2
    so-reuseport: yes
    so-rcvbuf: 4m
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$W"
    pidfile: "$W/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "respip iterator"
    msg-cache-size: 256m
    rrset-cache-size: 512m
    num-queries-per-thread: 4096
    outgoing-range: 8192
    qname-minimisation: no
    prefetch: no
    local-zone: "test." nodefault
remote-control:
    control-enable: yes
    control-interface: "$W/unbound.ctl"
    control-use-cert: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$NSD_PORT
rpz:
    name: rpz.bench
    zonefile: "$W/rpz.zone"
    rpz-log: no
EOF
cp "$W/rpz-v1.zone" "$W/rpz.zone"
unbound-checkconf "$W/unbound.conf" >&2 || die "unbound-checkconf refused $W/unbound.conf"

# dnsdist: two UDP listeners on one port (SO_REUSEPORT, one thread each, as
# Unbound's 2 threads); the list as a SuffixMatchNode (a name and every name
# below it, as Rempart's subtree entries) answered by a SpoofAction with
# Rempart's redirect; a packet cache as large as Rempart's cache; NSD as the
# only backend. The names are read from a file: a Lua chunk with a million
# add() lines would exceed LuaJIT's limits on one function.
cat >"$W/dnsdist.lua" <<EOF
setSecurityPollSuffix("")
setLocal("127.0.0.1:$DD_PORT", {reusePort=true})
addLocal("127.0.0.1:$DD_PORT", {reusePort=true})
setACL({"127.0.0.0/8"})
newServer({address="127.0.0.1:$NSD_PORT", name="nsd", checkName="allowed.test.", checkType="SOA"})
getPool(""):setCache(newPacketCache(400000, {maxTTL=86400, numberOfShards=20}))
local listed = newSuffixMatchNode()
local n = 0
for name in io.lines("$W/dnsdist-v1.names") do
    listed:add(name)
    n = n + 1
end
infolog("bench: " .. n .. " names in the SuffixMatchNode")
addAction(SuffixMatchNodeRule(listed, true), SpoofAction({"192.0.2.80", "2001:db8::80"}))
EOF
dnsdist --check-config -C "$W/dnsdist.lua" >>"$LOGS/dnsdist.log" 2>&1 || die "dnsdist --check-config refused $W/dnsdist.lua, see $LOGS/dnsdist.log"

# ---------------------------------------------------------------- measurements
dnsperf_qps() {   # port file -> QPS (also keeps the output in logs)
    local out
    out=$(dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$L" $DNSPERF_ARGS 2>&1) || true
    echo "$out" >>"$LOGS/dnsperf.log"
    echo "$out" | awk '/Queries per second:/ {printf "%.0f", $4}'
}
dnsperf_mode_qps() {   # mode port file -> QPS over DoT or DoH: each of dnsperf's
    # clients keeps its connection for the whole run
    local out
    out=$(dnsperf -m "$1" -s 127.0.0.1 -p "$2" -d "$3" -l "$L" $DNSPERF_ARGS 2>&1) || true
    echo "$out" >>"$LOGS/dnsperf.log"
    echo "$out" | awk '/Queries per second:/ {printf "%.0f", $4}'
}
warm() {   # port: one pass over the allowed names, paced
    dnsperf -s 127.0.0.1 -p "$1" -d "$W/q_allowed.txt" -n 1 -Q 20000 -c 4 -q 200 >>"$LOGS/dnsperf.log" 2>&1 || true
}
latency() {   # rep resolver port: p50/p99 at 10k qps (dnsperf -v prints every answer with its latency)
    local out="$LOGS/latency-$2-$1.txt"
    dnsperf -s 127.0.0.1 -p "$3" -d "$W/q_mixed.txt" -l "$L" -Q 10000 -c 4 -q 1000 -v >"$out" 2>&1 || true
    local res
    res=$(grep -E '^> ' "$out" | awk '{print $NF}' | sort -g | awk '{a[NR]=$1} END {if (NR==0) exit 1; i50=int(NR*0.50); if (i50<1) i50=1; i99=int(NR*0.99); if (i99<1) i99=1; printf "%.3f %.3f %d", a[i50]*1000, a[i99]*1000, NR}') || res=""
    if [[ -z $res ]]; then
        log "dnsperf -v gave no per-query latencies, using probe.py latency"
        res=$($PY "$PROBE" latency --port "$3" --file "$W/q_mixed.txt" --rate 10000 --duration "$L" |
              awk -F= '/^p50_ms/ {p50=$2} /^p99_ms/ {p99=$2} /^answered/ {n=$2} END {print p50, p99, n}')
    fi
    read -r p50 p99 _ <<<"$res"
    record "$1" "$2" lat_p50_ms "$p50"
    record "$1" "$2" lat_p99_ms "$p99"
    local lost
    lost=$(awk '/Queries lost:/ {print $3}' "$out")
    [[ -n $lost ]] && record "$1" "$2" lat_lost "$lost"
    return 0
}
reload_test() {   # rep resolver port trigger-cmd
    local out="$LOGS/reload-$2-$1.txt"
    $PY "$PROBE" steady --port "$3" --listed "$W/probe_listed.txt" --allowed "$W/probe_allowed.txt" \
        --new "$W/probe_new.txt" --rate 2000 --duration $((L > 8 ? L : 8)) --trigger-after 3 \
        --trigger-cmd "$4" >"$out" 2>&1 || log "probe steady failed for $2, see $out"
    local k v
    for k in visible_ms max_gap_ms lost wrong; do
        v=$(awk -F= -v k="$k" '$1==k {print $2}' "$out")
        record "$1" "$2" "reload_$k" "${v:-NA}"
    done
}

cache_misses() {   # rep resolver port: every query a name no cache holds
    local out="$LOGS/miss-$2-$1.txt" got
    # The resolver must give NSD's wildcard answer (a name no other test uses).
    got=$(dig +short +time=3 +tries=1 @127.0.0.1 -p "$3" "check-$2-$1.miss.test" A 2>/dev/null | tail -1) || true
    [[ $got == "$MISS_V4" ]] || log "warning: $2 answers check-$2-$1.miss.test with '$got', NSD with $MISS_V4"
    local q0 q1
    q0=$(nsd_queries)
    # One pass at most over distinct names (-n 1), so no query repeats; -v
    # prints every answer with its latency, under the same load as the QPS.
    dnsperf -s 127.0.0.1 -p "$3" -d "$W/q_miss.txt" -n 1 -l "$L" $MISS_ARGS -v >"$out.all" 2>&1 || true
    q1=$(nsd_queries)
    local qps sent noerror servfail lost rcodes res
    qps=$(awk '/Queries per second:/ {printf "%.0f", $4}' "$out.all")
    sent=$(awk '/Queries sent:/ {print $3}' "$out.all")
    lost=$(awk '/Queries lost:/ {print $3}' "$out.all")
    rcodes=$(sed -n 's/^ *Response codes: *//p' "$out.all")
    noerror=$(echo "$rcodes" | grep -oE 'NOERROR [0-9]+' | awk '{print $2}') || true
    servfail=$(echo "$rcodes" | grep -oE 'SERVFAIL [0-9]+' | awk '{print $2}') || true
    # percentiles over the answered queries (any rcode; "> T" lines are the
    # queries dnsperf gave up on, counted as lost)
    res=$(awk '$1 == ">" && $2 != "T" {print $NF}' "$out.all" | sort -g |
          awk '{a[NR]=$1} END {if (NR==0) exit 1; i50=int(NR*0.50); if (i50<1) i50=1; i99=int(NR*0.99); if (i99<1) i99=1; printf "%.3f %.3f", a[i50]*1000, a[i99]*1000}') || res="NA NA"
    # keep the summary and the answers that were not NOERROR, not 100k lines
    grep -v '^> NOERROR ' "$out.all" >"$out" || true
    rm -f "$out.all"
    local p50 p99
    read -r p50 p99 <<<"$res"
    record "$1" "$2" miss_qps "${qps:-NA}"
    record "$1" "$2" miss_servfail "${servfail:-0}"
    record "$1" "$2" miss_lost "${lost:-NA}"
    record "$1" "$2" miss_p50_ms "$p50"
    record "$1" "$2" miss_p99_ms "$p99"
    record "$1" "$2" miss_rcodes "${rcodes:-none}"
    if [[ -n $q0 && -n $q1 && -n $sent && $sent -gt 0 ]]; then
        record "$1" "$2" miss_nsd_per_query "$(awk -v d=$((q1 - q0)) -v s="$sent" 'BEGIN {printf "%.3f", d / s}')"
        # no cache holds these names: every NOERROR answer came from NSD
        ((q1 - q0 >= ${noerror:-0})) || log "warning: $2 gave ${noerror:-0} NOERROR cache-miss answers but NSD saw only $((q1 - q0)) queries"
    fi
    [[ ${sent:-0} -lt $MISS_Q ]] || log "warning: $2 used every one of the $MISS_Q cache-miss names before -l $L s ended: the QPS covers a shorter run"
    return 0
}

startup() {   # rep resolver port pid t0
    local ms
    if ms=$($PY "$PROBE" wait --port "$3" --name "$LISTED_NAME" --since "$5" --timeout 900); then
        record "$1" "$2" startup_ms "$ms"
    else
        kill -0 "$4" 2>/dev/null || die "$2 exited during startup, see $LOGS/$2.log"
        die "$2 gave no redirect for $LISTED_NAME within 900 s, see $LOGS/$2.log"
    fi
    record "$1" "$2" rss_load_mib "$(rss_mib "$4")"
}

launch() {   # rep resolver port cmd...: start it, then the start-up rows; sets LAST_PID
    local rep=$1 res=$2 port=$3 t0
    shift 3
    log "[$rep] $res: start"
    echo "=== rep $rep $(date -u +%FT%TZ) ===" >>"$LOGS/$res.log"
    t0=$(date +%s.%N)
    start "$res" "$@"
    startup "$rep" "$res" "$port" "$LAST_PID" "$t0"
}
load_rows() {   # rep resolver port pid: the rows every peer has, on a started process
    log "[$1] $2: warm cache, QPS listed, QPS allowed, latency"
    warm "$3"
    record "$1" "$2" qps_listed "$(dnsperf_qps "$3" "$W/q_listed.txt")"
    record "$1" "$2" qps_allowed "$(dnsperf_qps "$3" "$W/q_allowed.txt")"
    latency "$1" "$2" "$3"
    record "$1" "$2" rss_after_mib "$(rss_mib "$4")"
}

run_rempart() {   # rep
    local rep=$1 pid t0
    rm -rf "$W/rempart-state" "$W/audit"
    cp "$W/list-v1.txt" "$W/list.txt"
    cp "$W/list-v1.txt.minisig" "$W/list.txt.minisig"
    launch "$rep" rempart $REM_PORT "$REMPART_BIN" serve --config "$W/rempart.toml"
    pid=$LAST_PID
    $PY - <<'EOF' >&2 || log "warning: /readyz is not 200"
import urllib.request
print("bench: rempart /readyz:", urllib.request.urlopen("http://127.0.0.1:9153/readyz", timeout=5).status)
EOF
    local cache0 cache1 rss0 rss1
    cache0=$(cache_mib) rss0=$(rss_mib "$pid")
    load_rows "$rep" rempart $REM_PORT "$pid"
    # What of that RSS is the answer cache (its budget: upstream.cache_bytes,
    # 128 MiB here), and how the process grew against what the
    # cache counts (1.00: the cache's figure is what it costs).
    cache1=$(cache_mib) rss1=$(rss_mib "$pid")
    record "$rep" rempart cache_after_mib "$cache1"
    record "$rep" rempart cache_rss_ratio "$(awk -v a="$rss0" -v b="$rss1" -v c="$cache0" -v d="$cache1" \
        'BEGIN {if (d - c > 1) printf "%.2f", (b - a) / (d - c); else print "NA"}')"
    log "[$rep] rempart: QPS listed over DoT (connections reused)"
    record "$rep" rempart qps_listed_dot "$(dnsperf_mode_qps dot $DOT_PORT "$W/q_listed.txt")"
    log "[$rep] rempart: reload under load"
    cp "$W/list-v2.txt" "$W/stage/list.txt"
    cp "$W/list-v2.txt.minisig" "$W/stage/list.txt.minisig"
    reload_test "$rep" rempart $REM_PORT \
        "mv -f '$W/stage/list.txt.minisig' '$W/list.txt.minisig' && mv -f '$W/stage/list.txt' '$W/list.txt'"
    record "$rep" rempart rss_peak_mib "$(peak_mib "$pid")"
    log "[$rep] rempart: cache misses"
    cache_misses "$rep" rempart $REM_PORT
    # The cache-miss names (up to MISS_Q) fill the cache to its budget.
    record "$rep" rempart cache_end_mib "$(cache_mib)"
    record "$rep" rempart rss_end_mib "$(rss_mib "$pid")"
    record "$rep" rempart rss_peak_end_mib "$(peak_mib "$pid")"
    kill -0 "$pid" 2>/dev/null || die "rempart died during the run, see $LOGS/rempart.log"
    stop_pid "$pid"

    # audit on: listed-name QPS only
    rm -rf "$W/rempart-state" "$W/audit"
    cp "$W/list-v1.txt" "$W/list.txt"
    cp "$W/list-v1.txt.minisig" "$W/list.txt.minisig"
    log "[$rep] rempart (audit on): start, QPS listed"
    echo "=== rep $rep audit on $(date -u +%FT%TZ) ===" >>"$LOGS/rempart.log"
    t0=$(date +%s.%N)
    start rempart "$REMPART_BIN" serve --config "$W/rempart-audit.toml"
    pid=$LAST_PID
    local ms
    ms=$($PY "$PROBE" wait --port $REM_PORT --name "$LISTED_NAME" --since "$t0" --timeout 900) ||
        die "rempart (audit on) gave no redirect, see $LOGS/rempart.log"
    record "$rep" rempart startup_audit_ms "$ms"
    # A list applied at start is written to the trail once serving: one
    # record per entry (N records). Measure the redirect path, not that
    # one-off: wait until the records counter stops moving (at most 300 s).
    local written
    written=$($PY - 9153 <<'PYEOF'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/metrics"
def count():
    for line in urllib.request.urlopen(url, timeout=5).read().decode().splitlines():
        if line.startswith("rempart_audit_records_total "):
            return float(line.split()[1])
    return 0.0
t0, last, still = time.time(), -1.0, 0
while time.time() - t0 < 300 and still < 4:
    n = count()
    still = still + 1 if n == last else 0
    last = n
    time.sleep(0.25)
print(f"{time.time() - t0:.1f}")
PYEOF
) || written=NA
    record "$rep" rempart audit_initial_s "$written"
    record "$rep" rempart qps_listed_audit "$(dnsperf_qps $REM_PORT "$W/q_listed.txt")"
    # audit on: the v2 list applied (its changes audited), then the peak
    cp "$W/list-v2.txt" "$W/stage/list.txt"
    cp "$W/list-v2.txt.minisig" "$W/stage/list.txt.minisig"
    mv -f "$W/stage/list.txt.minisig" "$W/list.txt.minisig" && mv -f "$W/stage/list.txt" "$W/list.txt"
    $PY "$PROBE" wait --port $REM_PORT --name "$(head -1 "$W/probe_new.txt")" --since "$(date +%s.%N)" --timeout 60 >/dev/null ||
        log "warning: rempart (audit on) did not apply list v2 within 60 s"
    sleep 2
    record "$rep" rempart rss_peak_audit_mib "$(peak_mib "$pid")"
    kill -0 "$pid" 2>/dev/null || die "rempart (audit on) died during the run, see $LOGS/rempart.log"
    stop_pid "$pid"
    local verify
    verify=$("$REMPART_BIN" audit verify "$W/audit" 2>&1) || log "warning: rempart audit verify failed: $verify"
    record "$rep" rempart audit_mib "$(du -sm "$W/audit" | cut -f1)"
    rm -rf "$W/audit"

    # several lists: the same 1M list first, four small lists after it
    [[ -n $MULTI ]] || return 0
    rm -rf "$W/rempart-multi-state"
    log "[$rep] rempart (5 lists): start, QPS listed (main list, other lists)"
    echo "=== rep $rep 5 lists $(date -u +%FT%TZ) ===" >>"$LOGS/rempart.log"
    t0=$(date +%s.%N)
    start rempart "$REMPART_BIN" serve --config "$W/rempart-multi.toml"
    pid=$LAST_PID
    ms=$($PY "$PROBE" wait --port $REM_PORT --name "$LISTED_NAME" --since "$t0" --timeout 900) ||
        die "rempart (5 lists) gave no redirect, see $LOGS/rempart.log"
    record "$rep" rempart startup_multi_ms "$ms"
    record "$rep" rempart rss_multi_mib "$(rss_mib "$pid")"
    record "$rep" rempart qps_listed_multi "$(dnsperf_qps $REM_PORT "$W/q_listed.txt")"
    record "$rep" rempart qps_extra_multi "$(dnsperf_qps $REM_PORT "$W/q_extra.txt")"
    record "$rep" rempart rss_peak_multi_mib "$(peak_mib "$pid")"
    kill -0 "$pid" 2>/dev/null || die "rempart (5 lists) died during the run, see $LOGS/rempart.log"
    stop_pid "$pid"
}

run_unbound() {   # rep
    local rep=$1 pid
    cp "$W/rpz-v1.zone" "$W/rpz.zone"
    launch "$rep" unbound $UNB_PORT unbound -d -c "$W/unbound.conf"
    pid=$LAST_PID
    load_rows "$rep" unbound $UNB_PORT "$pid"
    log "[$rep] unbound: reload under load (auth_zone_reload rpz.bench)"
    cp "$W/rpz-v2.zone" "$W/stage/rpz.zone"
    reload_test "$rep" unbound $UNB_PORT \
        "mv -f '$W/stage/rpz.zone' '$W/rpz.zone' && unbound-control -c '$W/unbound.conf' auth_zone_reload rpz.bench >/dev/null"
    record "$rep" unbound rss_peak_mib "$(peak_mib "$pid")"
    log "[$rep] unbound: cache misses"
    cache_misses "$rep" unbound $UNB_PORT
    kill -0 "$pid" 2>/dev/null || die "unbound died during the run, see $LOGS/unbound.log"
    stop_pid "$pid"
}

run_dnsdist() {   # rep: the listed and cached rows only (no reload, no cache misses)
    local rep=$1 pid
    launch "$rep" dnsdist $DD_PORT dnsdist --supervised --disable-syslog -C "$W/dnsdist.lua"
    pid=$LAST_PID
    load_rows "$rep" dnsdist $DD_PORT "$pid"
    kill -0 "$pid" 2>/dev/null || die "dnsdist died during the run, see $LOGS/dnsdist.log"
    stop_pid "$pid"
}

for rep in $(seq "$R"); do
    run_rempart "$rep"
    run_unbound "$rep"
    run_dnsdist "$rep"
done
stop_pid "$NSD_PID"

# ---------------------------------------------------------------- report
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
MACHINE="$(nproc) CPU ($cpu), $mem RAM, kernel $(uname -r), load average at start $LOAD0"
VERSIONS="$("$REMPART_BIN" --version 2>&1 | head -1); unbound $(unbound -V 2>&1 | awk '/^Version/ {print $2; exit}'); dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2; exit}'); nsd $(nsd -v 2>&1 | awk '/^NSD version/ {print $3; exit}'); dnsdist $(dnsdist --version 2>&1 | awk '/^dnsdist/ {print $2; exit}')"
REM_ERRS=$(grep -c -E ' (ERROR|WARN) ' "$LOGS/rempart.log" || true)
export MACHINE VERSIONS LOAD0 N R L REM_ERRS DNSPERF_ARGS MISS_ARGS
$PY - "$RAW" >"$OUT/results.md" <<'EOF'
import os, statistics, sys, datetime
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
vals = {}
texts = {}
for rep, res, metric, v in rows:
    try:
        vals.setdefault((res, metric), []).append(float(v))
    except ValueError:
        texts.setdefault((res, metric), []).append(v)
def med(res, metric):
    v = vals.get((res, metric))
    return statistics.median(v) if v else None
def fmt(x, d):
    if x is None:
        return "n/a"
    return f"{x:,.{d}f}"
METRICS = [
    ("qps_listed", "Max QPS, listed names (redirect)", 0),
    ("qps_allowed", "Max QPS, allowed names (cached)", 0),
    ("lat_p50_ms", "Latency p50 at 10k qps, mixed (ms)", 3),
    ("lat_p99_ms", "Latency p99 at 10k qps, mixed (ms)", 3),
    ("lat_lost", "Queries lost at 10k qps", 0),
    ("startup_ms", "Start to first redirected answer (ms)", 0),
    ("rss_load_mib", "RSS after load (MiB)", 1),
    ("rss_after_mib", "RSS after the query runs (MiB)", 1),
    ("rss_peak_mib", "Peak RSS: start, query runs and a reload (MiB)", 1),
    ("reload_visible_ms", "Reload: trigger to first new-version answer (ms)", 1),
    ("reload_max_gap_ms", "Reload: longest gap between answers at 2k qps (ms)", 1),
    ("reload_lost", "Reload: queries lost (no answer within 2 s)", 0),
    ("reload_wrong", "Reload: wrong answers (SERVFAIL, unexpected)", 0),
    ("miss_qps", "Max QPS, cache misses", 0),
    ("miss_servfail", "SERVFAIL under cache misses", 0),
    ("miss_lost", "Queries lost under cache misses (no answer within 5 s)", 0),
    ("miss_p50_ms", "Latency p50 under cache misses (ms)", 3),
    ("miss_p99_ms", "Latency p99 under cache misses (ms)", 3),
]
def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
e = os.environ
print(f"Run {now}: N={int(e['N']):,} names, {e['R']} repetition(s) (medians), dnsperf -l {e['L']} {e['DNSPERF_ARGS']}"
      f" (cache misses: {e['MISS_ARGS']})")
print()
print(f"Machine: {e['MACHINE']}  ")
print(f"Versions: {e['VERSIONS']}")
print()
print("| metric | Rempart | Unbound | ratio Rempart/Unbound | dnsdist | ratio Rempart/dnsdist |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for key, label, d in METRICS:
    a, b, c = med("rempart", key), med("unbound", key), med("dnsdist", key)
    print(f"| {label} | {fmt(a, d)} | {fmt(b, d)} | {ratio(a, b)} | {fmt(c, d)} | {ratio(a, c)} |")
a, b = med("rempart", "qps_listed_audit"), med("rempart", "qps_listed")
print(f"| Max QPS, listed names, audit on (client_ip=none) | {fmt(a, 0)} | n/a | n/a | n/a | n/a |")
print(f"| Start to first redirected answer, audit on (ms) | {fmt(med('rempart', 'startup_audit_ms'), 0)} | n/a | n/a | n/a | n/a |")
print(f"| Audit: first list's entry records written, after the first answer (s) | {fmt(med('rempart', 'audit_initial_s'), 1)} | n/a | n/a | n/a | n/a |")
print(f"| Audit on/off ratio, listed-name QPS | {'n/a' if not a or not b else f'{a / b:.2f}'} | n/a | n/a | n/a | n/a |")
for key, label, d in [
    ("qps_listed_multi", "Max QPS, listed names, 5 lists (1M + 4 x 10k), names of the first", 0),
    ("qps_extra_multi", "Max QPS, listed names, 5 lists, names of the 4 small lists", 0),
    ("startup_multi_ms", "Start to first redirected answer, 5 lists (ms)", 0),
    ("qps_listed_dot", "Max QPS, listed names, DNS over TLS (connections reused)", 0),
    ("rss_multi_mib", "RSS after load, 5 lists (MiB)", 1),
    ("cache_after_mib", "Answer cache after the query runs (rempart_cache_bytes, MiB; budget 128)", 1),
    ("cache_rss_ratio", "RSS growth over the query runs / growth of rempart_cache_bytes", 2),
    ("cache_end_mib", "Answer cache after the cache-miss runs too (MiB)", 1),
    ("rss_end_mib", "RSS after the cache-miss runs too (MiB)", 1),
    ("rss_peak_end_mib", "Peak RSS, whole run: start, query runs, a reload, cache misses (MiB)", 1),
    ("rss_peak_multi_mib", "Peak RSS, 5 lists: start and query runs (MiB)", 1),
    ("rss_peak_audit_mib", "Peak RSS, audit on: start, the first list's records, query run, a reload (MiB)", 1),
]:
    if med("rempart", key) is not None:
        print(f"| {label} | {fmt(med('rempart', key), d)} | n/a | n/a | n/a | n/a |")
m = med("rempart", "qps_listed_multi")
if m is not None:
    print(f"| 5 lists / 1 list ratio, listed-name QPS (names of the first) | {'n/a' if not m or not b else f'{m / b:.2f}'} | n/a | n/a | n/a | n/a |")
print()
for res in ("rempart", "unbound"):
    codes = texts.get((res, "miss_rcodes"), [])
    per = vals.get((res, "miss_nsd_per_query"), [])
    print(f"Cache misses, {res}, each repetition: response codes {' | '.join(codes) or 'n/a'};"
          f" NSD queries per query sent {' | '.join(f'{x:.2f}' for x in per) or 'n/a'}  ")
print()
print(f"Rempart log lines at WARN or ERROR: {e['REM_ERRS']} (see logs/rempart.log)")
EOF
cat "$OUT/results.md"
log "results: $OUT/results.md, raw values: $RAW, logs: $LOGS"
