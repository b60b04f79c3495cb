#!/usr/bin/env bash
# A person's journey, in a real browser: someone whose resolver is Rempart
# types a listed name and lands on the information page; an unlisted name
# still reaches its own site.
#
# Builds a network namespace with only loopback, in which:
#   - a small authoritative server (upstream.py) serves clean.test on
#     127.0.0.1:5300 (Rempart's upstream);
#   - Rempart serves DNS on 127.0.0.1:53 with the demo list and key
#     (config/demo/), redirecting to 192.0.2.80, admin on 127.0.0.1:9153;
#   - the sample information page (examples/info-page/) is served on
#     192.0.2.80:80, and a "clean site" on 198.51.100.10:80;
#   - /etc/netns/NAME/resolv.conf (bind-mounted over /etc/resolv.conf by
#     `ip netns exec`) makes 127.0.0.1 the namespace's resolver;
# then checks dig, getent and headless Chromium on a listed name (bad.test)
# and an unlisted one (clean.test), keeping a screenshot of the blocked page.
#
# Usage (root): tests/e2e/run.sh
#   REMPART_BIN  the binary (default: target/debug/rempart, `cargo build` if missing)
#   E2E_OUT      where the screenshot goes (default: target/e2e)
#   E2E_KEEP=1   keep the work directory (logs, config, audit trail)
# Exit 0 when every check passes, or when network namespaces are not
# available here (it then prints "e2e: SKIPPED: <reason>"); non-zero with
# "e2e: FAIL: <reason>" otherwise.
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$(pwd)
out=${E2E_OUT:-$root/target/e2e}
bin=${REMPART_BIN:-$root/target/debug/rempart}
ns=rempart-e2e-$$
ns_made=""
pids=()
work=""

listed=bad.test                 # in config/demo/list.txt (subtree)
listed_sub=www.bad.test         # below it: asked by Chromium's own resolver only
listed_sys=m.bad.test           # asked by Chromium through getaddrinfo only
listed_doh=doh.bad.test         # asked by Chromium over DNS over HTTPS only
doh_addr=127.0.0.1:8443         # Rempart's DoH listener
unlisted=clean.test             # served by upstream.py
redirect_ip=192.0.2.80          # redirect.ipv4, where the info page is served
clean_ip=198.51.100.10          # the unlisted site's address
info_sentence="Accès bloqué par décision administrative"   # the info page's <h1>
appeal_sentence="Voies de recours"                          # and its means of appeal
clean_sentence="clean site, reached normally"

say() { echo "e2e: $*"; }
pass() { say "PASS: $*"; }
skip() { say "SKIPPED: $*"; exit 0; }
fail() {
    say "FAIL: $*"
    if [ -n "$work" ] && [ -f "$work/rempart.log" ]; then
        say "last lines of the rempart log:"
        tail -n 20 "$work/rempart.log" | sed 's/^/    /'
    fi
    exit 1
}

cleanup() {
    local rc=$? pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$ns_made" ]; then
        # Anything still inside our fresh namespace was started by this
        # script (a Chromium helper left by a timeout, say).
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -9 "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
        rm -rf "/etc/netns/$ns"
    fi
    if [ -n "$work" ]; then
        if [ "${E2E_KEEP:-}" = 1 ] || [ "$rc" != 0 ]; then
            say "work directory kept: $work"
        else
            rm -rf "$work"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- prerequisites -----------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
command -v ip >/dev/null || skip "no ip command (iproute2)"
probe=rempart-e2e-probe-$$
if ! err=$(ip netns add "$probe" 2>&1); then
    # A failed add can leave its mount point behind.
    ip netns del "$probe" >/dev/null 2>&1 || rm -f "/run/netns/$probe" 2>/dev/null || true
    skip "network namespaces are not available here (ip netns add: $err)"
fi
if ! err=$(ip netns exec "$probe" ip link set lo up 2>&1); then
    ip netns del "$probe" 2>/dev/null || true
    skip "network namespaces are not usable here (ip netns exec: $err)"
fi
ip netns del "$probe"

apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || fail "apt-get update failed"
        apt_updated=yes
    fi
    say "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || fail "could not install $* (apt-get install $*)"
}
[ -x /usr/bin/chromium ] || apt_install chromium
chromium=/usr/bin/chromium
command -v python3 >/dev/null || apt_install python3
command -v dig >/dev/null || apt_install dnsutils
command -v getent >/dev/null || fail "getent (libc-bin) is needed"
command -v openssl >/dev/null || apt_install openssl
if [ ! -x "$bin" ]; then
    [ -z "${REMPART_BIN:-}" ] || fail "REMPART_BIN=$bin is not an executable"
    say "building rempart (cargo build)"
    cargo build --quiet || fail "cargo build failed"
