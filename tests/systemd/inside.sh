#!/usr/bin/env bash
# The operator's walk through the shipped unit, run INSIDE the container that
# tests/systemd/run.sh boots (as the unit rempart-test.service, once the
# container's systemd has reached multi-user.target). Not meant to run on a
# real machine: it installs the package and writes /etc/rempart.
#
# Reads /in (read-only: the .deb, the config, the demo key, lists v1 to v4
# signed by the demo key, upstream.py, optionally override.service), writes
# /out/result ("PASS: ...", "FAIL: ...", "INFO: ..." lines, then "DONE"),
# /out/journal.txt and /out/security.txt, then powers the container off.
set -uo pipefail

out=/out/result
: >"$out"
say() { echo "$*" >>"$out"; }
pass() { say "PASS: $*"; }
info() { say "INFO: $*"; }
upstream_pid=""
finish() {
    # Stop what this script started, by PID (systemd's stop of this unit
    # would wait for it at poweroff).
    [ -z "$upstream_pid" ] || kill "$upstream_pid" 2>/dev/null
    journalctl --no-pager -o short-precise >/out/journal.txt 2>&1
    say DONE
    systemctl poweroff --no-block
    exit 0
}
fail() {
    say "FAIL: $*"
    systemctl status rempart --no-pager -n 0 >>/out/journal.txt 2>&1
    finish
}

listed=bad.test          # in v1, v2; removed by v3 (forwarded after the push)
added_v2=newly.test      # added by v2 (written to the list file)
added_v4=later.test      # added by v4 (written to the list file)
redirect_ip=192.0.2.80   # redirect.ipv4
upstream_ip=198.51.100.10 # what upstream.py answers for bad.test

# Asks Rempart on 127.0.0.1:53; prints dig's whole answer.
ask() { dig +time=2 +tries=1 @127.0.0.1 "$@" A 2>&1; }
# Waits up to $1 seconds for `ask $2` to show $3 in the answer section.
wait_answer() {
    local i
    for ((i = 0; i < $1 * 5; i++)); do
        ask "$2" +noall +answer | grep -q "[[:space:]]$3\$" && return 0
        sleep 0.2
    done
    return 1
}
show() { systemctl show -p "$2" --value "$1"; }
main_pid() { show rempart MainPID; }
# Lines the service logged so far (the journal of its unit).
service_log() { journalctl --no-pager -o cat -u rempart; }

# 1. The package, as an operator installs it.
if ! DEBIAN_FRONTEND=noninteractive dpkg -i /in/rempart.deb >/out/dpkg.txt 2>&1; then
    fail "dpkg -i: $(tail -n 3 /out/dpkg.txt | tr '\n' ' ')"
fi
unit=$(systemctl show -p FragmentPath --value rempart)
[ "$(realpath "$unit")" = /usr/lib/systemd/system/rempart.service ] || fail "the packaged unit is not loaded (FragmentPath=$unit)"
if [ -f /in/override.service ]; then
    # The unit under test replaces the packaged one (run.sh --unit FILE).
    install -m 0644 /in/override.service /etc/systemd/system/rempart.service
    systemctl daemon-reload
    info "unit under test: the one given with --unit (instead of the packaged one)"
fi
pass "dpkg -i installs the package and its unit"

# 2. The configuration: the demo key and list (v1), an admin token, the
#    redirect; DNS on port 53 (CAP_NET_BIND_SERVICE), upstream.py on 5300.
install -o root -g rempart -m 0640 /in/rempart.toml /in/demo.pub /etc/rempart/
install -o root -g rempart -m 0640 /in/v1.txt /etc/rempart/list.txt
install -o root -g rempart -m 0640 /in/v1.txt.minisig /etc/rempart/list.txt.minisig
# Owned by the service user and readable by it alone.
install -o rempart -g rempart -m 0400 /in/admin.token /etc/rempart/admin.token
python3 /in/upstream.py 127.0.0.1 5300 "$listed=$upstream_ip" >/out/upstream.txt 2>&1 &
upstream_pid=$!

# 3. Start: Type=notify, so `systemctl start` returns once READY=1 is sent
#    (the DNS sockets serve and the list is in force).
if ! timeout 60 systemctl start rempart; then
    fail "systemctl start rempart failed: $(show rempart Result), $(show rempart ExecMainCode)/$(show rempart ExecMainStatus); $(service_log | tail -n 3 | tr '\n' ' ')"
fi
[ "$(show rempart ActiveState)" = active ] || fail "not active after start: $(show rempart ActiveState)"
pid=$(main_pid)
status=$(show rempart StatusText)
grep -q 2026112201 <<<"$status" || fail "STATUS= does not name the serial: $status"
pass "systemctl start: active (READY=1), status \"$status\""

# The sandbox is the unit's: seccomp filter, no new privileges, and only
# CAP_NET_BIND_SERVICE (bit 10) left, as user rempart.
proc=$(cat "/proc/$pid/status")
grep -q '^Seccomp:[[:space:]]*2$' <<<"$proc" || fail "no seccomp filter on the main process"
grep -q '^NoNewPrivs:[[:space:]]*1$' <<<"$proc" || fail "NoNewPrivs is not set"
grep -q '^CapEff:[[:space:]]*0000000000000400$' <<<"$proc" || fail "effective capabilities: $(grep CapEff <<<"$proc")"
[ "$(stat -c %U "/proc/$pid")" = rempart ] || fail "runs as $(stat -c %U "/proc/$pid")"
pass "sandbox in force: user rempart, seccomp filter, NoNewPrivs, only CAP_NET_BIND_SERVICE"

