#!/usr/bin/env bash
# Logging in to ssh:// servers (real OpenSSH sshd): a key the server does
# not know and a user without that key fail with exit 4 (a server failure,
# as for any other) and a message naming the server and the user; an RSA
# identity is refused up front with what to do (libssh2 1.10 cannot sign
# rsa-sha2); the keys of ssh-agent work when identity = is absent; a
# missing agent command is named; no message shows key material.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_auth
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
agent_pid=""
trap 'sshd_stop; [ -z "$agent_pid" ] || kill "$agent_pid" 2>/dev/null; st_cleanup; [ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"' EXIT
ds() { "$DISTSYNC" -c "$tmp/distsync.conf" "$@"; }

mkdir -p "$tmp/store/patches" "$tmp/state" "$tmp/ta"
head -c 50000 /dev/urandom >"$tmp/store/patches/a.bin"
sshd_known_hosts "$tmp/known_hosts"
ssh-keygen -q -t ed25519 -N '' -C stranger -f "$tmp/stranger"
ssh-keygen -q -t rsa -b 2048 -N '' -C rsa-key -f "$tmp/rsa"
ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -C rsa-pem -f "$tmp/rsa_pem"
cat "$tmp/rsa.pub" >>"$tmp/sshd/authorized_keys.$SSHD_USER"

# conf USER IDENTITY [AGENT]: one server "edge" (no identity = when empty)
conf() {
  {
    printf '[console]\nstore = %s\nstate = %s\nclasses = patches\n\n' "$tmp/store" "$tmp/state"
    printf '[server edge]\nurl = ssh://%s@127.0.0.1:%s%s\ntransport = agent\n' "$1" "$SSHD_PORT" "$tmp/ta"
    [ -z "$2" ] || printf 'identity = %s\n' "$2"
    printf 'known_hosts = %s\nagent = %s\n' "$tmp/known_hosts" "${3:-$DISTSYNC agent}"
  } >"$tmp/distsync.conf"
}
# refused WHAT PATTERN...: the sync fails with exit 4 and names each pattern
refused() {
  local what=$1 rc=0
  shift
  ds sync edge >"$tmp/out" 2>&1 || rc=$?
  [ "$rc" = 4 ] || bad "$what: exit $rc, expected 4: $(cat "$tmp/out")"
  for p in "$@"; do
    grep -qF -- "$p" "$tmp/out" || bad "$what: message lacks '$p': $(cat "$tmp/out")"
  done
  if grep -qE 'PRIVATE KEY|AAAA' "$tmp/out"; then bad "$what: key material in the message"; fi
}
ds_scan() { ds scan >/dev/null; }

conf "$SSHD_USER" "$tmp/stranger"
ds_scan
refused "wrong key" "server edge" "user '$SSHD_USER'" "$tmp/stranger" "refused"
conf nobody "$SSH_KEY"
refused "wrong user" "server edge" "user 'nobody'"
conf "$SSHD_USER" "$tmp/rsa"
refused "RSA key (OpenSSH format)" "server edge" "RSA" "ed25519"
conf "$SSHD_USER" "$tmp/rsa_pem"
refused "RSA key (PEM)" "server edge" "RSA" "ed25519"
conf "$SSHD_USER" "$tmp/missing_key"
refused "missing identity file" "server edge" "$tmp/missing_key"
conf "$SSHD_USER" "$SSH_KEY" "/nonexistent/distsync agent"
refused "missing agent command" "server edge" "not found"
[ -z "$(ls -A "$tmp/ta")" ] || bad "a refused login wrote to the target"

# no identity =: the keys of ssh-agent (an RSA key in it is skipped)
conf "$SSHD_USER" ""
env -u SSH_AUTH_SOCK "$DISTSYNC" -c "$tmp/distsync.conf" sync edge >"$tmp/out" 2>&1 && bad "no agent, no identity: sync succeeded"
grep -qF "SSH_AUTH_SOCK" "$tmp/out" || bad "no agent, no identity: $(cat "$tmp/out")"
# a socket that is gone (an ssh-agent that ended): its path and why, not
# libssh2's bare "failed connecting with agent" (red team)
SSH_AUTH_SOCK=$tmp/gone.sock "$DISTSYNC" -c "$tmp/distsync.conf" sync edge >"$tmp/out" 2>&1 &&
  bad "a gone agent socket: sync succeeded"
grep -qF "SSH_AUTH_SOCK $tmp/gone.sock: No such file or directory" "$tmp/out" ||
  bad "a gone agent socket: $(cat "$tmp/out")"
eval "$(ssh-agent -s)" >/dev/null
agent_pid=$SSH_AGENT_PID
ssh-add -q "$tmp/rsa" 2>/dev/null
refused "ssh-agent with only an RSA key" "server edge" "RSA"
ssh-add -q "$SSH_KEY" 2>/dev/null
ds sync edge >"$tmp/out" 2>&1 || bad "sync through ssh-agent failed: $(cat "$tmp/out")"
cmp -s "$tmp/store/patches/a.bin" "$tmp/ta/patches/a.bin" || bad "ssh-agent sync: content differs"
st_exit ssh_auth
