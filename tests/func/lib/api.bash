# Helpers for the daemon API tests (tests/func/daemon_api*.sh), sourced
# after daemon.bash. curl is the client; $sock is the daemon's Unix socket.

command -v curl >/dev/null || { echo "SKIP: no curl (tools/setup installs it)"; exit 77; }

# api METHOD PATH [BODY] [CURL ARGS...]: one request over $sock (or, with
# api_url set, over TCP to $api_url, with the curl arguments of the array
# api_hdr, e.g. the token); sets $code and $body.
api_hdr=()
api() {
  local m=$1 p=$2 data=${3-} out=$tmp/api.out
  shift 2
  [ $# = 0 ] || shift
  local where=(--unix-socket "$sock" "http://localhost$p")
  [ -z "${api_url:-}" ] || where=("${api_hdr[@]}" "$api_url$p")
  if [ -n "$data" ]; then
    code=$(curl -s -m 20 -o "$out" -w '%{http_code}' -X "$m" -H 'Content-Type: application/json' \
      --data-binary "$data" "$@" "${where[@]}")
  else
    code=$(curl -s -m 20 -o "$out" -w '%{http_code}' -X "$m" "$@" "${where[@]}")
  fi
  body=$(cat "$out")
}

# jq_py EXPR: evaluates the Python expression EXPR with j = the JSON of $body.
jq_py() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$body"; }

# expect CODE WHAT: checks $code, and that a 4xx/5xx body is {"error": "..."}.
expect() {
  [ "$code" = "$1" ] || { bad "$2: HTTP $code, expected $1: $body"; return 1; }
  if [ "$1" -ge 400 ]; then
    [ "$(jq_py 'type(j.get("error")).__name__' 2>/dev/null)" = str ] ||
      { bad "$2: the $1 reply is not {\"error\": \"...\"}: $body"; return 1; }
  fi
  return 0
}

# api_wait_up LOG: waits for the daemon's API line.
api_wait_up() { dm_wait "$1" 'daemon: API on ' 20; }

# run_wait ID STATE SECONDS: polls GET /v1/runs/ID until its state is STATE.
run_wait() {
  local i
  for i in $(seq 1 $(($3 * 10))); do
    api GET "/v1/runs/$1"
    [ "$code" = 200 ] && [ "$(jq_py 'j["state"]')" = "$2" ] && return 0
    sleep 0.1
  done
  bad "run $1 is not $2 within $3 s: $body"
  return 1
}

# A free TCP port on 127.0.0.1 (the kernel's pick; the daemon binds it soon
# after, so a clash is possible but unlikely).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# gate_init SIZE: the upgrade-gate tests' common ground: sets state, conf,
# sock, port, optok (operator) and entok (enrolment); writes the package
# $tmp/store/engines/agent-7.0.msi (SIZE random bytes) and the two tokens
# as $tmp/optoken and $tmp/entoken, mode 0600. Each test writes its $conf.
gate_init() {
  state=$tmp/state
  conf=$tmp/d.conf
  sock=$state/distsync.sock
  port=$(free_port)
  optok=op-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  entok=en-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  mkdir -p "$tmp/store/engines"
  head -c "$1" /dev/urandom >"$tmp/store/engines/agent-7.0.msi"
  (umask 077 && echo "$optok" >"$tmp/optoken" && echo "$entok" >"$tmp/entoken")
}

# gate_console [LINE...]: writes $conf's [console] section as the gate
# tests share it (the store, the state, the TCP listener on $port, the
# operator's token file), then each LINE (e.g. max_concurrent_upgrades).
gate_console() {
  {
    cat <<CONF
[console]
store = $tmp/store
state = $state
listen = 127.0.0.1:$port
api_token_file = $tmp/optoken
CONF
    [ $# = 0 ] || printf '%s\n' "$@"
  } >"$conf"
}

# gate_rollout RING MEMBERS [LINE...]: appends to $conf the package agent-7
# (version 7.0, the file gate_init wrote), the ring RING of MEMBERS and the
# rollout agent over it with each LINE (lease = ..., thresholds) and the
# enrolment token file $tmp/entoken.
gate_rollout() {
  local ring=$1 members=$2
  shift 2
  {
    cat <<CONF

[package agent-7]
product = agent
version = 7.0
path = engines/agent-7.0.msi

[ring $ring]
members = $members

[rollout agent]
product = agent
version = 7.0
rings = $ring
CONF
    [ $# = 0 ] || printf '%s\n' "$@"
    echo "token_file = $tmp/entoken"
  } >>"$conf"
}

# gate_up NAME SPEED SERVER...: syncs the SERVERs, starts the daemon with
# its log in $log ($tmp/daemon.log) at 2026-03-10T01:00:00Z, SPEED times
# real time, and waits for its API; the test ends (st_exit NAME) when the
# API does not come up.
gate_up() {
  local name=$1 speed=$2
  shift 2
  "$DISTSYNC" -c "$conf" sync "$@" >/dev/null 2>&1 || bad "sync $* failed"
  log=$tmp/daemon.log
  dm_start "$log" 2026-03-10T01:00:00Z "$speed"
  api_wait_up "$log" || st_exit "$name"
}
