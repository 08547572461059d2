#!/usr/bin/env bash
# Deltas for an SMB server read the basis only through COPY (applied on the
# server by smbc_splice), against a real smbd (tests/func/lib/smbd.bash):
# the zstd records of the delta sent to the SMB worker reference no basis
# range and there are no BSDIFF records, so on a generated update (files
# edited in a few places, one with an insertion that shifts the rest) the
# worker's own counters show it read (almost) no bytes over SMB, and wrote
# at most 0.6x the bytes of the changed files. A file:// server synced from
# the same console still gets the usual delta (the cache keeps the variants
# apart, and idle precompute computes each server's) and converges.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_remote_basis
smbd_start "$tmp/smbd"
local=$tmp/local
smbd_sync_conf s "$SMBD_PORT" engines "[server l]" "url = file://$local" "classes = engines"
mkdir -p "$local" "$store/engines"

# four 6 MB files of compressible, non-repeating text
python3 - "$store/engines" <<'PY'
import random, sys
r = random.Random(12)
words = [bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9))) for _ in range(4000)]
for i in range(4):
    out = bytearray()
    while len(out) < 6_000_000:
        out += b" ".join(r.choice(words) for _ in range(12)) + b"\n"
    open(f"{sys.argv[1]}/f{i}.dat", "wb").write(out)
PY
ds scan >/dev/null 2>&1 && ds sync s l >/dev/null 2>"$tmp/err" || bad "first sync: $(cat "$tmp/err")"
st_check_converged "$store" "$target" "first sync"

# edit each file in three places; f0 also gets 10 KB inserted (shifts the rest)
python3 - "$store/engines" <<'PY'
import random, sys
r = random.Random(13)
for i in range(4):
    p = f"{sys.argv[1]}/f{i}.dat"
    b = bytearray(open(p, "rb").read())
    for off in (1_000_000, 3_000_000, 5_000_000):
        b[off:off + 4096] = bytes(r.choice(b"ABCDEFGH \n") for _ in range(4096))
    if i == 0:
        b[2_000_000:2_000_000] = bytes(r.choice(b"0123456789 \n") for _ in range(10240))
    open(p, "wb").write(b)
PY
changed=$(cat "$store"/engines/*.dat | wc -c)
# idle precompute computes each server's own variant: 4 of each
ds scan --precompute >/dev/null 2>"$tmp/err" || bad "scan --precompute: $(cat "$tmp/err")"
zpc=$(ls "$tmp/state/deltas" | grep -c '\.zpc$') zpb=$(ls "$tmp/state/deltas" | grep -c '\.zpb$')
[ "$zpc" = 4 ] && [ "$zpb" = 4 ] || bad "precompute: $zpc basis-free deltas (.zpc), $zpb usual ones (.zpb)"
ds sync s >"$tmp/out" 2>&1 || bad "update: $(cat "$tmp/out")"
st_check_converged "$store" "$target" "update over smb"
read=$(smbd_counter s 'read ([0-9]+) bytes' "$tmp/out")
wrote=$(smbd_counter s 'wrote ([0-9]+) bytes' "$tmp/out")
copied=$(smbd_counter s 'copied ([0-9]+) bytes on the server' "$tmp/out")
echo "smb update: read $read, wrote $wrote, copied $copied on the server; changed files $changed bytes"
[ "$copied" -ge $((changed / 2)) ] || bad "only $copied bytes copied on the server: $(cat "$tmp/out")"
# the worker reads the manifest and its own files, not basis ranges
[ "$read" -ge 0 ] && [ "$read" -le 262144 ] ||
  bad "the worker read $read bytes over SMB (basis ranges?): $(cat "$tmp/out")"
[ "$wrote" -ge 1 ] && [ $((wrote * 10)) -le $((changed * 6)) ] ||
  bad "the worker wrote $wrote bytes, more than 0.6x of the $changed changed bytes"

ds sync l >"$tmp/out" 2>&1 || bad "update of the file:// server: $(cat "$tmp/out")"
st_check_converged "$store" "$local" "update over file://"
kinds=$(ls "$tmp/state/deltas" 2>/dev/null | sed 's/.*\.//' | sort -u | tr '\n' ' ')
case " $kinds" in *" zpc "*) ;; *) bad "no basis-free delta (.zpc) in the cache: $kinds" ;; esac
case " $kinds" in *" zpb "*) ;; *) bad "the file:// server did not get the usual delta (.zpb): $kinds" ;; esac
st_exit smb_remote_basis
