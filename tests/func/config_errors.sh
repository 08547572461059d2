#!/usr/bin/env bash
# distsync config check: exit 0 on the example, exit 2 with one line naming
# file:line, section and key on bad files; config file precedence
# -c FILE > $DISTSYNC_CONFIG > ./distsync.conf > /etc/distsync/distsync.conf;
# with none, the error names them all (exit 2).
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
tmp=$(mktemp -d "${DS_TEST_TMP:-/tmp}/config_errors.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset DISTSYNC_CONFIG
fail=0

# expect STATUS NEEDLE ARGS...: runs distsync ARGS, checks exit status and
# that stderr+stdout contain NEEDLE.
expect() {
  local want=$1 needle=$2 out rc=0
  shift 2
  out=$("$DISTSYNC" "$@" 2>&1) || rc=$?
  if [ "$rc" != "$want" ] || [[ "$out" != *"$needle"* ]]; then
    echo "FAIL: distsync $* -> exit $rc (want $want), output:" >&2
    echo "$out" >&2
    echo "  expected to contain: $needle" >&2
    fail=1
  fi
}

# the example, with its store pointed at a directory that exists (config
# check requires the store)
mkdir -p "$tmp/store"
# its smb:// server takes its credentials from the environment
export DISTSYNC_SMB_USER=distsync DISTSYNC_SMB_PASSWORD=example
sed "s|^store = .*|store = $tmp/store|" "$DS_SRC/conf/distsync.conf" >"$tmp/example.conf"
expect 0 "3 servers, 2 schedules" -c "$tmp/example.conf" config check
expect 0 '"schedules":[{"name":"patch-tuesday"' -c "$tmp/example.conf" config check --json
expect 2 "distsync.conf:19: [console] key 'store': /srv/distsync/store: No such file or directory" \
  -c "$DS_SRC/conf/distsync.conf" config check
if command -v python3 >/dev/null; then
  "$DISTSYNC" -c "$tmp/example.conf" config check --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["servers"]) == 3, d' ||
    { echo "FAIL: --json is not valid JSON" >&2; fail=1; }
fi

printf '[console]\nstore = s\nstate = t\n\n[server paris-1]\nurl = ftp://h/x\n' >"$tmp/ftp.conf"
expect 2 "distsync: $tmp/ftp.conf:6: [server paris-1] key 'url': unsupported scheme 'ftp' (use file://, ssh:// or smb://)" \
  -c "$tmp/ftp.conf" config check

printf '[console]\nstore = s\nstate = t\n[server a]\nurl = ssh://bob:S3cretPw@h/x\n' >"$tmp/pw.conf"
expect 2 "pw.conf:5: [server a] key 'url': passwords are not allowed" -c "$tmp/pw.conf" config check
if "$DISTSYNC" -c "$tmp/pw.conf" config check 2>&1 | grep -q S3cretPw; then
  echo "FAIL: the password was echoed" >&2
  fail=1
fi

printf '[console]\nstore = s\nstate = t\n[server a]\nurl = file:///x\nsite = nowhere\n' >"$tmp/site.conf"
expect 2 "site.conf:6: [server a] key 'site': unknown site 'nowhere'" -c "$tmp/site.conf" config check

printf '[console]\nstore = s\n' >"$tmp/nostate.conf"
expect 2 "nostate.conf:1: [console]: missing required key 'state'" -c "$tmp/nostate.conf" config check

printf '[console]\nstore = s\nstate = t\nstore = u\n' >"$tmp/dup.conf"
expect 2 "dup.conf:4: [console] key 'store': duplicate key (first at line 2)" -c "$tmp/dup.conf" config check

# A typo in a key names the key it is close to (new-admin pass), timezone
# names tz; a key close to none does not guess.
printf '[console]\nstore = s\nstate = t\n[server a]\nurl = file:///x\ncreate-root = yes\n' >"$tmp/typo.conf"
expect 2 "typo.conf:6: [server a] key 'create-root': unknown key (did you mean 'create_root'? known keys: url," \
  -c "$tmp/typo.conf" config check
printf '[console]\nstore = s\nstate = t\nstate_dir = u\n' >"$tmp/typo2.conf"
expect 2 "typo2.conf:4: [console] key 'state_dir': unknown key (known keys:" -c "$tmp/typo2.conf" config check
printf '[console]\nstore = s\nstate = t\n[schedule n]\nwhen = daily 02:00\ntimezone = UTC\n' >"$tmp/typo3.conf"
expect 2 "typo3.conf:6: [schedule n] key 'timezone': unknown key (did you mean 'tz'?" -c "$tmp/typo3.conf" config check

# Exactly one line of output on error.
lines=$("$DISTSYNC" -c "$tmp/dup.conf" config check 2>&1 | wc -l || true)
[ "$lines" = 1 ] || { echo "FAIL: expected one error line, got $lines" >&2; fail=1; }

expect 2 "cannot read config $tmp/missing.conf: No such file or directory" -c "$tmp/missing.conf" config check
expect 2 "expected 'check'" -c "$tmp/dup.conf" config

# Precedence: -c FILE > $DISTSYNC_CONFIG > ./distsync.conf.
mkdir -p "$tmp/cwd/s" "$tmp/s"
printf '[console]\nstore = s\nstate = t\n[site only-cwd]\n' >"$tmp/cwd/distsync.conf"
printf '[console]\nstore = s\nstate = t\n[site a]\n[site only-env]\n' >"$tmp/env.conf"
printf '[console]\nstore = s\nstate = t\n[site a]\n[site b]\n[site only-c]\n' >"$tmp/c.conf"
cd "$tmp/cwd"
expect 0 '"name":"only-cwd"' config check --json
expect 0 "store      $tmp/cwd/s" config check
DISTSYNC_CONFIG="$tmp/env.conf" expect 0 '"name":"only-env"' config check --json
export DISTSYNC_CONFIG="$tmp/env.conf"
expect 0 '"name":"only-c"' -c "$tmp/c.conf" config check --json
unset DISTSYNC_CONFIG
rm "$tmp/cwd/distsync.conf"
if [ ! -e /etc/distsync/distsync.conf ]; then
  expect 2 "no configuration: give -c FILE, set \$DISTSYNC_CONFIG, or create ./distsync.conf or /etc/distsync/distsync.conf" config check
  for cmd in scan files status history gc "plan --all" "sync --all" "verify --all"; do
    expect 2 "no configuration: give -c FILE" $cmd
  done
fi

exit $fail
