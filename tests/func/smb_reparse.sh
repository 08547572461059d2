#!/usr/bin/env bash
# A reparse point inside an SMB target's root is refused, against a real
# smbd. Samba shows a client no symlink (it resolves them itself, and masks
# FILE_ATTRIBUTE_REPARSE_POINT read from user.DOSATTRIB), but it lists an
# MS-DFS link (`msdfs root = yes`, a symlink "msdfs:HOST\SHARE\DIR") with
# that attribute (smbclient shows "Dr"), as a Windows server lists a
# junction or a directory symlink. The link `patches` of the target points
# at \dist\other, a folder of the same share outside the target's root.
#  1. sync: the file under patches/ is refused, naming the server, the path
#     and the reason ("a reparse point (symlink or junction) on the share,
#     refused for safety", the link's URL); nothing is written in other/ and
#     its file is untouched; the rest of the class still goes (engines/).
#  2. the listing does not walk through the link: verify and a prune run
#     (nothing left to write under patches/, engines/e.bin removed) finish (on main the walk opened \lyon-1\patches, libsmbclient printed
#     "Could not resolve ..." into the worker's protocol stream and the
#     console failed with "invalid frame header from the target"), and the
#     file behind the link is neither listed nor pruned.
#  3. the red team's case: a plain symlink on Samba (lyon-3/patches ->
#     ../other3), which the server resolves and lists as a folder (0x10,
#     with its target's file id): the listing of lyon-3/patches gives as
#     ".." the share's root, not lyon-3, so the worker refuses it as in 1
#     (on main: patches/p3.bin landed in other3/).
#  4. a server whose folder is itself an MS-DFS link (libsmbclient cannot
#     list it): fails saying the folder does not exist, and what
#     libsmbclient prints on stdout ("Couldn't resolve \\lyon-2") reaches
#     the console as the worker's stderr, not its protocol stream (on main:
#     "invalid frame header from the target").
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_reparse
SMBD_EXTRA="msdfs root = yes"
smbd_start "$tmp/smbd"
smbd_sync_conf lyon-1 "$SMBD_PORT" "patches engines" "prune = yes"
other=$SMBD_SHARE_DIR/other
mkdir -p "$store/patches" "$store/engines" "$other"
echo "patch one" >"$store/patches/p1.bin"
echo "engine" >"$store/engines/e.bin"
echo "engine two" >"$store/engines/e2.bin"
echo "not the target's" >"$other/keep.bin"
ln -s 'msdfs:127.0.0.1\dist\other' "$target/patches"
# the real smbd reports the DFS link as a reparse point (attribute 0x400)
smbd_client dist -c 'cd lyon-1; ls' >"$tmp/ls" 2>&1 || bad "smbclient ls: $(cat "$tmp/ls")"
grep -Eq '^ +patches +Dr ' "$tmp/ls" || bad "smbd does not list patches as a reparse point: $(cat "$tmp/ls")"
ds scan >/dev/null 2>&1 || bad "scan"

# 1. the write through the link is refused, naming server, path and reason
ds sync lyon-1 >"$tmp/out" 2>&1
rc=$?
[ "$rc" = 4 ] || bad "sync through a reparse point: exit $rc, want 4: $(cat "$tmp/out")"
url="smb://127.0.0.1:$SMBD_PORT/dist/lyon-1/patches"
grep -qF "$url: a reparse point (symlink or junction) on the share, refused for safety" "$tmp/out" ||
  bad "no refusal naming the reparse point: $(cat "$tmp/out")"
grep -qF "server lyon-1: patches/p1.bin: " "$tmp/out" ||
  bad "the failed file is not named with its server: $(cat "$tmp/out")"
[ "$(ls -A "$other")" = keep.bin ] || bad "written outside the root: $(ls -A "$other")"
[ "$(cat "$other/keep.bin")" = "not the target's" ] || bad "keep.bin outside the root changed"
cmp -s "$store/engines/e.bin" "$target/engines/e.bin" || bad "the rest of the target was not synced"
[ -L "$target/patches" ] || bad "the link itself was replaced"

