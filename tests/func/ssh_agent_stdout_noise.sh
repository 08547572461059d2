#!/usr/bin/env bash
# New-admin pass: an account whose shell writes to stdout before the agent
# runs (a chatty startup file, a banner; here a wrapper script that prints
# one line, then execs the real agent, behind a real OpenSSH sshd). The
# console said only "invalid frame header from the target" (agent) or "did
# not answer as a distsync agent (exit status 0)" (auto), which names
# nothing to fix. Both now quote the start of that output and ask whether
# a startup file writes to stdout. auto still falls back to SFTP and the
# sync converges; nothing is written by the failed agent-mode run.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_agent_stdout_noise
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
sshd_known_hosts "$tmp/known_hosts"
mkdir -p "$tmp/store/patches" "$tmp/state" "$tmp/ta" "$tmp/tu"
head -c 50000 /dev/urandom >"$tmp/store/patches/a.bin"
cat >"$tmp/chatty" <<SH
#!/bin/sh
echo 'Welcome to edge7, last login: Mon'
exec $DISTSYNC agent "\$@"
SH
chmod +x "$tmp/chatty"
cat >"$tmp/d.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
classes = patches

[server ag]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$tmp/ta
transport = agent
agent = $tmp/chatty
identity = $SSH_KEY
known_hosts = $tmp/known_hosts

[server au]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$tmp/tu
transport = auto
agent = $tmp/chatty
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan"

st_expect_ds 4 "its first bytes are not the protocol: 'Welcome to edge7, last login: Mon" sync ag
out=$(ds sync ag 2>&1)
[[ $out == *"startup file"* ]] || bad "agent mode: no hint at a startup file: $out"
[ -z "$(ls -A "$tmp/ta/patches" 2>/dev/null)" ] || bad "agent mode wrote files"

ds config check --connect >"$tmp/cc" 2>&1
grep -q "au: ok .*its output began 'Welcome to edge7, last login: Mon.*startup file" "$tmp/cc" ||
  bad "auto: config check --connect does not quote the output: $(grep 'au:' "$tmp/cc")"
ds sync au >"$tmp/o" 2>&1 || bad "auto: the SFTP fallback failed: $(cat "$tmp/o")"
st_check_converged "$tmp/store" "$tmp/tu" "auto after the fallback"
ds history --events au >"$tmp/h" 2>&1
grep -q "its output began 'Welcome to edge7" "$tmp/h" || bad "auto: the run's events do not quote the output"
exit $fail
