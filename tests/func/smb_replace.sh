#!/usr/bin/env bash
# The replace on an SMB share against a real smbd (tests/func/lib/smbd.bash):
#  - a reader hammers the share's backing directory while four syncs update
#    the files through smb://: every read is a whole known version (the
#    replace is delete + rename: a path may be absent for an instant, never
#    partial);
#  - a target file held open through SMB by another client (smbclient's
#    `open`, which does not share delete) refuses the replace: the file is
#    retried with backoff, then reported with the old version intact; once
#    the client lets go the next sync publishes it.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_replace
smbd_start "$tmp/smbd"
store=$tmp/store known=$tmp/known target=$SMBD_SHARE_DIR/r
smbd_creds "$tmp/cred"
mkdir -p "$target"
cat >"$tmp/d.conf" <<CONF
[console]
store = $store
state = $tmp/state
[server r]
url = smb://127.0.0.1:$SMBD_PORT/dist/r
credentials = $tmp/cred
classes = patches engines definitions
prune = yes
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }

st_gen "$store" 0 "$known" --files 14 --max 1536 || bad "mkstore"
ds scan >/dev/null 2>&1 || bad "scan"
ds sync r >/dev/null 2>"$tmp/err" || bad "first sync: $(head -c 400 "$tmp/err")"
st_check_converged "$store" "$target" "first sync"
cp -a "$store" "$tmp/stores.0"
for g in 1 2 3 4 5; do
  st_gen "$store" "$g" "$known" || bad "mkstore gen $g"
  cp -a "$store" "$tmp/stores.$g"
done
rm -rf "$store" && cp -a "$tmp/stores.0" "$store"
python3 "$DS_SRC/tests/func/lib/reader.py" "$known" "$tmp/stop" "$tmp/reader.out" "$target" &
rpid=$!
st_pids+=("$rpid")
for g in 1 2 3 4; do
  rm -rf "$store" && cp -a "$tmp/stores.$g" "$store"
  ds scan >/dev/null 2>&1 || bad "scan gen $g"
  ds sync r >/dev/null 2>"$tmp/err" || bad "sync gen $g: $(head -c 400 "$tmp/err")"
done
touch "$tmp/stop"
wait "$rpid"
read -r reads nbad <"$tmp/reader.out" || { reads=0 nbad=0; }
echo "reader: $reads whole-file reads, $nbad bad"
[ "${nbad:-1}" = 0 ] || bad "reader saw mixed or short files: $(tail -n +2 "$tmp/reader.out")"
[ "${reads:-0}" -ge 200 ] || bad "reader made only $reads reads: the test proves nothing"
st_check_converged "$store" "$target" "after 4 syncs"

# a target held open by another SMB client during the replace
rm -rf "$store" && cp -a "$tmp/stores.5" "$store"
ds scan >/dev/null 2>&1 || bad "scan gen 5"
held=$(cd "$store" && for f in $(find . -type f | sort); do
  cmp -s "$store/$f" "$target/$f" 2>/dev/null || [ ! -e "$target/$f" ] || { echo "${f#./}"; break; }
done)
[ -n "$held" ] || bad "generation 5 changes no existing file"
old=$(sha256sum <"$target/$held")
(echo "open r/$held"; sleep 10; echo quit) | smbd_client dist >"$tmp/holder.out" 2>&1 &
hpid=$!
st_pids+=("$hpid")
sleep 2 # smbclient's output is buffered: its open is checked when it ends
DISTSYNC_TEST_SMB_REPLACE_WAIT_MS=1500 ds sync r >"$tmp/out" 2>&1 && bad "the sync succeeded while $held was held open"
grep -q "$held: rename into place: " "$tmp/out" || bad "no failure named $held: $(cat "$tmp/out")"
grep -q 'replace retries' "$tmp/out" && ! grep -q ', 0 replace retries' "$tmp/out" ||
  bad "the replace was not retried: $(grep 'SMB worker' "$tmp/out")"
[ "$(sha256sum <"$target/$held")" = "$old" ] || bad "$held changed although its replace failed"
wait "$hpid" 2>/dev/null
grep -q 'open file' "$tmp/holder.out" || bad "smbclient did not open $held: $(cat "$tmp/holder.out")"
ds sync r >"$tmp/out" 2>&1 || bad "the sync after the holder let go: $(cat "$tmp/out")"
st_check_converged "$store" "$target" "after the holder let go"
st_exit smb_replace
