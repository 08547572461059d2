#!/usr/bin/env bash
# ssh:// servers in SFTP mode (transport = sftp) against a real OpenSSH
# sshd (tests/func/lib/sshd.bash, `Subsystem sftp internal-sftp`): the store
# arrives byte for byte, a rerun moves nothing, an update goes whole (only
# the changed file), prune deletes; plan, status and history work; the
# run's events say SFTP mode and `mv -f`; the manifest is the agent's (an
# agent-mode sync afterwards finds everything in sync); a symlinked parent
# directory or .distsync on the server is refused and nothing is written
# outside the root; verify = readback catches an upload corrupted on the
# server (test hook) and the old file stays; the lease holds: a valid lease
# of another console makes the sync BUSY, an expired one is taken over, and
# of two consoles racing for the server exactly one syncs; a hostile
# server's 1 GiB lease and 2 GiB manifest cost bounded memory.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_sftp_sync
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
ds() { "$DISTSYNC" -c "$tmp/distsync.conf" "$@"; }
field() {
  python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print([s for s in d["servers"] if s["server"]==sys.argv[2]][0][sys.argv[3]])' "$@"
}

mkdir -p "$tmp/store/patches/sub/deep" "$tmp/store/engines" "$tmp/state"
head -c $((12 << 20)) /dev/urandom >"$tmp/store/engines/big.bin"
head -c 300000 /dev/urandom >"$tmp/store/patches/sub/deep/a.bin"
printf 'hello\n' >"$tmp/store/patches/b.txt"
printf 'quote\n' >"$tmp/store/patches/it's.txt"
: >"$tmp/store/patches/empty"
sshd_known_hosts "$tmp/known_hosts"
ta="$tmp/t a"
server() { # NAME ROOT [extra lines]
  printf '\n[server %s]\nurl = ssh://%s@127.0.0.1:%s%s\ntransport = sftp\nidentity = %s\nknown_hosts = %s\nagent = %s agent\nprune = yes\n%s\n' \
    "$1" "$SSHD_USER" "$SSHD_PORT" "$2" "$SSH_KEY" "$tmp/known_hosts" "$DISTSYNC" "${3:-}"
}
{
  printf '[console]\nstore = %s\nstate = %s\nclasses = patches engines\n' "$tmp/store" "$tmp/state"
  server a "$ta"
} >"$tmp/distsync.conf"
mkdir -p "$ta"

ds config check >/dev/null || bad "config check refused transport = sftp"
ds scan >/dev/null
ds plan a >"$tmp/plan0" 2>&1 || bad "plan over sftp failed: $(cat "$tmp/plan0")"
grep -q "create engines/big.bin.*whole" "$tmp/plan0" || bad "plan: $(head -5 "$tmp/plan0")"
ds sync --json a >"$tmp/s1.json" 2>"$tmp/s1.err" || bad "first sync failed: $(cat "$tmp/s1.err")"
st_check_converged "$tmp/store" "$ta" "first sftp sync"
[ "$(field "$tmp/s1.json" a created)" = 5 ] || bad "first sync created $(field "$tmp/s1.json" a created) of 5"
w1=$(field "$tmp/s1.json" a bytes_wire)
[ "$w1" -gt $((12 << 20)) ] || bad "first sync: $w1 wire bytes < the 12 MiB sent"
[ -s "$ta/.distsync/manifest" ] || bad "no manifest on the server"
ds history --events a >"$tmp/ev1" 2>&1
grep -q "SFTP mode (transport = sftp).*mv -f" "$tmp/ev1" || bad "no SFTP/mv -f event: $(grep -i sftp "$tmp/ev1")"

# a rerun moves nothing
ds sync --json a >"$tmp/s2.json" 2>"$tmp/s2.err" || bad "rerun failed: $(cat "$tmp/s2.err")"
for k in created updated adopted deleted; do
  [ "$(field "$tmp/s2.json" a $k)" = 0 ] || bad "rerun: $k = $(field "$tmp/s2.json" a $k)"
done
w2=$(field "$tmp/s2.json" a bytes_wire)
[ "$w2" -lt 65536 ] || bad "a rerun with nothing to do moved $w2 bytes"
ds status a >"$tmp/status1" 2>&1 || bad "status after the sync exits $?: $(cat "$tmp/status1")"
grep -q "5 in sync" "$tmp/status1" || bad "status: $(cat "$tmp/status1")"