fi
mkdir -p "$out"
work=$(mktemp -d /tmp/rempart-e2e.XXXXXX)

# --- the namespace ---------------------------------------------------------------
ip netns add "$ns"
ns_made=yes
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up
in_ns ip addr add "$redirect_ip/32" dev lo
in_ns ip addr add "$clean_ip/32" dev lo
mkdir -p "/etc/netns/$ns"
echo "nameserver 127.0.0.1" > "/etc/netns/$ns/resolv.conf"
[ "$(in_ns cat /etc/resolv.conf)" = "nameserver 127.0.0.1" ] \
    || fail "/etc/netns/$ns/resolv.conf is not bind-mounted by ip netns exec"

# --- the upstream, the two web sites, Rempart ------------------------------------
# Started with `ip netns exec` directly (not through in_ns, a function, which
# would fork a subshell): $! is then the server itself, which exec replaced.
ip netns exec "$ns" python3 "$root/tests/e2e/upstream.py" 127.0.0.1 5300 "$unlisted=$clean_ip" \
    >"$work/upstream.log" 2>&1 &
pids+=($!)
ip netns exec "$ns" python3 -m http.server 80 --bind "$redirect_ip" \
    --directory "$root/examples/info-page" >"$work/info-page.log" 2>&1 &
pids+=($!)
mkdir -p "$work/clean"
echo "<!doctype html><title>clean</title><p>$clean_sentence</p>" > "$work/clean/index.html"
ip netns exec "$ns" python3 -m http.server 80 --bind "$clean_ip" --directory "$work/clean" \
    >"$work/clean.log" 2>&1 &
pids+=($!)

# Rempart's DoH certificate: self-signed, for 127.0.0.1 (Chromium is told
# to accept it below).
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" -days 2 \
    -subj /CN=rempart-e2e -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 \
    || fail "openssl could not make the DoH certificate"

cat > "$work/rempart.toml" <<EOF
[server]
listen = ["127.0.0.1:53"]
allow = ["127.0.0.0/8"]
https_listen = ["$doh_addr"]
tls_certificate = "$work/tls/cert.pem"
tls_key = "$work/tls/key.pem"

[upstream]
servers = ["127.0.0.1:5300"]
timeout_ms = 1000

[list]
path = "$root/config/demo/list.txt"
trusted_keys = ["$root/config/demo/demo.pub"]
state_dir = "$work/state"

[audit]
dir = "$work/audit"

[redirect]
ipv4 = ["$redirect_ip"]
ttl = 60

[admin]
listen = "127.0.0.1:9153"

[log]
level = "info"
EOF
ip netns exec "$ns" "$bin" serve --config "$work/rempart.toml" >"$work/rempart.log" 2>&1 &
rempart_pid=$!
pids+=($rempart_pid)

# Wait for Rempart's /readyz (200 once the list is applied) and the web servers.
ready_probe='
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200 else 1)
except Exception:
    sys.exit(1)
'
wait_http() {   # URL WHAT
    local _
    for _ in $(seq 1 100); do
        in_ns python3 -c "$ready_probe" "$1" && return 0
        kill -0 "$rempart_pid" 2>/dev/null || fail "rempart exited (see its log) while waiting for $2"
        sleep 0.1
    done
    fail "$2 did not answer 200 at $1 within 10 s"
}
wait_http http://127.0.0.1:9153/readyz "rempart"
pass "rempart ready (/readyz 200) in namespace $ns"
wait_http "http://$redirect_ip/" "the information page server"
wait_http "http://$clean_ip/" "the clean site server"

