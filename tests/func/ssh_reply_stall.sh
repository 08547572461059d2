#!/usr/bin/env bash
# Agent mode over a real sshd: requests the console queues while it reads a
# reply go out at once, not at the run's next one-second tick. A console
# that holds the target's manifest from its last run sends MANIFEST_GET and
# LIST only after HELLO_OK (to learn the protocol version); the agent, run
# under strace, records when it wrote HELLO_OK and when the next request
# arrived. Before the fix that gap was the tick (1.0 s on every run: the
# ssh transport waits for the socket to be writable only while libssh2 is
# stuck writing, so nobody wrote the queued requests); now it is a loopback
# round trip. The smallest gap of three syncs must stay under 0.4 s (a
# margin for a loaded machine). Skips when strace cannot trace.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_reply_stall
if ! command -v strace >/dev/null || ! strace -o /dev/null true 2>/dev/null; then
  echo "SKIP: ssh_reply_stall: strace is missing or cannot trace here"
  exit 77
fi
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
sshd_known_hosts "$tmp/known_hosts"
mkdir -p "$tmp/store/patches" "$tmp/state" "$tmp/t"
for i in 1 2 3 4; do head -c 20000 /dev/urandom >"$tmp/store/patches/f$i.bin"; done
cat >"$tmp/d.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
classes = patches

[server a]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$tmp/t
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
agent = strace -tt -T -e trace=read,write -o $tmp/agent.trace $DISTSYNC agent
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds sync a >"$tmp/out" 2>&1 || bad "first sync: $(cat "$tmp/out")"

# gap TRACE: seconds from the agent's first write to stdout (HELLO_OK and
# LEASE_OK) to the end of its next read from stdin (the deferred requests)
gap() {
  python3 - "$1" <<'PY'
import re, sys
def secs(ts):
    h, m, s = ts.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)
wrote = None
for line in open(sys.argv[1]):
    m = re.match(r'([\d:.]+) (read|write)\((\d+),.*<([\d.]+)>$', line.strip())
    if not m:
        continue
    t, call, fd, dur = secs(m.group(1)), m.group(2), m.group(3), float(m.group(4))
    if wrote is None and call == "write" and fd == "1":
        wrote = t
    elif wrote is not None and call == "read" and fd == "0":
        print("%.3f" % (t + dur - wrote))
        sys.exit(0)
sys.exit("no write to stdout followed by a read from stdin in the agent's trace")
PY
}

gaps=()
for i in 1 2 3; do
  head -c 20000 /dev/urandom >"$tmp/store/patches/f$i.bin"
  ds sync a >"$tmp/out" 2>&1 || bad "sync $i: $(cat "$tmp/out")"
  st_check_converged "$tmp/store" "$tmp/t" "sync $i"
  g=$(gap "$tmp/agent.trace") || { bad "sync $i: $g"; continue; }
  gaps+=("$g")
done
echo "HELLO_OK -> next request, 3 syncs: ${gaps[*]} s"
min=$(printf '%s\n' "${gaps[@]}" | sort -n | head -1)
[ -n "$min" ] && python3 -c "import sys; sys.exit(0 if float('$min') < 0.4 else 1)" ||
  bad "the console waited ${min:-?} s (smallest of ${gaps[*]}) to send the requests it queued after HELLO_OK"
[ "$fail" = 0 ] && echo "PASS: ssh_reply_stall"
exit "$fail"