# an update: only that file moves, whole; prune deletes over SFTP
printf 'hello again\n' >"$tmp/store/patches/b.txt"
rm "$tmp/store/patches/empty"
ds scan >/dev/null
ds sync --force --json a >"$tmp/s3.json" 2>"$tmp/s3.err" || bad "update failed: $(cat "$tmp/s3.err")"
st_check_converged "$tmp/store" "$ta" "update"
[ "$(field "$tmp/s3.json" a updated)" = 1 ] || bad "update: updated = $(field "$tmp/s3.json" a updated)"
[ "$(field "$tmp/s3.json" a deleted)" = 1 ] || bad "prune: deleted = $(field "$tmp/s3.json" a deleted)"
w3=$(field "$tmp/s3.json" a bytes_wire)
[ "$w3" -lt $((1 << 20)) ] || bad "a 12-byte update moved $w3 bytes (more than the changed file)"

# the manifest is the agent's: an agent-mode sync finds everything in sync
sed 's/^transport = sftp$/transport = agent/' "$tmp/distsync.conf" >"$tmp/agent.conf"
"$DISTSYNC" -c "$tmp/agent.conf" sync --json a >"$tmp/s4.json" 2>"$tmp/s4.err" ||
  bad "agent sync after sftp failed: $(cat "$tmp/s4.err")"
for k in created updated adopted; do
  [ "$(field "$tmp/s4.json" a $k)" = 0 ] || bad "agent after sftp: $k = $(field "$tmp/s4.json" a $k)"
done

# symlink escapes on the server: a symlinked parent directory, a symlinked
# .distsync; nothing lands outside the root
mkdir -p "$tmp/outside" "$tmp/tl"
ln -s "$tmp/outside" "$tmp/tl/patches"
mkdir -p "$tmp/tm" "$tmp/outside2"
ln -s "$tmp/outside2" "$tmp/tm/.distsync"
server l "$tmp/tl" >>"$tmp/distsync.conf"
server m "$tmp/tm" >>"$tmp/distsync.conf"
rc=0
ds sync l >"$tmp/s5.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || bad "a symlinked parent directory was not refused"
grep -q "symlink" "$tmp/s5.out" || bad "symlinked parent: no message says symlink: $(head -c 400 "$tmp/s5.out")"
[ -z "$(ls -A "$tmp/outside")" ] || bad "files written through the symlink: $(ls -A "$tmp/outside")"
rc=0
ds sync m >"$tmp/s6.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || bad "a symlinked .distsync was not refused"
grep -q "symlink" "$tmp/s6.out" || bad "symlinked .distsync: $(head -c 400 "$tmp/s6.out")"
[ -z "$(ls -A "$tmp/outside2")" ] || bad "state written through the symlink: $(ls -A "$tmp/outside2")"

# verify = readback catches an upload corrupted on the server
mkdir -p "$tmp/tr"
server r "$tmp/tr" "verify = readback" >>"$tmp/distsync.conf"
ds sync r >/dev/null 2>&1 || bad "first sync of r failed"
cp "$tmp/tr/patches/sub/deep/a.bin" "$tmp/a.before"
head -c 300000 /dev/urandom >"$tmp/store/patches/sub/deep/a.bin"
ds scan >/dev/null
if ds version | grep -q "test hooks: on"; then
  rc=0
  DISTSYNC_TEST_SFTP_CORRUPT=patches/sub/deep/a.bin ds sync r >"$tmp/s7.out" 2>&1 || rc=$?
  [ "$rc" != 0 ] || bad "verify = readback did not catch the corrupted upload"
  grep -q "readback" "$tmp/s7.out" || bad "readback failure not named: $(head -c 400 "$tmp/s7.out")"
  cmp -s "$tmp/a.before" "$tmp/tr/patches/sub/deep/a.bin" || bad "a corrupted upload replaced the old file"
  # verify = size catches a corruption only when the size differs: this one passes
  rc=0
  DISTSYNC_TEST_SFTP_CORRUPT=patches/sub/deep/a.bin ds sync a >"$tmp/s8.out" 2>&1 || rc=$?
  [ "$rc" = 0 ] || bad "verify = size failed a same-size upload: $(head -c 300 "$tmp/s8.out")"
else
  echo "note: not a DS_TEST_HOOKS build: the readback corruption check is skipped"
fi
ds sync r >/dev/null 2>&1 || bad "sync of r without the hook failed"
st_check_converged "$tmp/store" "$tmp/tr" "readback after the hook"

