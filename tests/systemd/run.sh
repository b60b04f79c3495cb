#!/usr/bin/env bash
# The shipped systemd unit under a real systemd, with its own sandboxing and
# seccomp filter: `systemd-analyze verify` cannot see a filter that kills
# the resolver, only running it can.
#
# Boots a container with `systemd-nspawn --boot` on a tree of this test's
# own: a minimal /etc, a copy of the host's dpkg database, and the host's
# /usr under an overlay (the host's /usr is never written; the package's
# files land in the overlay's upper directory). Loopback only
# (--private-network). In it, tests/systemd/inside.sh runs as a unit once
# the container's systemd is up:
#   1. `dpkg -i` the package built by `cargo deb --strip`;
#   2. /etc/rempart: a config (DNS on 127.0.0.1:53, admin token), the demo
#      key, the demo list; tests/e2e/upstream.py as the upstream;
#   3. `systemctl start rempart` returns active (Type=notify: READY=1), and
#      the process has the seccomp filter, NoNewPrivs and only
#      CAP_NET_BIND_SERVICE;
#   4. dig: a listed name is redirected (UDP, TCP);
#   5. a new signed list written to the file is applied (a name it adds is
#      redirected);
#   6. `rempart list push` with the admin token applies a list that delists
#      a name, which is then forwarded;
#   7. `systemctl reload` (SIGHUP) is logged and handled by the same
#      process, /metrics shows the serial in force;
#   8. `systemctl stop` exits 0; NRestarts=0; no SIGSYS and no core dump in
#      the journal;
#   9. `rempart audit verify` on the trail written under the sandbox;
#  10. `systemd-analyze security rempart.service`: exposure at most 1.5,
#      the README's figure (printed as INFO).
# Each step prints "systemd: PASS: ..." or stops at "systemd: FAIL: ...".
#
# Usage (root): tests/systemd/run.sh [--unit FILE]
#   --unit FILE        test FILE instead of the packaged unit (to show that a
#                      broken unit fails the test)
#   REMPART_DEB        the package to test (default: built with cargo deb)
#   SYSTEMD_TEST_KEEP=1  keep the work directory (console log, journal)
# Bounded: the container is given 150 s, then stopped (by its PID).
# Exit 0 when every step passes (or, without root, after "SKIPPED");
# non-zero otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

say() { echo "systemd: $*"; }
skip() { say "SKIPPED: $*"; exit 0; }
work=""
keep=${SYSTEMD_TEST_KEEP:-}
fail() {
    say "FAIL: $*"
    keep=1
    exit 1
}

unit=""
while [ $# -gt 0 ]; do
    case $1 in
        --unit) unit=$(realpath "$2"); shift 2 ;;
        *) echo "usage: $0 [--unit FILE]" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || skip "needs root (systemd-nspawn)"
command -v systemd-nspawn >/dev/null || fail "systemd-nspawn is missing (Debian: systemd-container)"
for tool in dig python3 dpkg-deb adduser; do
    command -v "$tool" >/dev/null || fail "$tool is missing (Debian: dnsutils, python3, dpkg, adduser)"
done
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null \
    || fail "the kernel has no overlayfs (needed to install into the container's /usr)"
for dir in bin sbin lib; do
    [ -L "/$dir" ] || fail "/$dir is not a symlink into /usr: the container borrows /usr only"
done

