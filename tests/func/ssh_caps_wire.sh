#!/usr/bin/env bash
# A bandwidth cap holds for what crosses the link over SSH, encryption and
# SSH framing included (real OpenSSH sshd): an ssh:// server capped at
# 1 Mbit/s syncs 1.2 MB of random bytes (~10 s) through tools/tcp-relay,
# which traces every chunk the client sends at the TCP level. Between 10%
# and 90% of those bytes the mean rate is at most 3% above the cap, and no
# 1 s window carries more than 1.10x the cap's second. The mean must also
# reach 70% of the cap (the link does not idle): a wide margin for a loaded
# box, where wake-ups later than half a bucket (2.5 ms at this rate) lose
# tokens (0.78-0.95x measured at load 10-13 on 2 cores, where the payload
# pacing of old main gave 0.92-1.05x on the wire, SSH overhead uncharged).
# A mean under 70% is measured again, up to 3 times; over the cap fails.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_caps_wire
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
cap_bps=1000000
mkdir -p "$tmp/store/patches" "$tmp/state" "$tmp/t"
for i in 1 2 3 4 5 6; do head -c 200000 /dev/urandom >"$tmp/store/patches/f$i.bin"; done
RPORT=$(sshd_free_port)
# the relay's timestamps are the measure: it runs ahead of the builds that
# share the box (a relay thread descheduled for 100 ms would fold 100 ms of
# bytes into one later read)
prio=""
[ "$(id -u)" = 0 ] && prio="nice -n -5"
$prio python3 "$DS_SRC/tools/tcp-relay" "$RPORT" "$SSHD_PORT" "$tmp/count" --trace "$tmp/trace" &
st_pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/count" ] && break; sleep 0.1; done
sshd_known_hosts "$tmp/known_hosts" "$RPORT"
cat >"$tmp/d.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
classes = patches

[server s]
url = ssh://$SSHD_USER@127.0.0.1:$RPORT$tmp/t
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
agent = $DISTSYNC agent
bandwidth = 1Mbit
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
# Over the cap (mean or a 1 s window) fails at once; a mean under 70% (the
# link idled: a busy box) is measured again, up to 3 times, each a whole
# sync from scratch: the bounds are not widened.
for try in 1 2 3; do
  rm -rf "$tmp/t" "$tmp/state" && mkdir -p "$tmp/t" "$tmp/state"
  : >"$tmp/trace"
  ds scan >/dev/null || bad "scan"
  ds sync s --json >"$tmp/s.json" 2>"$tmp/s.err" || bad "capped sync failed: $(cat "$tmp/s.err")"
  st_check_converged "$tmp/store" "$tmp/t" "capped ssh sync"
  sleep 0.3 # the relay's last records
  rc=0
  python3 - "$tmp/trace" "$cap_bps" <<'PY' || rc=$?

import sys
cap = int(sys.argv[2]) / 8.0  # bytes per second
pts = []
for line in open(sys.argv[1]):
    t, d, n = line.split()
    if d == "0":
        pts.append((float(t), int(n)))
total = sum(n for _, n in pts)
def at(frac):  # when the cumulative bytes first reach frac of the total
    acc = 0
    for t, n in pts:
        acc += n
        if acc >= frac * total:
            return t, acc
t10, b10 = at(0.10)
t90, b90 = at(0.90)
mean = (b90 - b10) / (t90 - t10)
worst, j, acc = 0, 0, 0
for i in range(len(pts)):  # the heaviest [t, t + 1 s) starting at a chunk
    while j < len(pts) and pts[j][0] < pts[i][0] + 1.0:
        acc += pts[j][1]
        j += 1
    worst = max(worst, acc)
    acc -= pts[i][1]
print("wire up %d bytes; mean %.0f B/s = %.3f x cap; worst 1 s window %d B = %.3f x cap"
      % (total, mean, mean / cap, worst, worst / cap))
ok = True
idle = False
if mean > 1.03 * cap:
    print("FAIL: mean rate %.3f x the cap over SSH (SSH overhead not charged?)" % (mean / cap), file=sys.stderr)
    ok = False
if mean < 0.70 * cap:
    print("mean rate %.3f x the cap: the link idles" % (mean / cap), file=sys.stderr)
    idle = True
if worst > 1.10 * cap:
    print("FAIL: a 1 s window carried %.3f x the cap" % (worst / cap), file=sys.stderr)
    ok = False
sys.exit(1 if not ok else 2 if idle else 0)
PY
  [ "$rc" = 2 ] || break
  echo "  try $try: the link idled (load $(cut -d' ' -f1 /proc/loadavg))"
done
[ "$rc" = 0 ] || bad "the rate over SSH is out of its bounds (3 tries when it idled)"
st_exit ssh_caps_wire
