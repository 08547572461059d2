#!/usr/bin/env bash
# Host keys of ssh:// servers against a real OpenSSH sshd: an unknown key
# is refused with its SHA256 fingerprint (as ssh-keygen -l prints it) and
# the command that trusts it; `distsync trust` without a terminal refuses,
# with --yes records a line OpenSSH's own ssh accepts; the sync then works;
# hashed entries (ssh-keygen -H) and [127.0.0.1]:PORT entries both match;
# an ed25519 entry still matches when the server also offers ECDSA (the
# method preference from known_hosts); a changed key is refused by sync and
# by trust, naming both fingerprints.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_hostkey
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
ds() { "$DISTSYNC" -c "$tmp/distsync.conf" "$@"; }
kh="$tmp/known/hosts"
fp=$(sshd_fp "$SSHD_HOSTKEY.pub")

mkdir -p "$tmp/store/patches" "$tmp/state" "$tmp/ta"
head -c 100000 /dev/urandom >"$tmp/store/patches/a.bin"
cat >"$tmp/distsync.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
classes = patches

[server web1]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$tmp/ta
identity = $SSH_KEY
known_hosts = $kh
agent = $DISTSYNC agent
CONF
ds scan >/dev/null

# 1. unknown: refused, exit 4, fingerprint and the command named
rc=0
ds sync web1 >"$tmp/o1" 2>&1 || rc=$?
[ "$rc" = 4 ] || bad "unknown host key: sync exit $rc, expected 4: $(cat "$tmp/o1")"
grep -qF "$fp" "$tmp/o1" || bad "unknown host key: fingerprint $fp not shown: $(cat "$tmp/o1")"
grep -qF "distsync -c $tmp/distsync.conf trust web1" "$tmp/o1" ||
  bad "unknown host key: 'distsync -c FILE trust web1' not named"
[ -z "$(ls -A "$tmp/ta")" ] || bad "unknown host key: something was written to the target"

# 2. trust without a terminal refuses; --yes records
rc=0
setsid -w "$DISTSYNC" -c "$tmp/distsync.conf" trust web1 </dev/null >"$tmp/o2" 2>&1 || rc=$?
[ "$rc" = 2 ] || bad "trust without a tty: exit $rc, expected 2: $(cat "$tmp/o2")"
grep -qF "$fp" "$tmp/o2" || bad "trust does not show the fingerprint: $(cat "$tmp/o2")"
[ ! -e "$kh" ] || bad "trust without a tty wrote $kh"
ds trust --yes web1 >"$tmp/o3" 2>&1 || bad "trust --yes failed: $(cat "$tmp/o3")"
[ "$(stat -c %a "$kh")" = 600 ] || bad "known_hosts created with mode $(stat -c %a "$kh")"
ds trust --yes web1 >"$tmp/o4" 2>&1 || bad "trust of a known key failed: $(cat "$tmp/o4")"
grep -q "already" "$tmp/o4" || bad "trust of a known key: $(cat "$tmp/o4")"
[ "$(wc -l <"$kh")" = 1 ] || bad "trust twice wrote $(wc -l <"$kh") lines"
# a real-life file: comments, markers and key types libssh2 does not know
# are skipped, not fatal; a last line without newline is not glued to ours
mv "$kh" "$tmp/kh.ours"
{
  printf '# comment\n\n@cert-authority *.example.org %s\n' "$(cut -d' ' -f1,2 "$SSH_KEY.pub")"
  printf 'old.example.org sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t\n'
  printf 'other.example.org %s' "$(cut -d' ' -f1,2 "$SSH_KEY.pub")"
} >"$kh"
ds trust --yes web1 >"$tmp/o3b" 2>&1 || bad "trust with a real-life file failed: $(cat "$tmp/o3b")"
grep -q "^other.example.org ssh-ed25519 [A-Za-z0-9+/=]*\$" "$kh" || bad "trust glued its line to the last one: $(cat "$kh")"
ds sync web1 >"$tmp/o3c" 2>&1 || bad "sync with a real-life known_hosts failed: $(cat "$tmp/o3c")"
mv "$tmp/kh.ours" "$kh"
# OpenSSH itself accepts the line we wrote (strict checking, our file only)
ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$kh" \
  -o GlobalKnownHostsFile=/dev/null -i "$SSH_KEY" -p "$SSHD_PORT" "$SSHD_USER@127.0.0.1" true \
  2>"$tmp/ssh.err" || bad "OpenSSH ssh refuses the known_hosts line: $(cat "$tmp/ssh.err")"
ds sync web1 >"$tmp/o5" 2>&1 || bad "sync after trust failed: $(cat "$tmp/o5")"
cmp -s "$tmp/store/patches/a.bin" "$tmp/ta/patches/a.bin" || bad "sync after trust: content differs"

# 3. a hashed entry
ssh-keygen -q -H -f "$kh" >/dev/null 2>&1
rm -f "$kh.old"
grep -q '^|1|' "$kh" || bad "ssh-keygen -H did not hash the entry"
ds sync web1 >"$tmp/o6" 2>&1 || bad "sync with a hashed entry failed: $(cat "$tmp/o6")"

# 4. the server offers ECDSA too; the ed25519 entry ([host]:port, plain)
# must still match: the preference comes from known_hosts
ssh-keygen -q -t ecdsa -N '' -f "$tmp/sshd/host_ecdsa"
sshd_restart "$tmp/sshd/host_ecdsa"
: >"$kh"
sshd_known_hosts "$kh"
ds sync web1 >"$tmp/o7" 2>&1 || bad "ed25519 entry with an ECDSA-offering server: $(cat "$tmp/o7")"
# and an ECDSA-only entry negotiates ECDSA
echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$tmp/sshd/host_ecdsa.pub")" >"$kh"
ds sync web1 >"$tmp/o8" 2>&1 || bad "ECDSA entry: $(cat "$tmp/o8")"

# 5. a changed key: refused loudly, both fingerprints; trust refuses too
: >"$kh"
sshd_known_hosts "$kh"
rm -f "$SSHD_HOSTKEY" "$SSHD_HOSTKEY.pub"
ssh-keygen -q -t ed25519 -N '' -f "$SSHD_HOSTKEY"
sshd_restart
newfp=$(sshd_fp "$SSHD_HOSTKEY.pub")
[ "$newfp" != "$fp" ] || bad "the new host key has the old fingerprint"
echo changed >"$tmp/store/patches/b.txt"
ds scan >/dev/null
rc=0
ds sync web1 >"$tmp/o9" 2>&1 || rc=$?
[ "$rc" = 4 ] || bad "changed host key: sync exit $rc, expected 4: $(cat "$tmp/o9")"
grep -q "CHANGED" "$tmp/o9" || bad "changed host key not said loudly: $(cat "$tmp/o9")"
grep -qF "$fp" "$tmp/o9" || bad "changed host key: old fingerprint missing: $(cat "$tmp/o9")"
grep -qF "$newfp" "$tmp/o9" || bad "changed host key: new fingerprint missing: $(cat "$tmp/o9")"
[ ! -e "$tmp/ta/patches/b.txt" ] || bad "changed host key: the sync wrote to the target"
rc=0
ds trust --yes web1 >"$tmp/o10" 2>&1 || rc=$?
[ "$rc" = 4 ] || bad "trust of a changed key: exit $rc, expected 4: $(cat "$tmp/o10")"
grep -qF "$newfp" "$tmp/o10" || bad "trust of a changed key: $(cat "$tmp/o10")"
[ "$(wc -l <"$kh")" = 1 ] || bad "trust of a changed key wrote to known_hosts"
st_exit ssh_hostkey
