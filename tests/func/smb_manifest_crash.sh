#!/usr/bin/env bash
# A crash inside the manifest's replace over SMB (libsmbclient's rename
# over an existing file is delete + rename): the worker is stopped by a
# test hook (DISTSYNC_TEST_SMB_REPLACE_PAUSE=manifest) right after the
# delete of .distsync/manifest, before the rename of manifest.tmp, and
# killed -9 there. The next sync loads the complete manifest.tmp: it sends
# and adopts no file (before: an empty manifest, every file re-adopted),
# and status counts every file in sync. retries = 0: the run ends with the
# crash (a new worker within the run is smb_reconnect's).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_manifest_crash
smbd_start "$tmp/smbd"
store=$tmp/store known=$tmp/known target=$SMBD_SHARE_DIR/m
smbd_creds "$tmp/cred"
mkdir -p "$target"
url=smb://127.0.0.1:$SMBD_PORT/dist/m
cat >"$tmp/d.conf" <<CONF
[console]
store = $store
state = $tmp/state
[server m]
url = $url
credentials = $tmp/cred
classes = patches engines definitions
prune = yes
retries = 0
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }

st_gen "$store" 0 "$known" --files 6 --max 64 || bad "mkstore"
ds scan >/dev/null 2>&1 && ds sync m --force >/dev/null 2>"$tmp/err" || bad "first sync: $(cat "$tmp/err")"
st_check_converged "$store" "$target" "first sync"
[ -f "$target/.distsync/manifest" ] || bad "no manifest after the first sync"
st_gen "$store" 1 "$known" || bad "mkstore gen 1"
ds scan >/dev/null 2>&1 || bad "scan 1"
total=$(cd "$store" && find . -type f | wc -l)

DISTSYNC_TEST_SMB_REPLACE_PAUSE=manifest ds sync m --force >"$tmp/out" 2>&1 &
spid=$!
st_pids+=("$spid")
wpid="" gap=0
for _ in $(seq 400); do
  wpid=$(pgrep -f -- "smb-worker --url $url " | head -1 || true)
  if [ ! -e "$target/.distsync/manifest" ] && [ -s "$target/.distsync/manifest.tmp" ]; then
    gap=1
    break
  fi
  sleep 0.05
done
[ "$gap" = 1 ] && [ -n "$wpid" ] || bad "the worker ($wpid) never stopped between the manifest's delete and rename"
kill -9 "$wpid" 2>/dev/null
for _ in $(seq 200); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$spid" 2>/dev/null && bad "the sync did not end within 20 s of the worker's death"
wait "$spid" && bad "the sync succeeded although its worker was killed: $(cat "$tmp/out")"
[ ! -e "$target/.distsync/manifest" ] || bad "the manifest is there: the crash was not between delete and rename"
st_check_converged "$store" "$target" "files published before the manifest's replace"

ds sync m --json >"$tmp/s.json" 2>"$tmp/err" || bad "the sync after the crash: $(cat "$tmp/err")"
python3 - "$tmp/s.json" <<'PY' || bad "the sync after the crash did work again: $(cat "$tmp/s.json")"
import json, sys
s = json.load(open(sys.argv[1]))["servers"][0]
assert s["created"] == 0 and s["updated"] == 0 and s["adopted"] == 0 and s["deleted"] == 0, s
PY
[ -f "$target/.distsync/manifest" ] || bad "no manifest after the sync that followed the crash"
ds status m >"$tmp/st" 2>&1 || bad "status: $(cat "$tmp/st")"
grep -q "status m: .*$total in sync" "$tmp/st" || bad "status after the crash (want $total in sync): $(cat "$tmp/st")"
st_exit smb_manifest_crash
