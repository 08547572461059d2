#!/usr/bin/env bash
# A target's .distsync/manifest (the files it holds, their names and
# hashes: the distribution server's own state, which its endpoints never
# read) is mode 0600 whichever way it was written: by the agent over SSH,
# by SFTP mode (real OpenSSH sshd), by the local receiver; the session's
# lease file too. Before, the agent wrote 0644 (its umask 022 on 0644) and
# SFTP 0600, so a web server or share that serves the tree served the
# manifest of agent-mode servers only. A manifest left 0644 by an older
# version is 0600 after the next sync that changes it.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_manifest_mode
export DISTSYNC_TEST_NO_FSYNC=1
umask 022 # as a login shell's: the agent's and sshd's
sshd_start "$tmp/sshd"
ds() { "$DISTSYNC" -c "$tmp/distsync.conf" "$@"; }
sshd_known_hosts "$tmp/known_hosts"

mkdir -p "$tmp/store/patches" "$tmp/state" "$tmp/tag" "$tmp/tsf" "$tmp/tlo"
echo a >"$tmp/store/patches/a.txt"
server() { # NAME ROOT TRANSPORT
  printf '\n[server %s]\nurl = ssh://%s@127.0.0.1:%s%s\ntransport = %s\nidentity = %s\nknown_hosts = %s\nagent = %s agent\n' \
    "$1" "$SSHD_USER" "$SSHD_PORT" "$2" "$3" "$SSH_KEY" "$tmp/known_hosts" "$DISTSYNC"
}
{
  printf '[console]\nstore = %s\nstate = %s\nclasses = patches\n' "$tmp/store" "$tmp/state"
  server ag "$tmp/tag" agent
  server sf "$tmp/tsf" sftp
  printf '\n[server lo]\nurl = file://%s\n' "$tmp/tlo"
} >"$tmp/distsync.conf"
ds scan >/dev/null
ds sync --all >"$tmp/o1" 2>&1 || bad "sync failed: $(cat "$tmp/o1")"

# modes NAME: each server's manifest (and lease, when one is left) is 0600
modes() {
  local t f
  for t in tag tsf tlo; do
    f="$tmp/$t/.distsync/manifest"
    [ -f "$f" ] || { bad "$1: $t: no manifest"; continue; }
    [ "$(stat -c %a "$f")" = 600 ] || bad "$1: $t: manifest mode $(stat -c %a "$f"), want 600"
    f="$tmp/$t/.distsync/lease"
    [ ! -f "$f" ] || [ "$(stat -c %a "$f")" = 600 ] ||
      bad "$1: $t: lease mode $(stat -c %a "$f"), want 600"
  done
}
modes "first sync"

# a manifest an older version left 0644 is replaced 0600 by the next change
chmod 644 "$tmp/tag/.distsync/manifest" "$tmp/tsf/.distsync/manifest" "$tmp/tlo/.distsync/manifest" || bad "no manifest to chmod"
echo b >"$tmp/store/patches/b.txt"
ds scan >/dev/null
ds sync --all >"$tmp/o2" 2>&1 || bad "second sync failed: $(cat "$tmp/o2")"
modes "after a change"
st_exit ssh_manifest_mode
