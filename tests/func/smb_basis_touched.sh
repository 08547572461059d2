#!/usr/bin/env bash
# A basis on an SMB share whose mtime no longer matches its manifest entry
# (touched on the share, its content unchanged), against a real smbd: the
# console has it hashed first (HASH: the file read once over SMB), finds
# the manifest's content, and the update then copies on the server from
# it, checked by the SHA-256 computed from the console's copy. Before, the
# hashed basis was still untrusted: every reused range was read over SMB
# again and written back (the basis crossed the link twice).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_basis_touched
smbd_start "$tmp/smbd"
smbd_sync_conf t "$SMBD_PORT" "patches engines definitions"
mkdir -p "$store/engines" "$store/patches"
size=8000000
head -c $size /dev/urandom >"$store/engines/big.bin"
head -c 3000 /dev/urandom >"$store/patches/small.bin"
ds scan >/dev/null 2>&1 && ds sync t >/dev/null 2>"$tmp/err" || bad "first sync: $(cat "$tmp/err")"
st_check_converged "$store" "$target" "first sync"

# the share's copy touched (mtime one hour on), its bytes unchanged
touch -d '+1 hour' "$target/engines/big.bin"
python3 - "$store/engines/big.bin" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(4000000); f.write(os.urandom(65536))
PY
ds scan >/dev/null 2>&1 || bad "scan"
ds sync t >"$tmp/out" 2>&1 || bad "the update failed: $(cat "$tmp/out")"
st_check_converged "$store" "$target" "update over a touched basis"
read=$(smbd_counter t 'read ([0-9]+) bytes in' "$tmp/out")
wrote=$(smbd_counter t 'wrote ([0-9]+) bytes in' "$tmp/out")
copied=$(smbd_counter t 'copied ([0-9]+) bytes on the server' "$tmp/out")
echo "touched basis: read $read bytes over SMB, wrote $wrote, copied $copied on the server"
# read: the HASH of the basis (8 MB) and a few KB of state, not a second time
[ "$read" -ge "$size" ] || bad "the basis was not hashed first (read $read)"
[ "$read" -lt $((size + 200000)) ] || bad "the basis crossed the link twice: read $read bytes"
[ "$copied" -ge 7000000 ] || bad "no server-side copy from the hashed basis ($copied)"
[ "$wrote" -lt 500000 ] || bad "wrote $wrote bytes for a 64 KiB change"
grep -q ' 1 checked by a SHA-256 computed from the console' "$tmp/out" ||
  bad "the update was not checked from the console's copy: $(cat "$tmp/out")"
st_exit smb_basis_touched
