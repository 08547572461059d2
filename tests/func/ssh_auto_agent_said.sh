#!/usr/bin/env bash
# transport = auto against a real OpenSSH sshd, where the agent is
# installed but exits before answering (found by the new-admin pass: the
# target root not created yet): the agent says why on its stderr and auto
# falls back to SFTP, which then fails on the same root in its own words
# ("No such file or directory (SFTP status 2)"). The error must say that
# SFTP was used because the agent exited, and what the agent said, or the
# admin never learns the agent ran at all. A flooding or binary stderr
# costs a bounded line (printable bytes, the first line).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_auto_agent_said
sshd_start "$tmp/sshd"
sshd_known_hosts "$tmp/known_hosts"
store=$tmp/store
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
server() { # NAME ROOT AGENT
  printf '\n[server %s]\nurl = ssh://%s@127.0.0.1:%s%s\nidentity = %s\nknown_hosts = %s\nagent = %s\nclasses = patches\n' \
    "$1" "$SSHD_USER" "$SSHD_PORT" "$2" "$SSH_KEY" "$tmp/known_hosts" "$3"
}
# an "agent" that writes a long line (control bytes, then 6,000 printable
# ones) on stderr, then a second line, then exits 3
noisy=$tmp/noisy-agent
printf '#!/bin/sh\nprintf "ctl\\033[31m\\007 " >&2\nhead -c 4500 /dev/urandom | base64 -w0 >&2; echo >&2; echo second line >&2; exit 3\n' >"$noisy"
chmod +x "$noisy"
mkdir -p "$tmp/state" "$store/patches" "$tmp/t-noisy"
echo x >"$store/patches/a.bin"
{
  printf '[console]\nstore = %s\nstate = %s\n' "$store" "$tmp/state"
  server fresh "$tmp/t-fresh" "$DISTSYNC agent" # the root is not made
  server noisy "$tmp/t-noisy" "$noisy"
} >"$tmp/d.conf"
ds scan >/dev/null 2>&1 || bad "scan"

st_expect_ds 4 "target root $tmp/t-fresh" sync fresh
out=$(ds sync fresh 2>&1)
[[ $out == *"SFTP mode after transport = auto"* ]] ||
  bad "a missing root: the error does not say SFTP was a fallback: $out"
[[ $out == *"exit status 1, it said: distsync: agent: target root $tmp/t-fresh: No such file or directory"* ]] ||
  bad "a missing root: the error lacks what the agent said: $out"

# the fallback works for a root that exists; the event carries the bounded line
ds sync noisy >"$tmp/out" 2>&1 || bad "noisy agent: SFTP fallback failed: $(cat "$tmp/out")"
ds history --events noisy >"$tmp/ev" 2>&1
line=$(grep -a -o "exit status 3, it said: [^)]*" "$tmp/ev" | head -1)
[ -n "$line" ] || bad "noisy agent: the event lacks what it said: $(grep -a -i sftp "$tmp/ev" | head -c 400)"
# "exit status 3, it said: " and at most 159 bytes of the line
[ "${#line}" -le $((24 + 159)) ] || bad "noisy agent: what it said is not bounded (${#line} bytes)"
[[ $line == *"it said: ctl?[31m? "* ]] || bad "noisy agent: control bytes not replaced: $line"
[[ $line == *"second line"* ]] && bad "noisy agent: more than its first line kept"
exit $fail
