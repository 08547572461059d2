#!/usr/bin/env bash
# The ssh:// keys of [server NAME] through `distsync config check`: a valid
# ssh:// server with every key passes, transport = sftp with verify =
# readback too; local is refused on ssh://, sftp/auto and the ssh-only keys
# (verify included) on file://, an unknown verify value, timeout and
# io_timeout together: each error names file:line, server and key (exit 2).
# create_root = yes on an ssh:// server is accepted with a warning that it
# has no effect there (new-admin pass: it was silently ignored, and the
# first sync failed on the missing root); on file:// no warning.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
st_init config_ssh
mkdir -p "$tmp/store" "$tmp/home/.ssh"
# identity = ~/... is expanded with $HOME, and config check reads the key
export HOME=$tmp/home
ssh-keygen -q -t ed25519 -N '' -f "$HOME/.ssh/id_ed25519" </dev/null >/dev/null

# expect STATUS NEEDLE BODY: a config with BODY after a [console] section
expect() {
  local want=$1 needle=$2 out rc=0
  printf '[console]\nstore = %s\nstate = %s/state\n%b' "$tmp/store" "$tmp" "$3" >"$tmp/c.conf"
  out=$("$DISTSYNC" -c "$tmp/c.conf" config check 2>&1) || rc=$?
  if [ "$rc" != "$want" ] || [[ "$out" != *"$needle"* ]]; then
    bad "config check -> exit $rc (want $want), output: $out (expected: $needle)"
  fi
}
ssh='[server a]\nurl = ssh://bob@h.example:2222/srv/d\n'
expect 0 "1 server" "$ssh"'transport = agent\nagent = /opt/ds/distsync agent\nidentity = ~/.ssh/id_ed25519\nknown_hosts = kh\nconnect_timeout = 10s\nio_timeout = 5m\n'
expect 0 "1 server" "$ssh"'transport = auto\n'
expect 0 "1 server" "$ssh"'transport = sftp\nverify = readback\n'
expect 2 "c.conf:6: [server a] key 'verify': expected size or readback, got 'sha'" "$ssh"'verify = sha\n'
expect 2 "c.conf:6: [server a] key 'transport': 'local' does not apply to an ssh:// server" "$ssh"'transport = local\n'
expect 2 "c.conf:6: [server a] key 'transport': expected local or agent (file://), agent, sftp or auto (ssh://), got 'scp'" "$ssh"'transport = scp\n'
expect 2 "c.conf:6: [server a] key 'connect_timeout': expected a duration" "$ssh"'connect_timeout = 0\n'
expect 2 "c.conf:7: [server a] key 'io_timeout': the inactivity timeout is already set at line 6" "$ssh"'timeout = 1m\nio_timeout = 2m\n'
file='[server f]\nurl = file:///srv/f\n'
expect 2 "c.conf:6: [server f] key 'transport': 'auto' applies to ssh:// servers only" "$file"'transport = auto\n'
expect 2 "c.conf:7: [server f] key 'known_hosts': applies to ssh:// servers only" "$file"'prune = yes\nknown_hosts = /k\n'
expect 2 "c.conf:6: [server f] key 'identity': applies to ssh:// servers only" "$file"'identity = /k\n'
expect 2 "c.conf:6: [server f] key 'verify': applies to ssh:// and smb:// servers only" "$file"'verify = size\n'
# a password in the URL: refused, pointing at identity = (it spoke of a
# credential file, an SMB-ism, and said nothing of keys)
expect 2 "c.conf:5: [server a] key 'url': passwords are not allowed in URLs; remove it (an ssh:// server logs in with identity = KEYFILE or ssh-agent)" '[server a]\nurl = ssh://bob:hunter2@h.example/srv/d\n'
expect 0 "warning: $tmp/c.conf:4: [server a] create_root = yes has no effect on this server" "$ssh"'create_root = yes\n'
out=$(printf '[console]\nstore = %s\nstate = %s/state\n[server f]\nurl = file:///srv/f\ncreate_root = yes\n' "$tmp/store" "$tmp" >"$tmp/c.conf" && "$DISTSYNC" -c "$tmp/c.conf" config check 2>&1) ||
  bad "create_root on file://: $out"
[[ $out == *create_root* ]] && bad "create_root on file:// is warned about: $out"
st_exit config_ssh