# --- dig: Rempart answers directly ----------------------------------------------
got=$(in_ns dig +time=2 +tries=1 @127.0.0.1 "$listed" A 2>&1) || true
grep -Eq "^$listed\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+$redirect_ip\$" <<<"$got" \
    || { echo "$got"; fail "dig @127.0.0.1 $listed A does not answer $redirect_ip"; }
grep -q "EDE: 16 (Censored)" <<<"$got" || { echo "$got"; fail "dig $listed: no EDE 16 (Censored)"; }
pass "dig @127.0.0.1 $listed A -> $redirect_ip with EDE 16 (Censored)"
got=$(in_ns dig +time=2 +tries=1 +short @127.0.0.1 "$unlisted" A 2>&1) || true
[ "$got" = "$clean_ip" ] || fail "dig @127.0.0.1 $unlisted A gave '$got', want $clean_ip (forwarded upstream)"
pass "dig @127.0.0.1 $unlisted A -> $clean_ip (forwarded upstream)"

# --- getent: the system resolver (libc, /etc/resolv.conf) is Rempart ----------------
got=$(in_ns getent hosts "$listed" | awk 'NR==1 {print $1}') || true
[ "$got" = "$redirect_ip" ] || fail "getent hosts $listed gave '$got', want $redirect_ip"
pass "getent hosts $listed -> $redirect_ip (the system resolver is Rempart)"
got=$(in_ns getent hosts "$unlisted" | awk 'NR==1 {print $1}') || true
[ "$got" = "$clean_ip" ] || fail "getent hosts $unlisted gave '$got', want $clean_ip"
pass "getent hosts $unlisted -> $clean_ip"

# --- the browser ----------------------------------------------------------------
# Chromium resolves with its own stub resolver (the default here; it also asks
# for HTTPS records) or, with AsyncDns disabled, with getaddrinfo; both read
# the namespace's /etc/resolv.conf, so both ask Rempart. Both are checked.
# No --host-resolver-rules: that would bypass the resolver under test. No
# proxy, no QUIC, no HTTPS-first upgrade.
features=HttpsUpgrades
browse() {
    local profile
    profile=$(mktemp -d "$work/chromium.XXXXXX")
    in_ns timeout --kill-after=5 60 "$chromium" --headless --no-sandbox --disable-gpu \
        --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --no-proxy-server \
        --disable-features="$features" --user-data-dir="$profile" "$@" \
        2>>"$work/chromium.log"
}

page=$(browse --dump-dom "http://$listed/") || true
if ! grep -qF "$info_sentence" <<<"$page"; then
    echo "$page" | head -20
    tail -n 20 "$work/chromium.log"
    fail "chromium http://$listed/ did not show the information page ('$info_sentence')"
fi
grep -qF "$appeal_sentence" <<<"$page" || fail "the information page does not state the means of appeal"
pass "chromium http://$listed/ shows the information page ('$info_sentence')"

