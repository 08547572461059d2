#!/usr/bin/env bash
# Issue 10: `config check` catches a store that does not exist, a target
# inside the store or the state directory, two servers with the same URL
# (trailing slashes aside), and treats " # ..." after a value as a comment
# (as inih already does for " ; ..."): the URL does not swallow it. A target
# inside the store through a symlink, before it exists, is caught, and every
# command that opens a target refuses it too.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
tmp=$(mktemp -d "${DS_TEST_TMP:-/tmp}/config_check_paths.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset DISTSYNC_CONFIG
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
mkdir -p "$tmp/store" "$tmp/state"

# check NAME RC NEEDLE SERVERS...: the config [console] + SERVERS (printf
# text) gives exit RC and output containing NEEDLE
check() {
  local name=$1 want=$2 needle=$3 out rc=0
  shift 3
  { printf '[console]\nstore = %s\nstate = %s\n' "${STORE:-$tmp/store}" "$tmp/state"; printf "$@"; } \
    >"$tmp/$name.conf"
  out=$("$DISTSYNC" -c "$tmp/$name.conf" config check --json 2>&1) || rc=$?
  [ "$rc" = "$want" ] || bad "$name: exit $rc, want $want: $out"
  [[ "$out" == *"$needle"* ]] || bad "$name: output lacks '$needle': $out"
}

check ok 0 '"url":"file:///tmp/x"' '[server a]\nurl = file:///tmp/x\n'
STORE=$tmp/nostore check nostore 2 \
  "nostore.conf:2: [console] key 'store': $tmp/nostore: No such file or directory" \
  '[server a]\nurl = file:///tmp/x\n'
printf 'not a folder\n' >"$tmp/afile"
STORE=$tmp/afile check storefile 2 "storefile.conf:2: [console] key 'store': $tmp/afile: not a directory" \
  '[server a]\nurl = file:///tmp/x\n'
check instore 2 "instore.conf:5: [server a] key 'url': target $tmp/store/t is inside the store" \
  '[server a]\nurl = file://%s\n' "$tmp/store/t"
check isstore 2 "[server a] key 'url': target $tmp/store is inside the store" \
  '[server a]\nurl = file://%s/\n' "$tmp/store"
check instate 2 "instate.conf:5: [server a] key 'url': target $tmp/state/x is inside the state directory" \
  '[server a]\nurl = file://%s/x\n' "$tmp/state"
check sameurl 2 "sameurl.conf:8: [server b] key 'url': same target as [server a] (line 5)" \
  '[server a]\nurl = file:///tmp/t1\n\n[server b]\nurl = file:///tmp/t1//\n'
check samessh 2 "[server b] key 'url': same target as [server a]" \
  '[server a]\nurl = ssh://u@h/d\n\n[server b]\nurl = ssh://u@h/d/\n'
check hash 0 '"url":"file:///tmp/x"' '[server a]\nurl = file:///tmp/x  # the paris mirror\n'
check semi 0 '"url":"file:///tmp/x"' '[server a]\nurl = file:///tmp/x\t; the paris mirror\n'
check hashin 0 '"url":"file:///tmp/x#1"' '[server a]\nurl = file:///tmp/x#1\n'

# through a symlink, to a target that does not exist yet (create_root): it
# is where it will be written that counts
mkdir -p "$tmp/store/patches"
echo p >"$tmp/store/patches/a.msu"
ln -s "$tmp/store" "$tmp/lnk"
check symnew 2 "[server a] key 'url': target $tmp/store/patches/new is inside the store" \
  '[server a]\nurl = file://%s/patches/new\ncreate_root = yes\n' "$tmp/lnk"
# and sync, plan, status and verify refuse it too, without config check:
# the store is never synced into itself
for cmd in sync plan status verify; do
  rc=0
  out=$("$DISTSYNC" -c "$tmp/symnew.conf" "$cmd" a 2>&1) || rc=$?
  [ "$rc" != 0 ] || bad "$cmd on a target inside the store exited 0: $out"
  [[ "$out" == *"is inside the store"* ]] || bad "$cmd: no 'inside the store' error: $out"
done
[ ! -e "$tmp/store/patches/new" ] || bad "a command created the target inside the store"
[ "$(find "$tmp/store" -type f | wc -l)" = 1 ] || bad "the store changed: $(find "$tmp/store" -type f)"
exit $fail
