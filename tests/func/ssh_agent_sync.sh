#!/usr/bin/env bash
# ssh:// servers in agent mode against a real OpenSSH sshd on loopback
# (tests/func/lib/sshd.bash): two roots behind one sshd get the store byte
# for byte; `plan` and `status` read them over SSH; an update of a 16 MiB
# file goes as a delta (SSH-level wire bytes far below the file size); a
# second sync moves almost nothing; root paths with a space and a quote
# reach the agent intact (the --root argument is shell-quoted); an agent
# flooding its stderr (4x the channel window) does not stall the sync and
# is logged with a cap; prune works. Server b runs distsync-agent (the
# receiver-only binary) when the build has it.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_agent_sync
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
ds() { "$DISTSYNC" -c "$tmp/distsync.conf" "$@"; }
field() {
  python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print([s for s in d["servers"] if s["server"]==sys.argv[2]][0][sys.argv[3]])' "$@"
}

mkdir -p "$tmp/store/patches/sub" "$tmp/store/engines" "$tmp/state"
head -c $((16 << 20)) /dev/urandom >"$tmp/store/engines/big.bin"
head -c 300000 /dev/urandom >"$tmp/store/patches/sub/a.bin"
printf 'hello\n' >"$tmp/store/patches/b.txt"
: >"$tmp/store/patches/empty"
sshd_known_hosts "$tmp/known_hosts"
ta="$tmp/t a"
tb="$tmp/it's b"
cat >"$tmp/distsync.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
classes = patches engines

[server a]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$ta
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
agent = $DISTSYNC agent
create_root = yes
prune = yes

[server b]
url = ssh://127.0.0.1:$SSHD_PORT$tb
transport = agent
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
agent = ${DISTSYNC_AGENT:-$DISTSYNC agent}
connect_timeout = 10s
io_timeout = 60s
CONF
mkdir -p "$ta" "$tb"

ds config check >/dev/null || bad "config check refused the ssh:// servers"
ds scan >/dev/null
ds plan a b >"$tmp/plan0" || bad "plan over ssh failed: $(cat "$tmp/plan0")"
grep -q "big.bin" "$tmp/plan0" || bad "plan does not list big.bin: $(head -5 "$tmp/plan0")"
ds sync --json a b >"$tmp/s1.json" 2>"$tmp/s1.err" ||
  bad "first sync failed: $(cat "$tmp/s1.err" "$tmp/s1.json")"
st_check_converged "$tmp/store" "$ta" "first sync, a"
st_check_converged "$tmp/store" "$tb" "first sync, b"
[ -s "$ta/.distsync/manifest" ] || bad "no manifest on a"
w1=$(field "$tmp/s1.json" a bytes_wire)
[ "$w1" -gt $((16 << 20)) ] || bad "first sync of a: $w1 wire bytes < the 16 MiB sent"

ds status a b >"$tmp/status1" || bad "status after sync exits $?: $(cat "$tmp/status1")"

# an update in the middle of big.bin: a delta, not the file
python3 - "$tmp/store/engines/big.bin" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(7 << 20)
    f.write(os.urandom(4096))
PY
ds scan >/dev/null
if ds status a >"$tmp/status2"; then bad "status does not see work pending after the update"; fi
ds plan a >"$tmp/plan2" || bad "plan after the update failed"
grep -q "big.bin" "$tmp/plan2" || bad "plan does not list the update: $(cat "$tmp/plan2")"
ds sync --json a b >"$tmp/s2.json" 2>"$tmp/s2.err" || bad "update sync failed: $(cat "$tmp/s2.err")"
st_check_converged "$tmp/store" "$ta" "update, a"
st_check_converged "$tmp/store" "$tb" "update, b"
for s in a b; do
  w=$(field "$tmp/s2.json" $s bytes_wire)
  [ "$w" -lt $((1 << 20)) ] || bad "update of $s: $w wire bytes for a 4 KiB change in 16 MiB"
  [ "$w" -gt 4096 ] || bad "update of $s: $w wire bytes cannot hold the 4 KiB change"
done

# nothing to do: a few KiB of protocol and SSH
ds sync --json a b >"$tmp/s3.json" 2>"$tmp/s3.err" || bad "third sync failed: $(cat "$tmp/s3.err")"
w3=$(field "$tmp/s3.json" a bytes_wire)
[ "$w3" -lt 65536 ] || bad "a sync with nothing to do moved $w3 bytes"
ds status a b >"$tmp/status3" || bad "status after the update exits $?: $(cat "$tmp/status3")"
ds history >/dev/null || bad "history failed"
ds verify a b >"$tmp/verify1" 2>&1 || bad "verify over ssh exits $?: $(cat "$tmp/verify1")"
printf 'tampered' | dd of="$tb/engines/big.bin" bs=1 seek=1000 conv=notrunc status=none
rc=0
ds verify b >"$tmp/verify2" 2>&1 || rc=$?
[ "$rc" = 3 ] || bad "verify over ssh missed a tampered file: exit $rc: $(cat "$tmp/verify2")"
ds verify --repair b >/dev/null 2>&1 || true
cmp -s "$tmp/store/engines/big.bin" "$tb/engines/big.bin" || bad "verify --repair over ssh did not restore big.bin"

# an agent that writes 8 MB to stderr first (4x the channel window): the
# console drains it, logs at most ~100 of its lines, and the sync goes on
cat >"$tmp/noisy-agent" <<NOISY
#!/bin/sh
head -c 8000000 /dev/zero | tr '\\0' x | fold -w 100 >&2
exec "$DISTSYNC" agent "\$@"
NOISY
chmod +x "$tmp/noisy-agent"
mkdir -p "$tmp/tc"
cat >>"$tmp/distsync.conf" <<CONF

[server c]
url = ssh://127.0.0.1:$SSHD_PORT$tmp/tc
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
agent = $tmp/noisy-agent
timeout = 20s
CONF
timeout 120 "$DISTSYNC" -c "$tmp/distsync.conf" sync c >"$tmp/s5.out" 2>"$tmp/s5.err" ||
  bad "sync through a noisy agent failed: $(tail -c 300 "$tmp/s5.err"; cat "$tmp/s5.out")"
st_check_converged "$tmp/store" "$tmp/tc" "noisy agent"
grep -q "more on its stderr, not logged" "$tmp/s5.err" || bad "no note that stderr lines were dropped"
n=$(grep -c "agent on" "$tmp/s5.err" || true)
[ "$n" -le 102 ] || bad "$n agent stderr lines logged (cap 100)"

# prune over ssh
rm "$tmp/store/patches/b.txt"
ds scan >/dev/null
ds sync --force a >"$tmp/s4.out" 2>&1 || bad "prune sync failed: $(cat "$tmp/s4.out")"
[ ! -e "$ta/patches/b.txt" ] || bad "prune over ssh left b.txt"
st_exit ssh_agent_sync
