# A WAN link for tests and bench/caps (sourced): network namespaces joined
# by veth pairs, a tbf qdisc on each end of a pair as the link's rate.
# Needs root, ip and tc (iproute2). Every namespace this creates, and every
# process started with wan_bg, is removed by wan_cleanup (call it from the
# caller's EXIT trap).
wan_nss=()  # namespaces created here
wan_pgs=()  # process groups started by wan_bg

# wan_probe: 0 when a network namespace can be created here, else prints why.
wan_probe() {
  local ns="dsprobe$$" err
  if ! err=$(ip netns add "$ns" 2>&1); then
    echo "cannot create a network namespace: ${err:-ip netns add failed}"
    return 1
  fi
  ip netns del "$ns" 2>/dev/null
  return 0
}

# wan_ns NAME: creates namespace NAME with its loopback up.
wan_ns() {
  ip netns add "$1" || return 1
  wan_nss+=("$1")
  ip -n "$1" link set lo up
}

# wan_link NS_A NS_B IDX RATE_BITS: a veth pair between NS_A (10.213.IDX.1)
# and NS_B (10.213.IDX.2), each end shaped by tbf to RATE_BITS bit/s. The
# bucket holds 10 ms of the rate (at least 16 kB: a few full-size frames).
wan_link() {
  local a=$1 b=$2 i=$3 rate=$4 burst
  burst=$((rate / 8 / 100))
  [ "$burst" -ge 16000 ] || burst=16000
  ip -n "$a" link add "wan${i}a" type veth peer name "wan${i}b" netns "$b" || return 1
  ip -n "$a" addr add "10.213.$i.1/24" dev "wan${i}a"
  ip -n "$b" addr add "10.213.$i.2/24" dev "wan${i}b"
  ip -n "$a" link set "wan${i}a" up
  ip -n "$b" link set "wan${i}b" up
  tc -n "$a" qdisc add dev "wan${i}a" root tbf rate "${rate}bit" burst "$burst" latency 100ms || return 1
  tc -n "$b" qdisc add dev "wan${i}b" root tbf rate "${rate}bit" burst "$burst" latency 100ms || return 1
}

# wan_bg NS CMD...: runs CMD in namespace NS in the background, in its own
# process group (so wan_cleanup also ends what it forks); sets wan_pid.
wan_bg() {
  local ns=$1
  shift
  setsid ip netns exec "$ns" "$@" &
  wan_pid=$!
  wan_pgs+=("$wan_pid")
  disown "$wan_pid" # no "Killed" notices from wan_cleanup
}

# wan_stop PID: SIGTERM to a process started by wan_bg; waits (up to 5 s)
# for it to end.
wan_stop() {
  kill -TERM "$1" 2>/dev/null
  for _ in $(seq 50); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "process $1 did not end on SIGTERM" >&2
  return 1
}

# wan_wait_port NS PORT: waits (up to 5 s) for a listener on PORT in NS.
wan_wait_port() {
  for _ in $(seq 50); do
    ip netns exec "$1" ss -Hltn "sport = :$2" 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  echo "nothing listens on port $2 in namespace $1" >&2
  return 1
}

# wan_cleanup: kills the process groups of wan_bg and whatever still runs
# in our namespaces, then deletes the namespaces (their veths go with them).
wan_cleanup() {
  local p ns
  for p in "${wan_pgs[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done
  for ns in "${wan_nss[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  for ns in "${wan_nss[@]}"; do ip netns del "$ns" 2>/dev/null; done
  wan_nss=()
  wan_pgs=()
}
