#!/usr/bin/env bash
# Deltas on an SMB share by server-side copy, against a real smbd
# (tests/func/lib/smbd.bash): a 24 MB file changed in one 64 KiB range and
# grown by 100 KiB is updated with its reused ranges copied on the server
# (smbc_splice, FSCTL_SRV_COPYCHUNK): the SMB worker's own counters show
# that it wrote about the literal bytes, not the file, and that the server
# copied the rest. Then splice's silent fallback (a copy across shares,
# which libsmbclient does through the worker: the test hook reads the
# basis through the second share of the same directory) is detected: the
# worker says so (in the run's events too), copies no more on the server,
# and the file is still right.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_splice
smbd_start "$tmp/smbd"
smbd_sync_conf s "$SMBD_PORT" "patches engines definitions"
mkdir -p "$store/engines" "$store/patches"

head -c 24000000 /dev/urandom >"$store/engines/big.bin"
head -c 3000 /dev/urandom >"$store/patches/small.bin"
ds scan >/dev/null 2>&1 && ds sync s >/dev/null 2>"$tmp/err" || bad "first sync: $(cat "$tmp/err")"
st_check_converged "$store" "$target" "first sync"

# change 64 KiB in the middle, append 100 KiB
change() {
  python3 - "$store/engines/big.bin" "$1" <<'PY'
import os, sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(off); f.write(os.urandom(65536))
    f.seek(0, 2); f.write(os.urandom(102400))
PY
}
change 10000000
ds scan >/dev/null 2>&1 || bad "scan"
ds sync s >"$tmp/out" 2>&1 || bad "update: $(cat "$tmp/out")"
st_check_converged "$store" "$target" "update by server-side copy"
wrote=$(smbd_counter s 'wrote ([0-9]+) bytes' "$tmp/out")
copied=$(smbd_counter s 'copied ([0-9]+) bytes on the server' "$tmp/out")
splices=$(smbd_counter s 'in ([0-9]+) splices' "$tmp/out")
echo "server-side copy: wrote $wrote bytes, copied $copied bytes on the server in $splices splices"
[ "$copied" -ge 20000000 ] || bad "only $copied bytes copied on the server: $(cat "$tmp/out")"
# literal: 64 KiB + 100 KiB, plus what zstd could not reuse around them
[ "$wrote" -ge 100000 ] && [ "$wrote" -le 2000000 ] ||
  bad "the worker wrote $wrote bytes for about 170 KB of literal bytes: $(cat "$tmp/out")"
[ "$splices" -ge 1 ] && [ "$splices" -le 64 ] || bad "$splices splices (adjacent copies not merged?)"
grep -q 'copy fell back to a copy\|server-side copy unavailable' "$tmp/out" && bad "a fallback was reported: $(cat "$tmp/out")"
ds status s >"$tmp/st" 2>&1 && grep -q '2 in sync' "$tmp/st" || bad "status: $(cat "$tmp/st")"

# splice's silent fallback (a cross-share copy) is detected
change 4000000
ds scan >/dev/null 2>&1 || bad "scan 2"
DISTSYNC_TEST_SMB_SPLICE_SHARE=dist2 ds sync s >"$tmp/out" 2>&1 || bad "update 2: $(cat "$tmp/out")"
st_check_converged "$store" "$target" "update after a fallback"
grep -q 'server-side copy fell back to a copy through this process' "$tmp/out" ||
  bad "the fallback was not detected: $(cat "$tmp/out")"
[ "$(smbd_counter s '\(([0-9]+) fell back\)' "$tmp/out")" = 1 ] || bad "fallbacks: $(cat "$tmp/out")"
[ "$(smbd_counter s 'in ([0-9]+) splices' "$tmp/out")" = 1 ] || bad "splices went on after the fallback: $(cat "$tmp/out")"
ds history --events s >"$tmp/ev" 2>&1 || bad "history --events: $(cat "$tmp/ev")"
grep -q 'server-side copy fell back to a copy through this process' "$tmp/ev" ||
  bad "the fallback is not in the run's events: $(cat "$tmp/ev")"
st_exit smb_splice
