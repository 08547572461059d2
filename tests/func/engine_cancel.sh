#!/usr/bin/env bash
# Ctrl-C of `distsync sync --all` mid-run with servers in flight and
# servers not yet started (issue 8, "Engine tests": cancel mid-run, then
# rerun). 6 file:// servers (3 in-process, 3 through the agent), at most 2
# at once ([console] max_servers = 2), each capped at 2Mbit with 1 MiB of
# incompressible content (4 s each). Once two targets are leased, SIGINT
# to the process group (what a terminal's Ctrl-C sends):
#  - exit 130 within 10 s, stderr says cancelled;
#  - each started server: no lease left, nothing in .distsync/tmp, a valid
#    manifest, history says cancelled, status counts every file present as
#    in sync (what was committed is recorded);
#  - each server not started: its target untouched, no run other than a
#    cancelled one in history, and the output names it;
#  - no agent outlives the console;
#  - a sync right after is not refused as busy and converges every target.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init engine_cancel
store=$tmp/store
roots=()
en_head "$tmp/slow.conf" "$store" "$tmp/state" "max_servers = 2"
en_head "$tmp/fast.conf" "$store" "$tmp/state"
for i in $(seq 1 6); do
  tr=local
  [ $((i % 2)) = 0 ] && tr=agent
  en_server "$tmp/slow.conf" "c$i" "$tmp/t/c$i" $tr "bandwidth = 2Mbit"
  en_server "$tmp/fast.conf" "c$i" "$tmp/t/c$i" $tr
  roots+=("$tmp/t/c$i")
done
en_fill "$store" 8 131072
ds() { "$DISTSYNC" -c "$tmp/fast.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan"

# nleased: how many targets hold a lease now.
nleased() {
  local r n=0
  for r in "${roots[@]}"; do [ -e "$r/.distsync/lease" ] && n=$((n + 1)); done
  echo $n
}

# newest_status SERVER: the status of its newest run, or "none".
newest_status() {
  ds history "$1" --json --limit 1 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0]["status"] if d else "none")'
}

# cancel_run: starts the capped batch in its own session, SIGINTs the group
# 1 s after two targets are leased; sets rc and ms (the wind-down time).
cancel_run() {
  local pid i t0
  setsid "$DISTSYNC" -c "$tmp/slow.conf" sync --all --no-scan >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  st_pids+=("$pid")
  for i in $(seq 300); do
    [ "$(nleased)" -ge 2 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  sleep 1
  agents=$(pgrep -P "$pid" 2>/dev/null || true)
  t0=$(now_ms)
  kill -INT -- -"$pid" 2>/dev/null
  rc=0
  wait "$pid" || rc=$?
  ms=$(($(now_ms) - t0))
}

# check_started ROOT: a server the batch started, wound down.
check_started() {
  local r=$1 name=${1##*/} st
  [ ! -e "$r/.distsync/lease" ] || bad "$name: lease left on the target: $(head -c 200 "$r/.distsync/lease")"
  [ "$(en_nparts "$r")" = 0 ] || bad "$name: partial files left in .distsync/tmp: $(ls "$r/.distsync/tmp" | head -3)"
  en_manifest_valid "$r" "$name"
  st_check_versions "$r" "$tmp/known" "$name"
  st=$(newest_status "$name")
  [ "$st" = cancelled ] || bad "$name: history says '$st' for the cancelled run, want cancelled"
  ds status "$name" --json --no-scan >"$tmp/st.json" 2>"$tmp/st.err" # exit 3: files missing
  python3 - "$tmp/st.json" "$(en_ncontent "$r")" "$name" <<'PY' || fail=1
import json, sys
c = json.load(open(sys.argv[1]))[0]["counts"]
present, name = int(sys.argv[2]), sys.argv[3]
if c["in_sync"] != present or c.get("drifted", 0) or c.get("unrecorded", 0):
    sys.exit(f"FAIL: {name}: status says {c} with {present} files on the target (published files not recorded)")
PY
}

# check_not_started ROOT: a server the batch never started.
check_not_started() {
  local r=$1 name=${1##*/} st
  [ -z "$(ls -A "$r")" ] || bad "$name: not started, but its target was written: $(ls -A "$r" | head -3)"
  st=$(newest_status "$name")
  [ "$st" = none ] || [ "$st" = cancelled ] || bad "$name: not started, but history says '$st'"
  grep -Eiq "\b$name\b.*(cancelled|not started)|(cancelled|not started).*\b$name\b" "$tmp/out" "$tmp/err" ||
    bad "$name: not started, and the output does not report it (cancelled or not started): $(head -c 400 "$tmp/out")"
}

(cd "$store" && find . -type f -printf '%P\n' | while read -r p; do echo "$p $(sha256sum <"$p" | cut -d' ' -f1)"; done) >"$tmp/known"
cancel_run
started=() unstarted=()
for r in "${roots[@]}"; do
  if [ -e "$r/.distsync" ]; then started+=("$r"); else unstarted+=("$r"); fi
done
echo "SIGINT: exit $rc after $ms ms; ${#started[@]} servers started, ${#unstarted[@]} not"
[ "$rc" = 130 ] || bad "exit $rc, want 130: $(head -c 600 "$tmp/err")"
[ "$ms" -lt 10000 ] || bad "the batch took $ms ms to wind down after SIGINT"
grep -qi cancelled "$tmp/err" || bad "stderr does not say cancelled: $(head -c 300 "$tmp/err")"
[ "${#started[@]}" -ge 1 ] && [ "${#started[@]}" -le 2 ] ||
  bad "${#started[@]} servers started before the cancel, want 1 or 2 (max_servers = 2)"
[ "${#unstarted[@]}" -ge 2 ] || bad "only ${#unstarted[@]} servers left unstarted: the cancel came too late"
sleep 0.3
for a in $agents; do kill -0 "$a" 2>/dev/null && bad "agent $a outlived its console"; done
[ "$rc" = 130 ] && for r in "${started[@]}"; do check_started "$r"; done
[ "$rc" = 130 ] && for r in "${unstarted[@]}"; do check_not_started "$r"; done

# the rerun: no lease is in the way, every target converges
rc=0
ds sync --all >"$tmp/out2" 2>"$tmp/err2" || rc=$?
[ "$rc" = 0 ] || bad "the sync after the cancel exited $rc: $(head -c 600 "$tmp/err2")"
for r in "${roots[@]}"; do en_converged "$store" "$r" "rerun: ${r##*/}"; done
st_exit engine_cancel
