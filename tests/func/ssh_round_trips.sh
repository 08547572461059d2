#!/usr/bin/env bash
# Round trips of an agent-mode sync over a real sshd, counted on the wire:
# tools/tcp-relay holds each chunk 100 ms each way (a 200 ms round trip)
# and traces every chunk; tools/trace-turns counts the times the console
# sent nothing for a round trip and spoke again only once it heard back.
# The update is the common case: a few changed files whose deltas are
# cached (a warm-up server synced first), to a target whose manifest and
# listing the console holds from its last run. Counted (2026-11-28):
#   transport = auto (the default): 15 on the previous code (the probe of
#   the agent on a channel of its own, closed, then a second channel open
#   and exec, HELLO again, MANIFEST_GET and LIST after HELLO_OK, then
#   COMMIT, the refresh and BYE one after the other, then the close); now
#   10: the probe's channel stays the agent's (its HELLO_OK is the
#   session's), and COMMIT, the refresh and BYE go together.
#   transport = agent: 12 on the previous code, now 10.
# Then 9 for both: the console holds the target's manifest and listing and
# the catalog records that its agent spoke version 6, so HELLO, LEASE,
# MANIFEST_GET and LIST leave in one write (auto: the probe of the agent
# writes them) instead of MANIFEST_GET and LIST waiting for HELLO_OK.
# The bounds are the counts (10 and 10 on the code before): a burst split
# by a loaded machine only counts as a turn if its halves are 180 ms apart.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_round_trips
sshd_start "$tmp/sshd"
rtt_ms=200
rport=$(sshd_free_port)
python3 "$DS_SRC/tools/tcp-relay" "$rport" "$SSHD_PORT" "$tmp/count" --delay-ms $((rtt_ms / 2)) \
  --trace "$tmp/trace" &
st_pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/count" ] && break; sleep 0.1; done
sshd_known_hosts "$tmp/known_hosts" "$rport"
mkdir -p "$tmp/store/patches" "$tmp/state" "$tmp/tw" "$tmp/ta" "$tmp/tb"
for i in 1 2 3 4 5 6; do head -c 40000 /dev/urandom >"$tmp/store/patches/f$i.bin"; done
{
  printf '[console]\nstore = %s\nstate = %s\nclasses = patches\n' "$tmp/store" "$tmp/state"
  for s in w:auto a:auto b:agent; do
    cat <<CONF

[server ${s%%:*}]
url = ssh://$SSHD_USER@127.0.0.1:$rport$tmp/t${s%%:*}
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
agent = $DISTSYNC agent
transport = ${s##*:}
CONF
  done
} >"$tmp/d.conf"
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds sync w a b >"$tmp/first" 2>&1 || bad "first sync: $(cat "$tmp/first")"
# the update: three files changed in place, one new
for i in 1 2 3; do
  printf 'changed %s\n' "$i" | dd of="$tmp/store/patches/f$i.bin" bs=1 seek=$((i * 5000)) \
    conv=notrunc status=none
done
head -c 30000 /dev/urandom >"$tmp/store/patches/f7.bin"
ds scan >/dev/null
ds sync --no-scan w >"$tmp/warm" 2>&1 || bad "warm-up sync: $(cat "$tmp/warm")"

# turns SERVER BOUND MAIN: syncs SERVER alone, counts its turns
turns() {
  local n
  : >"$tmp/trace"
  ds sync --no-scan "$1" >"$tmp/$1.out" 2>&1 || { bad "sync $1: $(cat "$tmp/$1.out")"; st_exit ssh_round_trips; }
  sleep 0.5 # the relay's last chunks
  st_check_converged "$tmp/store" "$tmp/t$1" "server $1"
  grep -q "4 files (1 new, 3 updated" "$tmp/$1.out" || bad "sync $1 did not send the update: $(cat "$tmp/$1.out")"
  # the refresh rode with the commit, its digest predicted before the
  # commit's answer: the target cache holds exactly the target's manifest
  python3 - "$tmp/state/targets/$1.manifest" "$tmp/t$1/.distsync/manifest" <<'PY' ||
import sys
c = open(sys.argv[1], "rb").read()
sys.exit(c[16:-40] != open(sys.argv[2], "rb").read())
PY
    bad "server $1: the target cache does not hold the target's manifest after the run"
  n=$(python3 "$DS_SRC/tools/trace-turns" "$tmp/trace" "$rtt_ms" | tail -1)
  echo "server $1 ($(sed -n "/^\[server $1\]/,/^transport/p" "$tmp/d.conf" | tail -1)): $n round trips (previous code $3)"
  if [ "$n" -gt "$2" ]; then
    python3 "$DS_SRC/tools/trace-turns" "$tmp/trace" "$rtt_ms" --list >&2
    bad "server $1: $n round trips, more than $2"
  fi
}
turns a 9 15
turns b 9 12
st_exit ssh_round_trips