cleanup() {
    [ -n "$work" ] || return 0
    if [ -n "$keep" ]; then
        say "work directory kept: $work (console.log, out/journal.txt)"
        return 0
    fi
    # Never delete through a mount left behind (the host's /usr is lower
    # in the container's overlay).
    if awk -v w="$work" 'index($5, w) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
        say "work directory still has mounts, not removed: $work"
        return 0
    fi
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT
work=$(mktemp -d /tmp/rempart-systemd.XXXXXX)
tree=$work/tree in=$work/in out=$work/out
mkdir -p "$tree" "$in" "$out" "$work/usr-upper"

# The package, and its own binary to sign the test lists.
deb=${REMPART_DEB:-}
if [ -z "$deb" ]; then
    if ! cargo deb --version >/dev/null 2>&1; then
        say "installing cargo-deb"
        cargo install cargo-deb --locked --quiet
    fi
    cargo deb --strip --quiet >/dev/null
    deb=$(ls -t target/debian/rempart_*.deb | head -1)
fi
cp "$deb" "$in/rempart.deb"
dpkg-deb -x "$deb" "$work/pkg"
rempart=$work/pkg/usr/bin/rempart
say "testing $deb${unit:+ with the unit $unit}"

# Lists v1 (the demo list) to v4, each signed by the demo key:
#   v2 adds newly.test, v3 removes bad.test, v4 adds later.test.
cp config/demo/demo.pub "$in/"
cp config/demo/list.txt "$in/v1.txt"
cp config/demo/list.txt.minisig "$in/v1.txt.minisig"
entry() { printf '%s\tsubtree\tterrorism\t%s\t2026-11-22\n' "$1" "$2"; }
{ sed 's/^serial: .*/serial: 2026112202/' "$in/v1.txt"; entry newly.test DEMO-2026-0005; } >"$in/v2.txt"
sed -e 's/^serial: .*/serial: 2026112203/' -e '/^bad\.test\t/d' "$in/v2.txt" >"$in/v3.txt"
{ sed 's/^serial: .*/serial: 2026112204/' "$in/v3.txt"; entry later.test DEMO-2026-0006; } >"$in/v4.txt"
for v in v2 v3 v4; do
    "$rempart" list sign --secret-key config/demo/demo.key "$in/$v.txt" >/dev/null
done
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$in/admin.token"
cat >"$in/rempart.toml" <<'EOF'
# The systemd test's resolver: port 53 (CAP_NET_BIND_SERVICE), the demo key
# and list, upstream.py on 5300, the package's state and audit directories.
[server]
listen = ["127.0.0.1:53"]

[upstream]
servers = ["127.0.0.1:5300"]
timeout_ms = 500

[list]
path = "/etc/rempart/list.txt"
trusted_keys = ["/etc/rempart/demo.pub"]

[audit]
client_ip = "truncate"

[admin]
token_file = "/etc/rempart/admin.token"

[redirect]
ipv4 = ["192.0.2.80"]
EOF
install -m 0755 tests/systemd/inside.sh "$in/inside.sh"
cp tests/e2e/upstream.py "$in/"
[ -z "$unit" ] || cp "$unit" "$in/override.service"

# The container's own root: /usr comes from the host (overlay), the rest is
# made here, with the host's dpkg database so that the package's
# dependencies are seen as installed (they are: same /usr).
cd "$tree"
mkdir -p etc/systemd/system/multi-user.target.wants var/lib var/log var/tmp \
    tmp root run proc sys dev usr in out
chmod 1777 tmp var/tmp
for dir in bin sbin lib lib32 lib64 libx32; do
    [ -L "/$dir" ] && cp -P "/$dir" "$dir"
done
cp /usr/lib/os-release etc/os-release
: >etc/machine-id
echo rempart-test >etc/hostname
printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' >etc/group
printf 'root:*:19000:0:99999:7:::\n' >etc/shadow
printf 'root:*::\n' >etc/gshadow
chmod 0640 etc/shadow etc/gshadow
printf 'passwd: files systemd\ngroup: files systemd\nshadow: files\nhosts: files\n' >etc/nsswitch.conf
printf '127.0.0.1 localhost\n::1 localhost\n' >etc/hosts
printf 'nameserver 127.0.0.1\n' >etc/resolv.conf
# What adduser, and chfn under it, read (configuration, no secrets).
for f in adduser.conf deluser.conf login.defs; do
    [ -f "/etc/$f" ] && cp "/etc/$f" etc/
done
cp -r /etc/pam.d etc/
# Commands such as awk are /etc/alternatives links into /usr.
cp -a /etc/alternatives etc/
cp -a /var/lib/dpkg var/lib/dpkg
# The host's overrides name the host's users, unknown here; and a rempart
# installed on the host must not be seen in the container (it would be an
# upgrade, without the conffile).
: >"$tree/var/lib/dpkg/statoverride"
awk 'BEGIN { RS = ""; ORS = "\n\n" } !/^Package: rempart\n/' /var/lib/dpkg/status >"$tree/var/lib/dpkg/status"
rm -f "$tree"/var/lib/dpkg/info/rempart.*
ln -s /usr/lib/systemd/system/multi-user.target etc/systemd/system/default.target
ln -s /dev/null etc/systemd/system/console-getty.service
cat >etc/systemd/system/rempart-test.service <<'EOF'
[Unit]
Description=Rempart's systemd test (tests/systemd/inside.sh)
After=multi-user.target
SuccessAction=poweroff
FailureAction=poweroff

[Service]
Type=oneshot
ExecStart=/in/inside.sh
TimeoutStartSec=120
StandardOutput=journal+console
StandardError=journal+console
EOF
ln -s ../rempart-test.service etc/systemd/system/multi-user.target.wants/
cd "$repo"

# Boot, without registering with machined (--register=no): a CI machine
# may not run it. Where the host runs systemd and D-Bus, nspawn asks it for
# a scope of the container's own; elsewhere (a CI container, no systemd)
# the container stays in this script's cgroup (--keep-unit).
scope=(--keep-unit)
if [ -d /run/systemd/system ] && [ -S /run/dbus/system_bus_socket ]; then
    scope=()
fi
rc=0
timeout --kill-after=10 150 systemd-nspawn --quiet --boot --directory="$tree" \
    --machine="rempart-test-$$" --register=no "${scope[@]}" --private-network \
    --overlay=/usr:"$work/usr-upper":/usr \
    --bind-ro="$in":/in --bind="$out":/out \
    >"$work/console.log" 2>&1 </dev/null || rc=$?
[ "$rc" != 124 ] && [ "$rc" != 137 ] || say "the container did not stop within 150 s: stopped"

if [ ! -s "$out/result" ]; then
    sed 's/\x1b\[[0-9;]*m//g' "$work/console.log" | tail -n 30 | sed 's/^/    /'
    fail "the container did not run the test (systemd-nspawn exit $rc; its console above)"
fi
failed=""
while IFS= read -r line; do
    case $line in
        DONE) ;;
        FAIL:*) failed=1; say "$line" ;;
        *) say "$line" ;;
    esac
done <"$out/result"
if [ -n "$failed" ]; then
    say "last lines of the container's journal:"
    tail -n 25 "$out/journal.txt" | sed 's/^/    /'
    keep=1
    exit 1
fi
grep -qx DONE "$out/result" || fail "the test stopped before its end (systemd-nspawn exit $rc)"
