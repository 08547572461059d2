#!/usr/bin/env bash
# A cached sync pipelines LEASE, MANIFEST_GET and LIST behind HELLO when
# the catalog records that the server's agent spoke version 4 or later:
# what happens when the agent on the server is no longer that one, behind
# a real sshd, for transport = auto (a) and transport = agent (b). The
# agent command is a wrapper whose behaviour a file switches:
#  - an older real agent (DISTSYNC_TEST_MAX_PROTOCOL=3): it refuses the
#    pipelined HELLO (versions 4..6) and acts on nothing after it (a stale
#    .distsync/tmp/ds-*.part, which a granted LEASE removes, is still there
#    when that agent has exited); the run starts over at once without
#    pipelining and converges at version 3, as on the code before (one
#    agent call there, two here, the first one refused);
#  - a busy lease (another console holds it): exit 5 naming the holder,
#    nothing written, as before;
#  - a command that prints an error and exits: auto falls back to SFTP and
#    converges, agent fails naming what it said, as before; no lease is
#    left on either target, and b's recorded version is forgotten (the
#    next run asks HELLO alone);
#  - a command that never answers, with auto: the probe, which wrote the
#    LEASE with HELLO, times out and the run fails without trying SFTP
#    beside an agent that may still take the lease; the next run asks
#    HELLO alone and falls back to SFTP as before.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_pipeline_refused
sshd_start "$tmp/sshd"
sshd_known_hosts "$tmp/known_hosts"
store=$tmp/store
mkdir -p "$store/patches" "$tmp/state" "$tmp/ta" "$tmp/tb"
for i in 1 2 3; do head -c 20000 /dev/urandom >"$store/patches/f$i.bin"; done
# the agent command: MODE from $tmp/mode (real, v3, error, mute); each call
# appends "call MODE: stale part kept|gone" for its root once it exits
cat >"$tmp/agent" <<EOF
#!/bin/sh
mode=\$(cat "$tmp/mode")
root=\$2
case \$mode in
real) "$DISTSYNC" agent "\$@"; rc=\$? ;;
v3) # one call at a time: a refused call's check runs before the next call's LEASE
  exec 9>"\$root.wrap"; flock 9
  DISTSYNC_TEST_MAX_PROTOCOL=3 "$DISTSYNC" agent "\$@" 9>&-; rc=\$? ;;
error) echo "distsync-agent: broken install, see the admin" >&2; rc=1 ;;
mute) exec sleep 10 ;;
esac
if [ -e "\$root/.distsync/tmp/ds-stale.part" ]; then s=kept; else s=gone; fi
echo "call \$mode: stale part \$s" >>"\$root.calls"
exit \$rc
EOF
chmod +x "$tmp/agent"
echo real >"$tmp/mode"
{
  printf '[console]\nstore = %s\nstate = %s\nclasses = patches\n' "$store" "$tmp/state"
  for s in a:auto b:agent; do
    printf '\n[server %s]\nurl = ssh://%s@127.0.0.1:%s%s\nidentity = %s\nknown_hosts = %s\n' \
      "${s%%:*}" "$SSHD_USER" "$SSHD_PORT" "$tmp/t${s%%:*}" "$SSH_KEY" "$tmp/known_hosts"
    printf 'agent = %s\ntransport = %s\nio_timeout = 3s\n' "$tmp/agent" "${s##*:}"
  done
} >"$tmp/d.conf"
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
# recorded SERVER: the protocol version the catalog records for SERVER
recorded() {
  python3 - "$tmp/state" "$1" <<'PY'
import glob, sqlite3, sys
for db in glob.glob(sys.argv[1] + "/*.db"):
    try:
        r = sqlite3.connect(db).execute("SELECT value FROM meta WHERE key = ?", ("protocol:" + sys.argv[2],)).fetchone()
    except sqlite3.Error:
        continue
    print(r[0] if r else 0)
    break
PY
}
# update: one file changed, so each run has something to send
n=0
update() {
  n=$((n + 1))
  printf 'update %s\n' "$n" | dd of="$store/patches/f1.bin" bs=1 seek=$((n * 100)) conv=notrunc status=none
  ds scan >/dev/null 2>&1 || bad "scan $n"
}
# stale SERVER: a stale tmp file on SERVER's target (a granted LEASE removes it)
stale() { mkdir -p "$tmp/t$1/.distsync/tmp" && echo old >"$tmp/t$1/.distsync/tmp/ds-stale.part"; }
calls() { cat "$tmp/t$1.calls" 2>/dev/null | tr '\n' ';'; }
no_lease() { [ ! -e "$tmp/t$1/.distsync/lease" ] || bad "$2: a lease is left on $1: $(cat "$tmp/t$1/.distsync/lease")"; }

ds scan >/dev/null 2>&1 || bad "scan"
ds sync a b >"$tmp/first" 2>&1 || bad "first sync: $(cat "$tmp/first")"
for s in a b; do
  [ "$(recorded $s)" = 6 ] || bad "server $s: recorded version $(recorded $s) after the first sync, want 6"
done

# 0. a busy lease: another console holds it (a local agent fed HELLO and
# LEASE acquire, its input kept open); the pipelined sync ends as before:
# exit 5 naming the holder, nothing written, the holder's lease untouched
update
for s in a b; do
  python3 - "$tmp/t$s" "$DISTSYNC" <<'PY' &