# 4. A listed name is redirected, over UDP and TCP.
wait_answer 5 "$listed" "$redirect_ip" || fail "$listed not redirected: $(ask "$listed" +short)"
ask "$listed" +tcp +noall +answer | grep -q "[[:space:]]$redirect_ip\$" || fail "$listed not redirected over TCP"
pass "dig $listed: $redirect_ip over UDP and TCP"

# 5. A new signed list written over the file (the signature first) is
#    applied by the watcher.
install -o root -g rempart -m 0640 /in/v2.txt.minisig /etc/rempart/list.txt.minisig
install -o root -g rempart -m 0640 /in/v2.txt /etc/rempart/list.txt
wait_answer 15 "$added_v2" "$redirect_ip" || fail "the list written to the file was not applied: $(service_log | tail -n 2 | tr '\n' ' ')"
pass "list file rewritten: serial 2026112202 applied, $added_v2 redirected"

# 6. `rempart list push` with the admin token: v3 delists bad.test, which
#    is then forwarded to upstream.py.
push=$(rempart list push --url http://127.0.0.1:9153 --token-file /etc/rempart/admin.token /in/v3.txt 2>&1) \
    || fail "rempart list push: $push"
[ "$push" = "applied serial 2026112203" ] || fail "rempart list push said: $push"
wait_answer 5 "$listed" "$upstream_ip" || fail "$listed still not forwarded after the push: $(ask "$listed" +short)"
pass "rempart list push: \"$push\"; $listed delisted, now forwarded ($upstream_ip)"

# 7. Another list on file (v4), then `systemctl reload` (SIGHUP).
install -o root -g rempart -m 0640 /in/v4.txt.minisig /etc/rempart/list.txt.minisig
install -o root -g rempart -m 0640 /in/v4.txt /etc/rempart/list.txt
wait_answer 15 "$added_v4" "$redirect_ip" || fail "v4 written to the file was not applied"
# Counts the service's log lines matching $1.
count() { service_log | grep -c -- "$1"; }
requested=$(count 'list reload requested.*SIGHUP')
unchanged=$(count 'list unchanged.*2026112204')
systemctl reload rempart || fail "systemctl reload rempart failed"
for ((i = 0; i < 50; i++)); do
    [ "$(count 'list reload requested.*SIGHUP')" -gt "$requested" ] \
        && [ "$(count 'list unchanged.*2026112204')" -gt "$unchanged" ] && break
    sleep 0.2
done
[ "$i" -lt 50 ] || fail "SIGHUP: no \"list reload requested\" then \"list unchanged\" in the journal"
[ "$(main_pid)" = "$pid" ] || fail "the main process changed on reload ($pid -> $(main_pid))"
[ "$(show rempart ActiveState)" = active ] || fail "not active after reload"
wait_answer 2 "$added_v4" "$redirect_ip" || fail "$added_v4 not redirected after the reload"
metrics=$(exec 3<>/dev/tcp/127.0.0.1/9153 && printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && cat <&3)
grep -q '^rempart_list_serial{list="main"} 2026112204' <<<"$metrics" || fail "/metrics does not show serial 2026112204"
pass "systemctl reload (SIGHUP): reload logged, same process, serial 2026112204 in force (/metrics)"

# 8. Stop: SIGTERM, exit 0, no restart, no SIGSYS, no core dump.
timeout 30 systemctl stop rempart || fail "systemctl stop rempart failed"
# Killed by SIGTERM would also be a "success" for systemd, with status 15.
result="$(show rempart Result) $(show rempart ExecMainStatus)"
[ "$result" = "success 0" ] || fail "stop: Result, ExecMainStatus = $result"
service_log | grep -q 'INFO.* stopped$' || fail "stop: no \"stopped\" in the journal"
restarts=$(show rempart NRestarts)
[ "$restarts" = 0 ] || fail "NRestarts=$restarts"
if journalctl --no-pager -o cat | grep -E 'SIGSYS|status=31|core-dump|code=dumped|Dumped core'; then
    fail "the journal shows a SIGSYS or a core dump"
fi
pass "systemctl stop: exit 0, NRestarts=0, no SIGSYS or core dump in the journal"

# 9. The audit trail, written under the sandbox, is intact.
if ! verify=$(rempart audit verify /var/log/rempart/audit 2>&1); then
    fail "rempart audit verify: $verify"
fi
grep -q '"kind":"redirect"' /var/log/rempart/audit/*.jsonl || fail "no redirect record in the audit trail"
pass "audit trail in /var/log/rempart/audit: $(head -n 1 <<<"$verify")"

# 10. The exposure systemd computes for the unit: no higher than the
#     README's figure, 1.5 (threshold 15 on systemd's 0-100 scale).
exposure=0
systemd-analyze security --no-pager --threshold=15 rempart.service >/out/security.txt 2>&1 || exposure=$?
info "$(grep -o 'Overall exposure level.*' /out/security.txt)"
[ "$exposure" = 0 ] || fail "systemd-analyze security: exposure above 1.5, the README's figure (see out/security.txt)"
finish
