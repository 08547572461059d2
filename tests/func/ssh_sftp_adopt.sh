#!/usr/bin/env bash
# SFTP mode ADOPT against a real OpenSSH sshd (red-team pass: a console
# that lost its state, or a target seeded by hand, finds the right bytes
# already there). The adopted files must be recorded with their mtime, so
# that the next run trusts the listing: libssh2 zeroes the attributes it was
# given when a SETSTAT succeeds, and the receiver recorded that 0, so every
# later run hashed every adopted file again over the link (reading it
# whole), adopted it again, and status called it "unrecorded" forever
# (exit 6). Agent mode reads the same manifest.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_sftp_adopt
sshd_start "$tmp/sshd"
sshd_known_hosts "$tmp/known_hosts"
store=$tmp/store ta=$tmp/ta
mkdir -p "$store/patches" "$store/engines" "$tmp/state" "$ta"
head -c $((4 << 20)) /dev/urandom >"$store/engines/big.bin"
for i in 1 2 3; do echo "patch $i" >"$store/patches/p$i.txt"; done
cp -r "$store/." "$ta/" # the right bytes, no manifest
server() { # NAME TRANSPORT
  printf '\n[server %s]\nurl = ssh://%s@127.0.0.1:%s%s\ntransport = %s\nidentity = %s\nknown_hosts = %s\nagent = %s\nclasses = patches engines\n' \
    "$1" "$SSHD_USER" "$SSHD_PORT" "$ta" "$2" "$SSH_KEY" "$tmp/known_hosts" "$DISTSYNC agent"
}
{
  printf '[console]\nstore = %s\nstate = %s\nclasses = patches engines\n' "$store" "$tmp/state"
  server sf sftp
  server ag agent
} >"$tmp/d.conf"
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
field() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["servers"][0][sys.argv[2]])' "$@"
}
ds scan >/dev/null 2>&1 || bad "scan"

ds sync --json sf >"$tmp/s1.json" 2>"$tmp/s1.err" || bad "first sync failed: $(cat "$tmp/s1.err")"
[ "$(field "$tmp/s1.json" adopted)" = 4 ] || bad "first sync adopted $(field "$tmp/s1.json" adopted) of 4"
st_expect_ds 0 "4 in sync" status sf
ds sync --json sf >"$tmp/s2.json" 2>"$tmp/s2.err" || bad "second sync failed: $(cat "$tmp/s2.err")"
[ "$(field "$tmp/s2.json" adopted)" = 0 ] || bad "second sync adopted $(field "$tmp/s2.json" adopted) again"
w2=$(field "$tmp/s2.json" bytes_wire)
[ "$w2" -lt 65536 ] || bad "second sync moved $w2 bytes (every adopted file hashed again?)"
# the agent reads the manifest SFTP wrote: nothing to adopt there either
st_expect_ds 0 "4 in sync" status ag
st_check_converged "$store" "$ta" "adopted over sftp"
exit $fail
