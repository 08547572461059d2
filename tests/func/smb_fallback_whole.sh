#!/usr/bin/env bash
# After a detected server-side copy fallback, no basis is read across the
# link for the rest of the run (real smbd behind tools/tcp-relay, which
# counts the bytes each way). 12 files of 1 MiB of random bytes, each with
# 4 KiB changed in the middle, are updated by delta on a share whose
# splices fall back to a copy through the worker (the test hook reads every
# splice's source through the second share of the same directory, which
# libsmbclient copies client-side, silently). The first splice, a probe
# of 256 KiB of the first 512 KiB range, is caught (it moved its bytes
# through the worker); from then on the worker refuses each file with a
# basis instead of reading the basis through smbd, and the console sends
# those files, and every later one, whole. Checks: the share converges;
# the bytes coming back from smbd stay under the probe (256 KiB) plus 16 KB
# per file (before: every file's basis ranges, about 12 MiB); the worker's
# own read counter agrees;
# the run's events say "whole files" once; no file is reported failed.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_fallback_whole
smbd_start "$tmp/smbd"
smbd_relay "$tmp/count"
smbd_sync_conf w "$SMBD_RELAY_PORT" engines
mkdir -p "$store/engines"
nfiles=12 fsize=$((1 << 20))
for i in $(seq -w 1 $nfiles); do head -c $fsize /dev/urandom >"$store/engines/f$i.bin"; done
ds scan >/dev/null 2>&1 && ds sync w >/dev/null 2>"$tmp/err" || bad "first sync: $(cat "$tmp/err")"
st_check_converged "$store" "$target" "first sync"

# 4 KiB changed in the middle of every file: a delta of two COPY ranges each
python3 - "$store/engines" <<'PY'
import os, sys
for n in sorted(os.listdir(sys.argv[1])):
    with open(os.path.join(sys.argv[1], n), "r+b") as f:
        f.seek(512 * 1024); f.write(os.urandom(4096))
PY
ds scan >/dev/null 2>&1 || bad "scan"
read -r u0 d0 <"$tmp/count"
DISTSYNC_TEST_SMB_SPLICE_SHARE=dist2 ds sync w --no-scan >"$tmp/out" 2>&1 ||
  bad "update on a share without server-side copy: $(cat "$tmp/out")"
sleep 0.3 # the relay's last writes
read -r u1 d1 <"$tmp/count"
st_check_converged "$store" "$target" "update after the fallback"
up=$((u1 - u0)) down=$((d1 - d0))
read_b=$(smbd_counter w 'read ([0-9]+) bytes' "$tmp/out")
echo "update of $nfiles files of $fsize bytes after a fallback: up $up, down $down on the wire;" \
  "the worker read $read_b bytes"
grep -q 'server-side copy fell back to a copy through this process' "$tmp/out" ||
  bad "the fallback was not detected: $(grep 'SMB worker' "$tmp/out")"
limit=$((256 * 1024 + nfiles * 16384))
[ "$down" -le "$limit" ] ||
  bad "$down bytes came back from smbd after the fallback, more than $limit (basis reads across the link)"
[ "$read_b" -ge 0 ] && [ "$read_b" -le $((256 * 1024 + nfiles * 1024)) ] ||
  bad "the worker read $read_b bytes through smbd (basis reads across the link)"
[ "$up" -ge $((nfiles * fsize)) ] || bad "only $up bytes went up: the files were not sent whole"
grep -q 'FAILED\|failed' "$tmp/out" && bad "a file failed: $(cat "$tmp/out")"
ds history w --events --json --limit 1 >"$tmp/h.json" || bad "history failed"
python3 - "$tmp/h.json" "$nfiles" <<'PY' || fail=1
import json, sys
ev = json.load(open(sys.argv[1]))[0]["events"]
whole = [e for e in ev if e["outcome"] == "whole files"]
if len(whole) != 1:
    print("FAIL: %d 'whole files' events, expected 1" % len(whole), file=sys.stderr)
    sys.exit(1)
done = [e["path"] for e in ev if e["kind"] == "file" and e["outcome"] == "updated"]
if len(done) != int(sys.argv[2]) or len(set(done)) != len(done):
    print("FAIL: files updated: %s" % done, file=sys.stderr)
    sys.exit(1)
print("event:", whole[0]["message"])
PY
st_exit smb_fallback_whole
