#!/usr/bin/env bash
# Warm-up against a real OpenSSH sshd: while a run connects (here an agent
# that takes 2 s to start, as a slow WAN handshake or a loaded host does),
# the deltas its plan will want are computed from the manifest the target
# confirmed last, so the first server of a run does not wait for its link
# and then for its deltas. Checked:
# - every delta of the update is computed before the plan (the debug log
#   counts them), and each pair only once (sync --json's "computed");
# - a second server at the same version finds them all cached;
# - a target that drifted behind the console's back (the guess is wrong)
#   still converges: the warm-up only costs a delta nobody sends;
# - a first sync (no manifest known) and a dry run guess nothing.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_warm
sshd_start "$tmp/sshd"
sshd_known_hosts "$tmp/known_hosts"
store=$tmp/store
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
slow=$tmp/slow-agent
printf '#!/bin/sh\nsleep 2\nexec %s agent "$@"\n' "$DISTSYNC" >"$slow"
chmod +x "$slow"
conf() { # AGENT
  printf '[console]\nstore = %s\nstate = %s\n' "$store" "$tmp/state"
  for s in a b d; do
    printf '\n[server %s]\nurl = ssh://%s@127.0.0.1:%s%s\nidentity = %s\nknown_hosts = %s\n' \
      "$s" "$SSHD_USER" "$SSHD_PORT" "$tmp/t-$s" "$SSH_KEY" "$tmp/known_hosts"
    printf 'agent = %s\ntransport = agent\nclasses = patches\n' "$1"
  done
}
mkdir -p "$tmp/state" "$store/patches" "$tmp/t-a" "$tmp/t-b" "$tmp/t-d"
for i in 1 2 3 4 5 6; do head -c 393216 /dev/urandom >"$store/patches/f$i.bin"; done
conf "$DISTSYNC agent" >"$tmp/d.conf"
ds -v sync --all >"$tmp/first.out" 2>&1 || bad "first sync failed: $(tail -3 "$tmp/first.out")"
grep -q "computed while it connected" "$tmp/first.out" &&
  bad "a first sync (no manifest known) claims a warm-up: $(grep connected "$tmp/first.out")"

# the update: every file changed in 40 scattered places (a delta each)
python3 - "$store/patches" <<'PY'
import os, random, sys
random.seed(5)
for i in range(1, 7):
    p = os.path.join(sys.argv[1], "f%d.bin" % i)
    b = bytearray(open(p, "rb").read())
    for _ in range(40):
        o = random.randrange(0, len(b) - 16)
        b[o:o + 16] = os.urandom(16)
    open(p, "wb").write(bytes(b))
PY
echo drift >>"$tmp/t-d/patches/f3.bin" # d's f3 is not what the console left there
conf "$slow" >"$tmp/d.conf"
ds scan >/dev/null 2>&1 || bad "scan"
ds -v sync --no-scan --dry-run a >"$tmp/dry.out" 2>&1
grep -q "computed while it connected" "$tmp/dry.out" && bad "a dry run computed deltas"

ds -v sync --no-scan --json a >"$tmp/a.json" 2>"$tmp/a.err" || bad "sync a failed: $(tail -3 "$tmp/a.err")"
n=$(sed -n 's/.*server a: \([0-9]*\) deltas computed while it connected.*/\1/p' "$tmp/a.err")
[ "$n" = 6 ] || bad "a: $n of 6 deltas computed while connecting (2 s): $(grep -i delta "$tmp/a.err")"
computed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["deltas"]["computed"])' "$tmp/a.json")
[ "$computed" = 6 ] || bad "a: $computed deltas computed, 6 expected (each pair once)"
st_check_converged "$store" "$tmp/t-a" "a"

ds -v sync --no-scan --json b >"$tmp/b.json" 2>"$tmp/b.err" || bad "sync b failed: $(tail -3 "$tmp/b.err")"
computed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["deltas"]["computed"])' "$tmp/b.json")
[ "$computed" = 0 ] || bad "b: $computed deltas computed; a's were cached"
st_check_converged "$store" "$tmp/t-b" "b"

ds -v sync --no-scan d >"$tmp/d.out" 2>&1 || bad "sync d (drifted) failed: $(tail -3 "$tmp/d.out")"
st_check_converged "$store" "$tmp/t-d" "d (drifted)"
st_exit ssh_warm
