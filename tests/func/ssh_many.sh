#!/usr/bin/env bash
# 20 ssh:// servers synced at once from one engine loop, behind three real
# OpenSSH sshd instances (7 + 7 + 6 roots, one port each), max_servers = 8
# and a 2 Mbit/s cap per server so that each run lasts a few seconds. The
# remote agents alive at once are sampled every 100 ms: never more than
# max_servers, and several at once (the runs overlap; history agrees:
# some run starts before another ends). Every root ends byte-exact.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_many
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd0"
ports=("$SSHD_PORT")
sshd_start_more "$tmp/sshd1" && ports+=("$SSHD_MORE_PORT")
sshd_start_more "$tmp/sshd2" && ports+=("$SSHD_MORE_PORT")
nsrv=20 maxsrv=8
mkdir -p "$tmp/store/patches" "$tmp/store/engines" "$tmp/state"
for i in 1 2 3 4; do head -c 150000 /dev/urandom >"$tmp/store/patches/p$i.bin"; done
printf 'small\n' >"$tmp/store/engines/e.txt"
printf '[console]\nstore = %s\nstate = %s\nclasses = patches engines\nmax_servers = %d\n' \
  "$tmp/store" "$tmp/state" "$maxsrv" >"$tmp/d.conf"
sshd_known_hosts "$tmp/known_hosts" "${ports[@]}"
for i in $(seq -w 1 $nsrv); do
  p=${ports[$((10#$i % 3))]}
  mkdir -p "$tmp/r$i"
  printf '\n[server s%s]\nurl = ssh://%s@127.0.0.1:%s%s\nidentity = %s\nknown_hosts = %s\n' \
    "$i" "$SSHD_USER" "$p" "$tmp/r$i" "$SSH_KEY" "$tmp/known_hosts" >>"$tmp/d.conf"
  printf 'agent = %s agent\nbandwidth = 2Mbit\n' "$DISTSYNC" >>"$tmp/d.conf"
done
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null || bad "scan"

: >"$tmp/samples"
ds sync --all --json >"$tmp/s.json" 2>"$tmp/s.err" &
pid=$!
st_pids+=("$pid")
while kill -0 "$pid" 2>/dev/null; do
  pgrep -f -- "agent --root $tmp/r" | wc -l >>"$tmp/samples"
  sleep 0.1
done
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || bad "sync of $nsrv ssh:// servers exited $rc: $(tail -c 600 "$tmp/s.err")"
for i in $(seq -w 1 $nsrv); do st_check_converged "$tmp/store" "$tmp/r$i" "server s$i"; done
most=$(sort -n "$tmp/samples" | tail -1)
echo "remote agents alive at once: at most $most (max_servers = $maxsrv), $(wc -l <"$tmp/samples") samples"
[ "$most" -le "$maxsrv" ] || bad "$most agents at once with max_servers = $maxsrv"
[ "$most" -ge 4 ] || bad "at most $most agents at once: the servers did not run concurrently"
ds history --all --json --limit $nsrv >"$tmp/h.json" || bad "history failed"
python3 - "$tmp/h.json" "$nsrv" <<'PY' || fail=1
import json, sys
runs = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
def bad(m):
    print("FAIL:", m, file=sys.stderr)
    sys.exit(1)
if len(runs) != n or any(r["status"] != "ok" for r in runs):
    bad("history: %d runs, statuses %s" % (len(runs), sorted(set(r["status"] for r in runs))))
iv = sorted((r["started_at_unix"], r["started_at_unix"] + r["duration_s"]) for r in runs)
over = sum(1 for a, b in zip(iv, iv[1:]) if b[0] < a[1])
span = iv[-1][1] - iv[0][0]
total = sum(b - a for a, b in iv)
print("history: %d runs, %d s of runs in %d s of wall time, %d overlapping pairs" % (n, total, span, over))
if over == 0:
    bad("no two runs overlap in history")
PY
st_exit ssh_many