import struct, subprocess, sys, time
def s(b): return struct.pack(">H", len(b)) + b
def frame(t, i, p): return struct.pack(">IBBHI", len(p), t, 0, 0, i) + p
hello = struct.pack(">IHH", 0x44534150, 1, 6) + s(b"other-console") + s(b"test")
lease = bytes([1]) + s(b"other-console") + struct.pack(">I", 4242) + s(b"elsewhere") + struct.pack(">I", 120)
p = subprocess.Popen([sys.argv[2], "agent", "--root", sys.argv[1]], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
p.stdin.write(frame(1, 1, hello) + frame(2, 2, lease))
p.stdin.flush()
time.sleep(15)
PY
  st_pids+=($!)
done
for _ in $(seq 100); do [ -e "$tmp/ta/.distsync/lease" ] && [ -e "$tmp/tb/.distsync/lease" ] && break; sleep 0.1; done
for s in a b; do
  cp -a "$tmp/t$s" "$tmp/t$s.busy"
  rc=0
  ds sync --no-scan $s >"$tmp/busy.$s" 2>&1 || rc=$?
  [ "$rc" = 5 ] || bad "server $s, a busy lease: exit $rc, want 5: $(cat "$tmp/busy.$s")"
  grep -q "being synced by console other-console" "$tmp/busy.$s" || bad "server $s, a busy lease: $(cat "$tmp/busy.$s")"
  diff -r "$tmp/t$s.busy" "$tmp/t$s" >/dev/null || bad "server $s: the target changed under another console's lease"
  rm -rf "$tmp/t$s.busy"
done
for p in "${st_pids[@]}"; do kill "$p" 2>/dev/null; done
wait "${st_pids[@]}" 2>/dev/null
st_pids=()
for _ in $(seq 100); do [ ! -e "$tmp/ta/.distsync/lease" ] && [ ! -e "$tmp/tb/.distsync/lease" ] && break; sleep 0.1; done

# 1. an older agent than recorded
update
echo v3 >"$tmp/mode"
for s in a b; do
  stale $s
  rm -f "$tmp/t$s.calls"
  ds sync --no-scan $s >"$tmp/v3.$s" 2>&1 || bad "server $s, a version 3 agent: the sync failed: $(cat "$tmp/v3.$s")"
  st_check_converged "$store" "$tmp/t$s" "server $s, a version 3 agent"
  c=$(calls $s)
  echo "server $s, a version 3 agent: calls: $c"
  [ "$c" = "call v3: stale part kept;call v3: stale part gone;" ] ||
    bad "server $s, a version 3 agent: want a refused call that acted on nothing, then one that synced: $c"
  ds history $s --limit 1 --events >"$tmp/h.$s" 2>&1
  grep -q "restarting.*refused HELLO for protocol versions 4..6" "$tmp/h.$s" ||
    bad "server $s: no restarting event: $(cat "$tmp/h.$s")"
  [ "$(recorded $s)" = 3 ] || bad "server $s: recorded $(recorded $s) after a version 3 session, want 3"
  no_lease $s "a version 3 agent"
done

# 2. the agent command prints an error and exits (the recorded version 6 again)
echo real >"$tmp/mode"
update
ds sync --no-scan a b >"$tmp/again" 2>&1 || bad "sync with the real agent: $(cat "$tmp/again")"
update
echo error >"$tmp/mode"
cp -a "$tmp/tb" "$tmp/tb.before"
ds sync --no-scan a >"$tmp/err.a" 2>&1 || bad "server a, an agent that exits: auto did not fall back to SFTP: $(cat "$tmp/err.a")"
ds history a --limit 1 --events 2>&1 | grep -q "broken install" ||
  bad "server a: the fallback does not say what the agent said: $(ds history a --limit 1 --events 2>&1)"
st_check_converged "$store" "$tmp/ta" "server a over SFTP"
rc=0
ds sync --no-scan b >"$tmp/err.b" 2>&1 || rc=$?
[ "$rc" = 4 ] || bad "server b, an agent that exits: exit $rc, want 4: $(cat "$tmp/err.b")"
grep -q "broken install, see the admin" "$tmp/err.b" || bad "server b: the error does not say what the agent said: $(cat "$tmp/err.b")"
diff -r "$tmp/tb.before" "$tmp/tb" >/dev/null || bad "server b: the target changed though its agent exited"
no_lease a "an agent that exits"
no_lease b "an agent that exits"
[ "$(recorded b)" = 0 ] || bad "server b: the recorded version $(recorded b) was not forgotten"
echo real >"$tmp/mode"
rm -f "$tmp/tb.calls"
ds sync --no-scan b >"$tmp/after.b" 2>&1 || bad "server b, the agent back: $(cat "$tmp/after.b")"
st_check_converged "$store" "$tmp/tb" "server b, the agent back"

# 3. auto, the agent command never answers after the prelude
ds sync --no-scan a >/dev/null 2>&1 || bad "server a, the agent back"
[ "$(recorded a)" = 6 ] || bad "server a: recorded $(recorded a), want 6"
update
echo mute >"$tmp/mode"
rc=0
ds sync --no-scan a >"$tmp/mute.1" 2>&1 || rc=$?
[ "$rc" = 4 ] || bad "server a, a mute agent sent the LEASE: exit $rc, want 4: $(cat "$tmp/mute.1")"
grep -q "SFTP is not tried" "$tmp/mute.1" || bad "server a, a mute agent: $(cat "$tmp/mute.1")"
[ "$(recorded a)" = 0 ] || bad "server a: the recorded version $(recorded a) was not forgotten"
ds sync --no-scan a >"$tmp/mute.2" 2>&1 || bad "server a, a mute agent, next run: no SFTP fallback: $(cat "$tmp/mute.2")"
st_check_converged "$store" "$tmp/ta" "server a, a mute agent, next run"
st_exit ssh_pipeline_refused