rm -f "$out/blocked.png"
browse --screenshot="$out/blocked.png" --window-size=1280,900 "http://$listed_sub/" >/dev/null || true
[ -s "$out/blocked.png" ] || { tail -n 20 "$work/chromium.log"; fail "no screenshot written"; }
[ "$(head -c 8 "$out/blocked.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
    || fail "$out/blocked.png is not a PNG"
pass "chromium screenshot of http://$listed_sub/ kept in $out/blocked.png"

page=$(browse --dump-dom "http://$unlisted/") || true
if ! grep -qF "$clean_sentence" <<<"$page"; then
    echo "$page" | head -20
    tail -n 20 "$work/chromium.log"
    fail "chromium http://$unlisted/ did not reach its own site"
fi
pass "chromium http://$unlisted/ reaches its own site ('$clean_sentence')"

features=HttpsUpgrades,AsyncDns
page=$(browse --dump-dom "http://$listed_sys/") || true
grep -qF "$info_sentence" <<<"$page" \
    || { tail -n 20 "$work/chromium.log"; fail "chromium (getaddrinfo) http://$listed_sys/ did not show the information page"; }
page=$(browse --dump-dom "http://$unlisted/") || true
grep -qF "$clean_sentence" <<<"$page" \
    || { tail -n 20 "$work/chromium.log"; fail "chromium (getaddrinfo) http://$unlisted/ did not reach its own site"; }
pass "chromium with AsyncDns disabled (getaddrinfo): http://$listed_sys/ blocked, http://$unlisted/ reached"
features=HttpsUpgrades

# --- the browser over DNS over HTTPS ----------------------------------------------
# Chromium in secure DoH mode (its DnsOverHttpsMode and DnsOverHttpsTemplates
# policies) with Rempart's DoH listener as its only resolver, GET requests
# ({?dns} template): no fallback to the plain resolver. The policy file is
# in the namespace's own /etc/chromium (bind-mounted by `ip netns exec`
# from /etc/netns/NAME/chromium), so it never reaches the host's Chromium.
# The self-signed certificate is accepted with --ignore-certificate-errors.
mkdir -p "/etc/netns/$ns/chromium/policies/managed"
if [ -f /etc/chromium/master_preferences ]; then
    cp /etc/chromium/master_preferences "/etc/netns/$ns/chromium/"
fi
printf '{"DnsOverHttpsMode": "secure", "DnsOverHttpsTemplates": "https://%s/dns-query{?dns}"}\n' \
    "$doh_addr" > "/etc/netns/$ns/chromium/policies/managed/rempart-doh.json"
page=$(browse --ignore-certificate-errors --dump-dom "http://$listed_doh/") || true
if ! grep -qF "$info_sentence" <<<"$page"; then
    echo "$page" | head -20
    tail -n 20 "$work/chromium.log"
    fail "chromium over DoH: http://$listed_doh/ did not show the information page"
fi
page=$(browse --ignore-certificate-errors --dump-dom "http://$unlisted/") || true
grep -qF "$clean_sentence" <<<"$page" \
    || { tail -n 20 "$work/chromium.log"; fail "chromium over DoH: http://$unlisted/ did not reach its own site"; }
doh_audited() {
    grep -s "\"qname\":\"$listed_doh.\",\"qtype\":\"A\"" "$work/audit"/*.jsonl | grep -q '"transport":"doh"'
}
for _ in $(seq 1 50); do
    doh_audited && break
    sleep 0.1
done
doh_audited || fail "no audit record with transport doh for Chromium's query for $listed_doh"
pass "chromium with Rempart as its DoH server (secure mode): http://$listed_doh/ blocked and audited with transport doh, http://$unlisted/ reached"

# --- the audit trail --------------------------------------------------------------
# The redirects are written by a writer thread: give it a moment.
audited() { grep -qs "\"qname\":\"$1.\",\"qtype\":\"$2\"" "$work/audit"/*.jsonl; }
for _ in $(seq 1 50); do
    audited "$listed_sys" A && break
    sleep 0.1
done
audited "$listed_sub" A || fail "no audit record of Chromium's query for $listed_sub (did Chromium ask Rempart?)"
audited "$listed_sys" A || fail "no audit record of Chromium's getaddrinfo query for $listed_sys"
if grep -qs "$unlisted" "$work/audit"/*.jsonl; then fail "a forwarded name ($unlisted) was audited"; fi
"$bin" audit verify "$work/audit" >/dev/null || fail "rempart audit verify: the audit trail is broken"
pass "audit trail intact; Chromium's $listed_sub and $listed_sys redirects recorded, $unlisted not"

kill -0 "$rempart_pid" 2>/dev/null || fail "rempart exited during the test"
if grep -Eq ' (WARN|ERROR) ' "$work/rempart.log"; then
    say "NOTE: rempart logged warnings or errors (not a failure):"
    grep -E ' (WARN|ERROR) ' "$work/rempart.log" | sed 's/^/    /'
fi
say "PASS: all checks passed"