# 2. the listing reports the link, never walks through it
ds verify lyon-1 >"$tmp/verify" 2>&1 || bad "verify: $(cat "$tmp/verify")"
grep -q "invalid frame header" "$tmp/out" "$tmp/verify" && bad "the worker's stream was corrupted"
rm "$store/engines/e.bin" "$store/patches/p1.bin"
ds scan >/dev/null 2>&1 || bad "scan 2"
ds sync --force lyon-1 >"$tmp/out2" 2>&1 || bad "prune run: $(cat "$tmp/out2")"
[ ! -e "$target/engines/e.bin" ] || bad "prune did not run: $(cat "$tmp/out2")"
[ "$(cat "$other/keep.bin" 2>/dev/null)" = "not the target's" ] ||
  bad "a file behind the link was pruned: $(cat "$tmp/out2")"

# 3. a symlink resolved by Samba, seen by the ".." of its listing
mkdir -p "$SMBD_SHARE_DIR/lyon-3" "$SMBD_SHARE_DIR/other3"
ln -s ../other3 "$SMBD_SHARE_DIR/lyon-3/patches"
printf '[server lyon-3]\nurl = smb://127.0.0.1:%s/dist/lyon-3\ncredentials = %s\nclasses = patches engines\n' \
  "$SMBD_PORT" "$tmp/cred" >>"$tmp/d.conf"
echo "patch three" >"$store/patches/p3.bin"
ds scan >/dev/null 2>&1 || bad "scan 3"
ds sync lyon-3 >"$tmp/out4" 2>&1
rc=$?
[ "$rc" = 4 ] || bad "sync through a Samba symlink: exit $rc, want 4: $(cat "$tmp/out4")"
grep -qF "smb://127.0.0.1:$SMBD_PORT/dist/lyon-3/patches: a reparse point (symlink or junction) on the share, refused for safety" "$tmp/out4" ||
  bad "no refusal naming the Samba symlink: $(cat "$tmp/out4")"
grep -qF "server lyon-3: patches/p3.bin: " "$tmp/out4" || bad "p3.bin not named: $(cat "$tmp/out4")"
[ -z "$(ls -A "$SMBD_SHARE_DIR/other3")" ] || bad "written outside the root: $(ls -A "$SMBD_SHARE_DIR/other3")"
cmp -s "$store/engines/e2.bin" "$SMBD_SHARE_DIR/lyon-3/engines/e2.bin" || bad "lyon-3's engines not synced"

# 4. libsmbclient's stdout messages stay out of the worker's protocol
mkdir -p "$SMBD_SHARE_DIR/real2"
ln -s 'msdfs:127.0.0.1\dist\real2' "$SMBD_SHARE_DIR/lyon-2"
printf '[server lyon-2]\nurl = smb://127.0.0.1:%s/dist/lyon-2\ncredentials = %s\nclasses = engines\n' \
  "$SMBD_PORT" "$tmp/cred" >>"$tmp/d.conf"
ds sync lyon-2 >"$tmp/out3" 2>&1
rc=$?
[ "$rc" = 4 ] || bad "sync to a folder that is a DFS link: exit $rc, want 4: $(cat "$tmp/out3")"
grep -q "directory lyon-2 does not exist in share dist" "$tmp/out3" ||
  bad "the failure does not name the folder: $(cat "$tmp/out3")"
grep -q "invalid frame header" "$tmp/out3" &&
  bad "libsmbclient wrote into the protocol stream: $(cat "$tmp/out3")"
grep -q "SMB worker for server lyon-2: Couldn't resolve" "$tmp/out3" ||
  bad "libsmbclient's message did not reach the console's stderr: $(cat "$tmp/out3")"
[ -z "$(ls -A "$SMBD_SHARE_DIR/real2")" ] || bad "written through the DFS link: $(ls -A "$SMBD_SHARE_DIR/real2")"
st_exit smb_reparse
