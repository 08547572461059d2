#!/usr/bin/env bash
# New-admin pass: the first ETAs of an SSH sync on a terminal (real sshd,
# agent mode, a 2 MB file under an 8 Mbit cap: about 2 s). The board's
# rate was smoothed from the handshake's few hundred bytes a second, and
# the first frames with the plan said "ETA 1:26:31" (measured on main:
# 3,030-5,191 s in 5 of 5 runs). Now no rate is kept while a server
# prepares; every ETA shown must be under 30 s (and under 10 times the
# whole sync's wall time), with a margin for a loaded machine.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_progress_eta
command -v script >/dev/null || { echo "SKIP: script(1) is not installed"; exit 77; }
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
sshd_known_hosts "$tmp/known_hosts"
mkdir -p "$tmp/store/patches" "$tmp/state"
head -c 2000000 /dev/urandom >"$tmp/store/patches/e.bin"
cat >"$tmp/d.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
classes = patches

[server e]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$tmp/t
agent = $DISTSYNC agent
transport = agent
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
bandwidth = 8Mbit
CONF
"$DISTSYNC" -c "$tmp/d.conf" scan >/dev/null 2>&1 || bad "scan"
for i in 1 2 3; do
  rm -rf "$tmp/t"
  mkdir -p "$tmp/t"
  t0=$(date +%s%N)
  script -qfec "'$DISTSYNC' -c '$tmp/d.conf' sync e" "$tmp/tty.$i" >/dev/null </dev/null ||
    bad "run $i: sync failed: $(tail -c 600 "$tmp/tty.$i")"
  wall=$((($(date +%s%N) - t0) / 1000000))
  st_check_converged "$tmp/store" "$tmp/t" "run $i"
  # every ETA drawn, in seconds ("ETA 4.5 s", "ETA 1:05", "ETA 1:26:31")
  max=$(tr '\r' '\n' <"$tmp/tty.$i" | grep -o 'ETA [0-9:.]*' | awk '
    { n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; if (s > m) m = s }
    END { printf "%d\n", m + 0.5 }')
  grep -q "ETA" "$tmp/tty.$i" || bad "run $i: no ETA drawn at all: $(tr '\r' '\n' <"$tmp/tty.$i" | head -5)"
  limit=$((wall * 10 / 1000))
  [ "$limit" -ge 30 ] || limit=30
  [ "$max" -le "$limit" ] ||
    bad "run $i: an ETA of $max s for a sync of $wall ms: $(tr '\r' '\n' <"$tmp/tty.$i" | grep -m1 -F "ETA")"
done
exit $fail