# the lease: another console's valid lease is BUSY, an expired one is taken over
lease() { # EXPIRY
  printf 'distsync-lease 1\nconsole other-console\npid 4242\nhost elsewhere\nsession 00000000000000aa\nexpiry %s\nflock 0\n' "$1" >"$ta/.distsync/lease"
}
lease $(($(date +%s) + 3600))
rc=0
ds sync a >"$tmp/s9.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || bad "a valid lease of another console did not stop the sync"
grep -q "other-console" "$tmp/s9.out" || bad "busy: the holder is not named: $(head -c 300 "$tmp/s9.out")"
lease $(($(date +%s) - 10))
ds sync a >"$tmp/s10.out" 2>&1 || bad "an expired lease was not taken over: $(head -c 300 "$tmp/s10.out")"
[ ! -e "$ta/.distsync/lease" ] || bad "the lease was not released: $(cat "$ta/.distsync/lease")"

# a hostile server: a 1 GiB lease file is refused after 4 KiB; a 2 GiB
# manifest that is no manifest is set aside (as the agent does) and the
# files are adopted, with the console's memory bounded all along
truncate -s 1G "$ta/.distsync/lease"
rc=0
/usr/bin/time -f %M -o "$tmp/rss1" "$DISTSYNC" -c "$tmp/distsync.conf" sync a >"$tmp/s11.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || bad "a 1 GiB lease file was accepted"
grep -q "larger than 4096 bytes" "$tmp/s11.out" || bad "huge lease: $(head -c 300 "$tmp/s11.out")"
rss=$(tail -1 "$tmp/rss1")
[ "$rss" -lt 131072 ] || bad "huge lease: console peak RSS $rss KiB"
rm "$ta/.distsync/lease"
{ printf 'DSMANIF\n\0\0\0\1\0\0\0\0\0\0\1\0\0\0\0\0'; } >"$ta/.distsync/manifest"
truncate -s 2G "$ta/.distsync/manifest"
/usr/bin/time -f %M -o "$tmp/rss2" "$DISTSYNC" -c "$tmp/distsync.conf" sync --json a >"$tmp/s12.json" 2>"$tmp/s12.err" ||
  bad "sync after a 2 GiB bogus manifest failed: $(head -c 300 "$tmp/s12.err")"
rss=$(tail -1 "$tmp/rss2")
[ "$rss" -lt 131072 ] || bad "huge manifest: console peak RSS $rss KiB"
echo "peak RSS with a 2 GiB bogus manifest: $rss KiB"
[ -e "$ta/.distsync/manifest.corrupt" ] || bad "the bogus manifest was not set aside"
st_check_converged "$tmp/store" "$ta" "after a bogus manifest"
rm -f "$ta/.distsync/manifest.corrupt"

# two consoles race for one server (slow enough to overlap): one syncs, one is busy
mkdir -p "$tmp/tx" "$tmp/state2"
server x "$tmp/tx" "bandwidth = 8MB" >>"$tmp/distsync.conf"
sed "s|^state = .*|state = $tmp/state2|" "$tmp/distsync.conf" >"$tmp/other.conf"
"$DISTSYNC" -c "$tmp/other.conf" scan >/dev/null 2>&1
ds sync x >"$tmp/r1.out" 2>&1 &
p1=$!
"$DISTSYNC" -c "$tmp/other.conf" sync x >"$tmp/r2.out" 2>&1 &
p2=$!
st_pids+=("$p1" "$p2")
rc1=0 rc2=0
wait "$p1" || rc1=$?
wait "$p2" || rc2=$?
if [ "$rc1" = 0 ] && [ "$rc2" = 0 ]; then
  bad "two consoles both synced the same server at once"
elif [ "$rc1" != 0 ] && [ "$rc2" != 0 ]; then
  bad "neither console synced: $(head -c 300 "$tmp/r1.out") / $(head -c 300 "$tmp/r2.out")"
else
  grep -q "being synced by console" "$tmp/r1.out" "$tmp/r2.out" || # no pipe: grep -q's early exit
    # would fail cat with SIGPIPE, and pipefail the check
    bad "the loser does not say busy: $(cat "$tmp/r1.out" "$tmp/r2.out" | head -c 400)"
fi
st_check_converged "$tmp/store" "$tmp/tx" "the race's winner"
ds history >/dev/null || bad "history failed"
st_exit ssh_sftp_sync
