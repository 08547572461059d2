#!/usr/bin/env bash
# SIGHUP to a running `distsync sync` re-reads the config's caps (issue 8,
# "Engine tests": SIGHUP with a new cap, and with a broken config). One
# server through the agent, incompressible content:
#  - new cap: 3 MiB at 256kbit (over 90 s at that rate); 3 s in, the
#    target has received little (the cap holds), the config is rewritten
#    with 100Mbit and SIGHUP sent: the sync ends well before the old cap
#    allows (30 s, with a wide margin) and converges;
#  - broken config: 1 MiB at 512kbit (16 s); 2 s in, the server's cap line
#    becomes a bare number (an error) and SIGHUP is sent: stderr names the
#    config file and that line, the sync goes on at the old cap (it still
#    takes over 10 s in all) and converges.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init engine_sighup

# setup CASE NFILES CAP: store, config and target under $tmp/CASE; the
# server's `bandwidth =` is the config's last line.
setup() {
  local d=$tmp/$1
  en_fill "$d/store" "$2" 262144
  en_head "$d/d.conf" "$d/store" "$d/state"
  en_server "$d/d.conf" srv "$d/t" agent "bandwidth = $3"
  "$DISTSYNC" -c "$d/d.conf" scan >/dev/null 2>&1 || bad "$1: scan"
}

# start CASE: the sync in the background; sets pid and t0.
start() {
  "$DISTSYNC" -c "$tmp/$1/d.conf" sync srv --no-scan >"$tmp/$1/out" 2>"$tmp/$1/err" &
  pid=$!
  st_pids+=("$pid")
  t0=$(now_ms)
}

# received CASE: bytes on the target, published or in .distsync/tmp.
received() {
  local p
  p=$(find "$tmp/$1/t/.distsync/tmp" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}')
  echo $(($(en_bytes "$tmp/$1/t") + p))
}

# finish CASE: waits for the sync; sets rc and ms (since start).
finish() {
  rc=0
  wait "$pid" || rc=$?
  ms=$(($(now_ms) - t0))
  [ "$rc" = 0 ] || bad "$1: sync exited $rc: $(head -c 600 "$tmp/$1/err")"
  en_converged "$tmp/$1/store" "$tmp/$1/t" "$1"
}

# set_cap CASE VALUE: rewrites the config's last line (the server's cap).
set_cap() {
  sed -i "\$s/.*/bandwidth = $2/" "$tmp/$1/d.conf"
}

# running CASE WHAT: the sync is still running WHAT in, else the cap
# was not enforced (the rest of the case would prove nothing).
running() {
  kill -0 "$pid" 2>/dev/null && return 0
  bad "$1: the sync ended within $2 although the cap allows far less: the cap is not enforced"
  finish "$1"
  return 1
}

new_cap() {
  local got sig_ms
  setup raise 12 256kbit
  start raise
  sleep 3
  got=$(received raise)
  running raise "3 s" || return
  echo "raise: $got bytes received in the first 3 s at 256kbit"
  [ "$got" -le 600000 ] || bad "raise: $got bytes received in 3 s at 256kbit (32000 B/s): the cap does not hold"
  set_cap raise 100Mbit
  sig_ms=$(now_ms)
  kill -HUP "$pid"
  finish raise
  echo "raise: the sync ended $(($(now_ms) - sig_ms)) ms after the SIGHUP to 100Mbit (exit $rc)"
  [ $(($(now_ms) - sig_ms)) -lt 30000 ] ||
    bad "raise: the sync took $(($(now_ms) - sig_ms)) ms after SIGHUP raised the cap to 100Mbit: the new cap was not applied"
}

broken() {
  local conf=$tmp/broken/d.conf line
  setup broken 4 512kbit
  line=$(wc -l <"$conf")
  start broken
  sleep 2
  running broken "2 s" || return
  set_cap broken 512
  kill -HUP "$pid"
  sleep 1
  kill -0 "$pid" 2>/dev/null || bad "broken: the sync ended within 1 s of a SIGHUP with a broken config"
  finish broken
  echo "broken: the sync took $ms ms at 512kbit (1 MiB: 16 s at the cap), exit $rc"
  [ "$ms" -ge 10000 ] || bad "broken: 1 MiB at 512kbit took only $ms ms: the old cap was not kept (or never held)"
  grep -Eq "$conf:$line\b|$conf.*line $line\b" "$tmp/broken/err" ||
    bad "broken: stderr does not name $conf and line $line: $(head -c 400 "$tmp/broken/err")"
}

new_cap
broken
st_exit engine_sighup
