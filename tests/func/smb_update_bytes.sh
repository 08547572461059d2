#!/usr/bin/env bash
# Bytes on the wire of an SMB update of rebuilt binaries (issue 12), against
# a real smbd (tests/func/lib/smbd.bash) behind tools/tcp-relay, which
# counts both directions. The update plays a package rebuild: 40 "shared
# objects" of 40-120 KB, 5 directories deep, in which every word that
# holds an address (one every 1-6 KB) moved by a constant and a few bytes
# were inserted early (so no content-defined chunk is left intact). Checks:
#  - the bytes on the wire both ways are at most 0.6x the changed bytes
#    (smbclient's whole-file copy costs a little more than them): the
#    delta for an SMB server copies on the server the stretches an
#    approximate alignment with the old build agrees on, so only the
#    bytes around the moved addresses cross the link (before: every byte
#    of a file that shares no chunk, 1.0x and more);
#  - the bytes coming back from the server stay under 8 KB per file plus
#    400 per server-side copy (its two IOCTL replies and the reply to the
#    write it cuts, about 360 bytes): the directories of a file's path are
#    not asked again for every file and the lease file is not read three
#    times per file (before: about 15 KB per file, most of the read-back
#    bench/smb measured on libc6);
#  - the worker's own counters agree (copied on the server, written);
#  - the share equals the store.
# Then the next build goes to a share whose server-side copies fall back to
# a copy through the worker (the test hook reads every splice's source
# through the second share of the same directory): the copies along the
# alignment are all shorter than 64 KiB, which before went undetected
# however many there were; now the short ones are summed, the fallback is
# reported after at most 4 KiB of them plus one (and in the run's events),
# and the share still converges.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_update_bytes
smbd_start "$tmp/smbd"
smbd_relay "$tmp/count"
smbd_sync_conf u "$SMBD_RELAY_PORT" engines
mkdir -p "$store/engines"

# build GEN DIR: 40 pseudo shared objects (GEN 0: the old build, 1: the new)
build() {
  python3 - "$1" "$2" <<'PY'
import os, random, struct, sys
gen, top = int(sys.argv[1]), sys.argv[2]
for i in range(40):
    r = random.Random(100 + i)
    size = r.randint(40_000, 120_000)
    body = bytearray(r.getrandbits(8) for _ in range(size))
    # address words every 1-6 KB; the new build moves them all by 0x40
    at = 0
    while True:
        at += r.randint(1000, 6000)
        if at + 4 > size:
            break
        struct.pack_into("<I", body, at, 0x400000 + at + 0x40 * gen)
    if gen:  # a few bytes of new code early in the file shift the rest
        body[300:300] = bytes(r.getrandbits(8) for _ in range(5))
    d = os.path.join(top, "lib", "x86_64", "gconv", "sub%d" % (i % 4))
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "m%02d.so" % i), "wb").write(body)
PY
}
build 0 "$store/engines"
ds scan >/dev/null 2>&1 && ds sync u >/dev/null 2>"$tmp/err" || bad "first sync: $(cat "$tmp/err")"
st_check_converged "$store" "$target" "first sync"

build 1 "$store/engines"
changed=$(find "$store/engines" -type f -exec cat {} + | wc -c)
ds scan >/dev/null 2>&1 || bad "scan of the new build"
read -r u0 d0 <"$tmp/count"
ds sync u --no-scan >"$tmp/out" 2>&1 || bad "update: $(cat "$tmp/out")"
sleep 0.3 # the relay's last writes
read -r u1 d1 <"$tmp/count"
st_check_converged "$store" "$target" "update of the rebuilt files"
up=$((u1 - u0)) down=$((d1 - d0))
wrote=$(smbd_counter u 'wrote ([0-9]+) bytes' "$tmp/out")
copied=$(smbd_counter u 'copied ([0-9]+) bytes on the server' "$tmp/out")
splices=$(smbd_counter u "in ([0-9]+) splices" "$tmp/out")
echo "smb update of 40 rebuilt files ($changed bytes): up $up, down $down on the wire;" \
  "the worker wrote $wrote and copied $copied on the server in $splices splices"
[ $(((up + down) * 10)) -le $((changed * 6)) ] ||
  bad "$((up + down)) bytes on the wire, more than 0.6x the $changed changed bytes"
[ "$down" -le $((40 * 8192 + splices * 400)) ] ||
  bad "$down bytes came back from the server, more than 8 KB per file and 400 per splice ($splices)"
[ "$copied" -ge $((changed / 2)) ] || bad "only $copied bytes copied on the server"
[ "$wrote" -ge 1 ] && [ $((wrote * 10)) -le $((changed * 4)) ] ||
  bad "the worker wrote $wrote bytes, more than 0.4x the $changed changed bytes"

build 2 "$store/engines"
ds scan >/dev/null 2>&1 || bad "scan of the third build"
DISTSYNC_TEST_SMB_SPLICE_SHARE=dist2 ds sync u --no-scan >"$tmp/out" 2>&1 ||
  bad "update without server-side copy: $(cat "$tmp/out")"
st_check_converged "$store" "$target" "update after a fallback of short copies"
grep -q 'server-side copy fell back to a copy through this process' "$tmp/out" ||
  bad "the fallback of short copies was not detected: $(grep 'SMB worker' "$tmp/out")"
[ "$(smbd_counter u '\(([0-9]+) fell back\)' "$tmp/out")" = 1 ] ||
  bad "fallbacks: $(grep 'SMB worker' "$tmp/out")"
splices=$(smbd_counter u 'in ([0-9]+) splices' "$tmp/out")
[ "$splices" -ge 1 ] && [ "$splices" -le 5 ] ||
  bad "$splices splices before the fallback was seen (at most 5 of 1 KiB or more)"
ds history --events u >"$tmp/ev" 2>&1 || bad "history --events: $(cat "$tmp/ev")"
grep -q 'server-side copy fell back to a copy through this process' "$tmp/ev" ||
  bad "the fallback is not in the run's events"
st_exit smb_update_bytes
