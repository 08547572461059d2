#!/usr/bin/env bash
# An ssh:// server at an IPv6 literal (ssh://user@[::1]:PORT/path, a real
# OpenSSH sshd listening on ::1): every message names it as OpenSSH does,
# user@[::1]:PORT, never the ambiguous user@::1:PORT: the unknown host key's
# refusal, a login the server refuses ("on [::1]:PORT"), config check
# --connect; trust records it as [::1]:PORT, after which the sync works.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_ipv6
export DISTSYNC_TEST_NO_FSYNC=1
ip -6 addr show lo 2>/dev/null | grep -q "::1/128" || {
  echo "SKIP: ssh_ipv6: no ::1 on lo"
  exit 77
}
SSHD_EXTRA="ListenAddress [::1]" sshd_start "$tmp/sshd"
ds() { "$DISTSYNC" -c "$tmp/distsync.conf" "$@"; }
kh="$tmp/known_hosts"
ssh-keygen -q -t ed25519 -N '' -C stranger -f "$tmp/stranger"

mkdir -p "$tmp/store/patches" "$tmp/state" "$tmp/ta"
echo a >"$tmp/store/patches/a.txt"
# conf IDENTITY: one server at [::1]
conf() {
  cat >"$tmp/distsync.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
classes = patches

[server v6]
url = ssh://$SSHD_USER@[::1]:$SSHD_PORT$tmp/ta
identity = $1
known_hosts = $kh
agent = $DISTSYNC agent
CONF
}
conf "$SSH_KEY"
ds scan >/dev/null
where="$SSHD_USER@[::1]:$SSHD_PORT"

# 1. the unknown host key: sync and config check --connect
rc=0
ds sync v6 >"$tmp/o1" 2>&1 || rc=$?
[ "$rc" = 4 ] || bad "unknown host key: sync exit $rc, expected 4: $(cat "$tmp/o1")"
grep -qF "$where: host key unknown" "$tmp/o1" || bad "sync does not name $where: $(cat "$tmp/o1")"
rc=0
ds config check --connect v6 >"$tmp/o2" 2>&1 || rc=$?
[ "$rc" = 4 ] || bad "config check --connect: exit $rc, expected 4: $(cat "$tmp/o2")"
grep -qF "$where: host key unknown" "$tmp/o2" ||
  bad "config check --connect does not name $where: $(cat "$tmp/o2")"

# 2. trust records [::1]:PORT; the sync then works
ds trust --yes v6 >"$tmp/o3" 2>&1 || bad "trust --yes failed: $(cat "$tmp/o3")"
grep -q "^\[::1\]:$SSHD_PORT ssh-ed25519 " "$kh" || bad "trust wrote: $(cat "$kh")"
ds sync v6 >"$tmp/o4" 2>&1 || bad "sync after trust failed: $(cat "$tmp/o4")"
cmp -s "$tmp/store/patches/a.txt" "$tmp/ta/patches/a.txt" || bad "sync: content differs"

# 3. a key the server does not know: "on [::1]:PORT"
conf "$tmp/stranger"
rc=0
ds sync v6 >"$tmp/o5" 2>&1 || rc=$?
[ "$rc" = 4 ] || bad "unknown key: sync exit $rc, expected 4: $(cat "$tmp/o5")"
grep -qF "user '$SSHD_USER' on [::1]:$SSHD_PORT" "$tmp/o5" ||
  bad "the refused login does not name [::1]:$SSHD_PORT: $(cat "$tmp/o5")"

cat "$tmp/o1" "$tmp/o2" "$tmp/o4" "$tmp/o5" | grep -F "::1:$SSHD_PORT" | grep -vF "[::1]:$SSHD_PORT" &&
  bad "a message shows ::1:$SSHD_PORT without brackets"
st_exit ssh_ipv6
