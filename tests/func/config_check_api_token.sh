#!/usr/bin/env bash
# `config check` refuses an api_token_file the daemon would refuse (missing,
# readable by others, a symlink, empty) and one whose token is shorter than
# 16 characters or with a blank at either end (as it does for a rollout's
# token_file; the daemon reads it with the same function), naming
# file:line: [console] key 'api_token_file' and exiting 2; a good one passes.
# Before, `config check` said "valid" and `distsync daemon` then refused to
# start (or served a 5-character bearer token over TCP).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
tmp=$(mktemp -d "${DS_TEST_TMP:-/tmp}/config_check_api_token.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset DISTSYNC_CONFIG
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
mkdir -p "$tmp/store" "$tmp/state" "$tmp/srv"
cat >"$tmp/d.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
listen = 127.0.0.1:1
api_token_file = $tmp/tok

[server a]
url = file://$tmp/srv
CONF

# check NAME RC NEEDLE: config check's exit status and output for $tmp/tok as it is now
check() {
  local out rc=0
  out=$("$DISTSYNC" -c "$tmp/d.conf" config check 2>&1) || rc=$?
  [ "$rc" = "$2" ] || bad "$1: exit $rc, want $2: $out"
  [[ "$out" == *"$3"* ]] || bad "$1: output lacks '$3': $out"
}
key="d.conf:5: [console] key 'api_token_file': $tmp/tok"
check missing 2 "$key: No such file or directory"
(umask 077 && echo 0123456789abcdef0123 >"$tmp/tok")
check good 0 "valid"
chmod 644 "$tmp/tok"
check mode 2 "$key: mode 0644, group or others may use it (chmod 600 it)"
chmod 600 "$tmp/tok"
ln -s "$tmp/tok" "$tmp/link"
sed -i "s#^api_token_file = .*#api_token_file = $tmp/link#" "$tmp/d.conf"
check symlink 2 "d.conf:5: [console] key 'api_token_file': $tmp/link: "
sed -i "s#^api_token_file = .*#api_token_file = $tmp/tok#" "$tmp/d.conf"
(umask 077 && printf '\n' >"$tmp/tok")
check empty 2 "$key: the token is shorter than 16 characters"
(umask 077 && echo short >"$tmp/tok")
check short 2 "$key: the token is shorter than 16 characters"
(umask 077 && echo " 0123456789abcdef0123" >"$tmp/tok")
check blank 2 "$key: the token begins or ends with a blank (a bearer token cannot)"
[ "$fail" = 0 ] && echo "PASS: config_check_api_token" || echo "FAILED: config_check_api_token"
exit "$fail"
