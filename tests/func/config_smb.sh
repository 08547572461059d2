#!/usr/bin/env bash
# The smb:// keys of [server NAME] through `distsync config check`:
# credentials = FILE (username=, password=, domain= lines; mode 0600, a
# 0644 file is refused naming the file and its mode), or the environment
# (DISTSYNC_SMB_USER, DISTSYNC_SMB_PASSWORD); encrypt = yes|no; verify and
# connect_timeout apply to smb:// too; credentials and encrypt apply to
# smb:// only; every error names file:line, the server and the key; the
# password is never printed (text, --json, errors).
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
st_init config_smb
unset DISTSYNC_SMB_USER DISTSYNC_SMB_PASSWORD DISTSYNC_SMB_DOMAIN
pw="Pw-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
mkdir -p "$tmp/store"

# conf URL KEY-LINES...: one server "lyon-1" (line 5 is its url)
conf() {
  local url=$1
  shift
  {
    printf '[console]\nstore = %s\nstate = %s\n[server lyon-1]\nurl = %s\n' "$tmp/store" \
      "$tmp/state" "$url"
    for l in "$@"; do printf '%s\n' "$l"; done
  } >"$tmp/t.conf"
}
# expect STATUS NEEDLE: config check (text), exit status and output
expect() {
  local want=$1 needle=$2 out rc=0
  out=$("$DISTSYNC" -c "$tmp/t.conf" config check ${JSON:+--json} 2>&1) || rc=$?
  if [ "$rc" != "$want" ] || [[ "$out" != *"$needle"* ]]; then
    bad "config check -> exit $rc (want $want): $out (expected: $needle)"
  fi
  [[ "$out" != *"$pw"* ]] || bad "the password is in the output: $out"
}
url=smb://127.0.0.1:4450/dist/content
cred=$tmp/lyon.cred
printf 'username = distsync\npassword=%s\n# a comment\n\ndomain=LYON\n' "$pw" >"$cred"

chmod 600 "$cred"
conf "$url" "credentials = $cred" "encrypt = yes" "verify = readback" "connect_timeout = 10s"
expect 0 "1 server,"
JSON=1 expect 0 "\"credentials\":\"$cred\",\"encrypt\":true,\"verify\":\"readback\""

chmod 400 "$cred"
expect 0 "1 server,"
chmod 644 "$cred"
expect 2 "t.conf:6: [server lyon-1] key 'credentials': credentials file $cred has mode 0644, must be 0600 (readable by its owner only): run chmod 600 $cred"
chmod 640 "$cred"
expect 2 "credentials file $cred has mode 0640, must be 0600"
chmod 600 "$cred"

conf "$url" "credentials = $tmp/absent.cred"
expect 2 "t.conf:6: [server lyon-1] key 'credentials': credentials file $tmp/absent.cred: No such file or directory"
mkdir "$tmp/dir.cred" && chmod 700 "$tmp/dir.cred"
conf "$url" "credentials = $tmp/dir.cred"
expect 2 "credentials file $tmp/dir.cred: not a regular file"

# the file's own lines: errors name the line, never the text
bad_cred() {
  (umask 077 && printf '%b' "$1" >"$tmp/b.cred")
  conf "$url" "credentials = $tmp/b.cred"
  expect 2 "t.conf:6: [server lyon-1] key 'credentials': $tmp/b.cred$2"
}
bad_cred "username=u\n$pw\n" ":2: expected key=value (keys: username, password, domain)"
bad_cred "username=u\n$pw=x\n" ":2: unknown key (keys: username, password, domain)"
bad_cred "username=u\n" ": missing password= line"
bad_cred "password=$pw\n" ": missing username= line"
bad_cred "username=\npassword=$pw\n" ":1: key 'username' is empty"
bad_cred "username=u\npassword=$pw\npassword=q\n" ":3: key 'password' is set twice"
bad_cred "username=u\npassword=$pw\0\n" ": holds a NUL byte (not a text file)"

# no file: the environment
conf "$url"
expect 2 "t.conf:4: [server lyon-1]: no credentials (DISTSYNC_SMB_USER is not set): set credentials = FILE, or DISTSYNC_SMB_USER and DISTSYNC_SMB_PASSWORD in the environment"
DISTSYNC_SMB_USER=distsync expect 2 "no credentials (DISTSYNC_SMB_PASSWORD is not set)"
DISTSYNC_SMB_USER=distsync DISTSYNC_SMB_PASSWORD=$pw expect 0 "1 server,"
DISTSYNC_SMB_USER=distsync DISTSYNC_SMB_PASSWORD=$pw JSON=1 expect 0 '"credentials":null,"encrypt":false,"verify":"size"'

# keys and schemes
conf "$url" "credentials = $cred" "encrypt = maybe"
expect 2 "t.conf:7: [server lyon-1] key 'encrypt'"
conf "file://$tmp/ta" "credentials = $cred"
expect 2 "t.conf:6: [server lyon-1] key 'credentials': applies to smb:// servers only"
conf "ssh://u@h/x" "encrypt = yes"
expect 2 "t.conf:6: [server lyon-1] key 'encrypt': applies to smb:// servers only"
conf "$url" "credentials = $cred" "identity = $tmp/id"
expect 2 "t.conf:7: [server lyon-1] key 'identity': applies to ssh:// servers only"
conf "file://$tmp/ta" "verify = readback"
expect 2 "t.conf:6: [server lyon-1] key 'verify': applies to ssh:// and smb:// servers only"
conf "$url" "credentials = $cred" "connections = 17"
expect 2 "t.conf:7: [server lyon-1] key 'connections': expected a number from 1 to 16, got '17'"
conf "$url" "credentials = $cred" "connections = 0"
expect 2 "t.conf:7: [server lyon-1] key 'connections': expected a number from 1 to 16, got '0'"
conf "$url" "credentials = $cred" "connections = 16"
JSON=1 expect 0 '"verify":"size","connections":16'
conf "$url" "credentials = $cred"
JSON=1 expect 0 '"verify":"size","connections":4'
conf "file://$tmp/ta" "connections = 2"
expect 2 "t.conf:6: [server lyon-1] key 'connections': applies to smb:// servers only"
conf "file://$tmp/ta" "connect_timeout = 5s"
expect 2 "t.conf:6: [server lyon-1] key 'connect_timeout': applies to ssh:// and smb:// servers only"
st_exit config_smb
