#!/usr/bin/env bash
# The Debian package and the systemd unit, checked as an operator would:
#   1. build it with `cargo deb --strip` (cargo-deb installed if missing);
#   2. `dpkg-deb --contents` lists the binary, the unit, the config under
#      /etc/rempart/ (a conffile) and the documentation;
#   3. `systemd-analyze verify` passes on the unit (where systemd-analyze is
#      available);
#   4. on a machine where rempart is not installed already (a CI machine),
#      as root: `dpkg -i` creates the rempart user, gives /etc/rempart to
#      root:rempart, installs the unit (not enabled), and the binary runs;
#      `dpkg --purge` removes the user and keeps the audit trail.
# Usage: tests/package/run.sh   (prints "package: PASS ..." lines)
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { echo "package: $*"; }
fail() { say "FAIL: $*"; exit 1; }

if ! cargo deb --version >/dev/null 2>&1; then
    say "installing cargo-deb"
    cargo install cargo-deb --locked --quiet
fi
cargo deb --strip --quiet >/dev/null
deb=$(ls -t target/debian/rempart_*.deb | head -1)
say "built $deb"

contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/rempart ./usr/lib/systemd/system/rempart.service \
    ./etc/rempart/rempart.toml ./usr/share/doc/rempart/README.md \
    ./usr/share/doc/rempart/rempart.example.toml \
    ./usr/share/doc/rempart/info-page/index.html ./usr/share/doc/rempart/copyright; do
    grep -q " $path\$" <<<"$contents" || fail "$path missing from the package"
done
grep -q '^-rw-r----- .* ./etc/rempart/rempart.toml$' <<<"$contents" \
    || fail "/etc/rempart/rempart.toml should be mode 0640"
conffiles=$(dpkg-deb -f "$deb" Package >/dev/null && dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
grep -qx /etc/rempart/rempart.toml <<<"$conffiles" || fail "the config is not a conffile"
say "PASS dpkg-deb --contents lists the expected files"

if command -v systemd-analyze >/dev/null; then
    unit=$(mktemp --suffix=.service)
    # The unit names /usr/bin/rempart; point it at the binary just built.
    sed "s#/usr/bin/rempart#$(pwd)/target/release/rempart#g" examples/systemd/rempart.service > "$unit"
    mv "$unit" "$(dirname "$unit")/rempart.service"
    unit=$(dirname "$unit")/rempart.service
    if ! out=$(systemd-analyze verify "$unit" 2>&1); then
        rm -f "$unit"
        echo "$out"
        fail "systemd-analyze verify"
    fi
    rm -f "$unit"
    say "PASS systemd-analyze verify examples/systemd/rempart.service"
else
    say "SKIPPED systemd-analyze verify: systemd-analyze is not installed"
fi

if [ "$(id -u)" != 0 ]; then
    say "SKIPPED install test: needs root"
    exit 0
fi
if dpkg -s rempart >/dev/null 2>&1; then
    say "SKIPPED install test: rempart is installed on this machine already; not touching it"
    exit 0
fi
if getent passwd rempart >/dev/null; then
    say "SKIPPED install test: a rempart user exists already; not touching it"
    exit 0
fi
trap 'dpkg --purge rempart >/dev/null 2>&1 || true' EXIT
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null
getent passwd rempart >/dev/null || fail "the rempart user was not created"
[ "$(stat -c '%U:%G %a' /etc/rempart)" = "root:rempart 750" ] || fail "/etc/rempart: $(stat -c '%U:%G %a' /etc/rempart)"
[ "$(stat -c '%U:%G %a' /etc/rempart/rempart.toml)" = "root:rempart 640" ] || fail "rempart.toml: $(stat -c '%U:%G %a' /etc/rempart/rempart.toml)"
/usr/bin/rempart --version | grep -q rempart || fail "the installed binary does not run"
# The shipped config is the commented example: it names what to fill in.
if out=$(/usr/bin/rempart config check /etc/rempart/rempart.toml 2>&1); then
    fail "the example config should ask for upstream.servers"
fi
grep -q "upstream.servers" <<<"$out" || fail "config check does not name the missing key: $out"
say "PASS dpkg -i: user rempart, /etc/rempart root:rempart 0750, config 0640, binary runs"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify /usr/lib/systemd/system/rempart.service || fail "installed unit"
    say "PASS systemd-analyze verify on the installed unit"
fi
mkdir -p /var/log/rempart/audit
dpkg --purge rempart >/dev/null
trap - EXIT
getent passwd rempart >/dev/null && fail "purge left the rempart user"
[ -d /var/log/rempart/audit ] || fail "purge removed the audit trail"
rmdir /var/log/rempart/audit /var/log/rempart 2>/dev/null || true
say "PASS dpkg --purge removes the user, keeps the audit trail"
