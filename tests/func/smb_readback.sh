#!/usr/bin/env bash
# verify = readback over SMB, against a real smbd: a basis altered on the
# share behind distsync's back (one byte flipped in the share's backing
# directory, its mtime put back, so its manifest entry still trusts it for
# server-side copies) makes the update built by server-side copy wrong.
# With verify = readback the worker reads the tmp file back, the SHA-256
# differs, the run fails naming the file, and the old file stays in place
# untouched. Without readback (verify = size) the same update goes through
# on the size alone: shown, so this test can tell readback from no check.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_readback
smbd_start "$tmp/smbd"
store=$tmp/store target=$SMBD_SHARE_DIR/r
smbd_creds "$tmp/cred"
mkdir -p "$target" "$store/engines" "$store/patches"
conf() {
  cat >"$tmp/d.conf" <<CONF
[console]
store = $store
state = $tmp/state
[server r]
url = smb://127.0.0.1:$SMBD_PORT/dist/r
credentials = $tmp/cred
classes = patches engines definitions
verify = $1
CONF
}
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

conf readback
head -c 4000000 /dev/urandom >"$store/engines/big.bin"
head -c 3000 /dev/urandom >"$store/patches/small.bin"
ds scan >/dev/null 2>&1 && ds sync r >/dev/null 2>"$tmp/err" || bad "first sync: $(cat "$tmp/err")"
st_check_converged "$store" "$target" "first sync"
# a readback sync of a server-side-copy update that is right passes
python3 - "$store/engines/big.bin" 3000000 <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(os.urandom(65536))
PY
ds scan >/dev/null 2>&1 || bad "scan 1"
ds sync r >"$tmp/out" 2>&1 || bad "a good update with readback failed: $(cat "$tmp/out")"
grep -q 'copied [1-9][0-9]* bytes on the server' "$tmp/out" || bad "no server-side copy: $(cat "$tmp/out")"
st_check_converged "$store" "$target" "a good update with readback"

# the share's basis altered, its size and mtime kept
python3 - "$target/engines/big.bin" <<'PY'
import os, sys
p = sys.argv[1]
st = os.stat(p)
with open(p, "r+b") as f:
    f.seek(1000); b = f.read(1); f.seek(1000); f.write(bytes([b[0] ^ 0xff]))
os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
PY
old=$(sha "$target/engines/big.bin")
python3 - "$store/engines/big.bin" 2000000 <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(os.urandom(65536))
PY
ds scan >/dev/null 2>&1 || bad "scan 2"
ds sync r >"$tmp/out" 2>&1 && bad "the sync of a wrongly built file succeeded with readback: $(cat "$tmp/out")"
grep -q 'engines/big.bin' "$tmp/out" || bad "the failure does not name the file: $(cat "$tmp/out")"
grep -q 'read-back of .*SHA-256 differs' "$tmp/out" || bad "the failure does not say read-back: $(cat "$tmp/out")"
grep -q 'copied [1-9][0-9]* bytes on the server' "$tmp/out" || bad "no server-side copy: $(cat "$tmp/out")"
[ "$(sha "$target/engines/big.bin")" = "$old" ] || bad "the old file did not stay in place"
[ -z "$(find "$target/.distsync/tmp" -type f 2>/dev/null)" ] || bad "tmp files left: $(ls "$target/.distsync/tmp")"

# the same update with verify = size: the size matches, the file is wrong
conf size
ds sync r >"$tmp/out" 2>&1 || bad "the sync with verify = size failed: $(cat "$tmp/out")"
[ "$(sha "$target/engines/big.bin")" != "$(sha "$store/engines/big.bin")" ] ||
  bad "verify = size published a right file: the basis alteration did not reach the copy"
st_exit smb_readback
