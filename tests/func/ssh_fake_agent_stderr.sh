#!/usr/bin/env bash
# The agent's stderr over SSH goes into the run's events, bounded (real
# OpenSSH sshd; the agent command is a fake wrapper script: no real agent
# writes to its stderr on demand). The fake says one recognisable line,
# then one line of 100,000 bytes, then floods 6 MB of short lines (3x the
# channel window), then execs the real agent. The first line and the start
# of the long one come in one write: a read longer than the kept tail must
# not skip the lines at its start. The sync must succeed
# byte-exact (the window never stalls); the run's events hold the
# recognisable line as an "agent stderr" warning, every such message is
# cut to at most 256 bytes, at most 101 of them are recorded (100 lines
# and one saying the rest was not logged), and that last note is there.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_fake_agent_stderr
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
mkdir -p "$tmp/store/patches" "$tmp/state" "$tmp/t"
head -c 200000 /dev/urandom >"$tmp/store/patches/a.bin"
printf 'hello\n' >"$tmp/store/patches/b.txt"
sshd_known_hosts "$tmp/known_hosts"
cat >"$tmp/fake-agent" <<FAKE
#!/bin/sh
# one write: the first line and the start of the long one arrive together
printf 'fake-agent: starting up on %s\\n%s\\n' "\$(hostname)" "\$(head -c 100000 /dev/zero | tr '\\0' y)" >&2
head -c 6000000 /dev/zero | tr '\\0' x | fold -w 100 >&2
exec $DISTSYNC agent "\$@"
FAKE
chmod +x "$tmp/fake-agent"
cat >"$tmp/d.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
classes = patches

[server s]
url = ssh://127.0.0.1:$SSHD_PORT$tmp/t
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
agent = $tmp/fake-agent
timeout = 30s
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null || bad "scan"
timeout 120 "$DISTSYNC" -c "$tmp/d.conf" sync s >"$tmp/s.out" 2>"$tmp/s.err" ||
  bad "sync through the noisy fake agent failed: $(tail -c 300 "$tmp/s.err"; cat "$tmp/s.out")"
st_check_converged "$tmp/store" "$tmp/t" "noisy fake agent"
ds history s --events --json --limit 1 >"$tmp/h.json" || bad "history failed"
python3 - "$tmp/h.json" <<'PY' || fail=1
import json, sys
ev = json.load(open(sys.argv[1]))[0]["events"]
notes = [e for e in ev if e["outcome"] == "agent stderr"]
def bad(m):
    print("FAIL:", m, file=sys.stderr)
    sys.exit(1)
msgs = [e["message"] or "" for e in notes]
print("agent stderr events: %d, longest %d bytes" % (len(msgs), max(map(len, msgs or [""]))))
if not any(m.startswith("fake-agent: starting up") for m in msgs):
    bad("the agent's first stderr line is not in the run's events: %s" % msgs[:3])
if any(e["kind"] != "warning" for e in notes):
    bad("agent stderr events are not warnings")
if max(map(len, msgs or [""])) > 256:
    bad("an agent stderr event of %d bytes (cap 256)" % max(map(len, msgs)))
if not any(m.startswith("yyyy") for m in msgs):
    bad("the 100,000-byte line is not recorded (cut)")
if len(msgs) > 101:
    bad("%d agent stderr events recorded (cap 101)" % len(msgs))
if len(msgs) < 101 or "not logged" not in msgs[-1]:
    bad("no final note that the rest of the agent's stderr was dropped: %s" % msgs[-1:])
PY
st_exit ssh_fake_agent_stderr
