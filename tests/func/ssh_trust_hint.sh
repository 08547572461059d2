#!/usr/bin/env bash
# The command an unknown host key's refusal names acts on the configuration
# the refused command used: with -c FILE it is `distsync -c FILE trust
# SERVER` (FILE quoted for a shell when it holds a space), so pasting it
# into a shell elsewhere records the key in that configuration's
# known_hosts, not the default's; `sync`, `plan`, `status`, `verify`,
# `config check --connect` and `trust` without a terminal all say so. Without -c ($DISTSYNC_CONFIG),
# the hint stays `distsync trust SERVER`.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_trust_hint
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
conf="$tmp/my conf/distsync.conf"
ds() { "$DISTSYNC" -c "$conf" "$@"; }
kh="$tmp/known/hosts"

mkdir -p "$tmp/my conf" "$tmp/store/patches" "$tmp/state" "$tmp/ta" "$tmp/elsewhere"
echo a >"$tmp/store/patches/a.txt"
cat >"$conf" <<CONF
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
want="'distsync -c \"$conf\" trust web1'"

# 1. sync, config check --connect and trust without a terminal name -c FILE
rc=0
ds sync web1 >"$tmp/o1" 2>&1 || rc=$?
[ "$rc" = 4 ] || bad "sync: exit $rc, expected 4: $(cat "$tmp/o1")"
grep -qF "$want" "$tmp/o1" || bad "sync: the hint lacks -c FILE, want $want: $(cat "$tmp/o1")"
rc=0
ds config check --connect web1 >"$tmp/o2" 2>&1 || rc=$?
[ "$rc" = 4 ] || bad "config check --connect: exit $rc, expected 4: $(cat "$tmp/o2")"
grep -qF "$want" "$tmp/o2" || bad "config check --connect: the hint lacks -c FILE: $(cat "$tmp/o2")"
rc=0
setsid -w "$DISTSYNC" -c "$conf" trust web1 </dev/null >"$tmp/o3" 2>&1 || rc=$?
[ "$rc" = 2 ] || bad "trust without a tty: exit $rc, expected 2: $(cat "$tmp/o3")"
grep -qF "'distsync -c \"$conf\" trust web1 --yes'" "$tmp/o3" ||
  bad "trust without a tty: the hint lacks -c FILE: $(cat "$tmp/o3")"

for cmd in plan status verify; do
  ds $cmd web1 >"$tmp/o-$cmd" 2>&1 && bad "$cmd: succeeded with an unknown host key"
  grep -qF "$want" "$tmp/o-$cmd" || bad "$cmd: the hint lacks -c FILE: $(cat "$tmp/o-$cmd")"
done

# 2. the hint as printed, pasted into a shell in another directory (whose
# ./distsync.conf would be the default), records the key where the sync looks
echo "[console]" >"$tmp/elsewhere/distsync.conf"
hint=$(grep -oF "$want" "$tmp/o1" | head -1)
hint=${hint#\'distsync}
hint=${hint%\'}
(cd "$tmp/elsewhere" && eval "\"\$DISTSYNC\"$hint --yes") >"$tmp/o4" 2>&1 ||
  bad "the pasted hint failed: $(cat "$tmp/o4")"
[ -s "$kh" ] || bad "the pasted hint did not record the key in $kh: $(cat "$tmp/o4")"
ds sync web1 >"$tmp/o5" 2>&1 || bad "sync after the pasted hint failed: $(cat "$tmp/o5")"

# 3. without -c the hint is the plain command
rm -f "$kh"
rc=0
DISTSYNC_CONFIG=$conf "$DISTSYNC" sync web1 >"$tmp/o6" 2>&1 || rc=$?
[ "$rc" = 4 ] || bad "sync with \$DISTSYNC_CONFIG: exit $rc, expected 4: $(cat "$tmp/o6")"
grep -qF "'distsync trust web1'" "$tmp/o6" ||
  bad "sync with \$DISTSYNC_CONFIG: want 'distsync trust web1': $(cat "$tmp/o6")"
st_exit ssh_trust_hint
