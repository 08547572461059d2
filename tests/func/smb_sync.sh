#!/usr/bin/env bash
# distsync sync to smb:// servers against a real smbd (tests/func/lib/smbd.bash):
# two SMB servers in one run (one SMB worker each) get a full sync, then an
# update; the share's backing directories equal the store, nothing is left
# in .distsync/tmp, mtimes are the store's; status says in sync, history
# records the runs, and the worker's counters (its log line) show what it
# wrote. The password is on no worker's command line.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_sync
smbd_start "$tmp/smbd"
store=$tmp/store known=$tmp/known
smbd_creds "$tmp/cred"
mkdir -p "$SMBD_SHARE_DIR/a" "$SMBD_SHARE_DIR/b"
cat >"$tmp/d.conf" <<CONF
[console]
store = $store
state = $tmp/state
[server sa]
url = smb://127.0.0.1:$SMBD_PORT/dist/a
credentials = $tmp/cred
classes = patches engines definitions
prune = yes
[server sb]
url = smb://127.0.0.1:$SMBD_PORT/dist2/b
credentials = $tmp/cred
classes = patches engines definitions
prune = yes
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }

# watch_ps: records the command lines of SMB workers while a sync runs
watch_ps() {
  while [ ! -e "$tmp/ps.stop" ]; do
    ps -eo args | grep '[s]mb-worker' >>"$tmp/ps.out" || true
    sleep 0.05
  done
}

st_gen "$store" 0 "$known" --files 16 --max 3072 || bad "mkstore"
ds scan >/dev/null 2>&1 || bad "scan"
: >"$tmp/ps.out"
watch_ps &
st_pids+=($!)
ds sync sa sb >"$tmp/out" 2>"$tmp/err" || bad "first sync: $(cat "$tmp/out" "$tmp/err" | head -c 600)"
touch "$tmp/ps.stop"
wait "${st_pids[-1]}" 2>/dev/null
st_check_converged "$store" "$SMBD_SHARE_DIR/a" "first sync (sa)"
st_check_converged "$store" "$SMBD_SHARE_DIR/b" "first sync (sb)"
grep -q 'sync sa: ok, 16 files (16 new' "$tmp/out" || bad "sa: $(cat "$tmp/out")"
grep -q 'sync sb: ok, 16 files (16 new' "$tmp/out" || bad "sb: $(cat "$tmp/out")"
[ "$(grep -c 'SMB worker for server s[ab]: wrote' "$tmp/err")" = 2 ] ||
  bad "not one SMB worker per server: $(cat "$tmp/err")"
grep -q -- '--url smb://127.0.0.1:'"$SMBD_PORT"'/dist/a' "$tmp/ps.out" ||
  bad "no SMB worker seen in ps for sa: $(head -3 "$tmp/ps.out")"
if grep -qF "$SMBD_PASSWORD" "$tmp/ps.out" "$tmp/out" "$tmp/err"; then
  bad "the password is on a command line or in the output"
fi
# mtimes are the store's (set after SMB's close-time update)
f=$(cd "$store" && find . -type f | head -1)
[ "$(stat -c %Y "$store/$f")" = "$(stat -c %Y "$SMBD_SHARE_DIR/a/$f")" ] ||
  bad "mtime of $f: store $(stat -c %Y "$store/$f"), share $(stat -c %Y "$SMBD_SHARE_DIR/a/$f")"

ds status sa sb >"$tmp/st" 2>&1 || bad "status: $(cat "$tmp/st")"
grep -q 'status sa: .*16 in sync' "$tmp/st" || bad "status sa: $(cat "$tmp/st")"
grep -q 'status sb: .*16 in sync' "$tmp/st" || bad "status sb: $(cat "$tmp/st")"

# an update: changed, new and deleted files
st_gen "$store" 1 "$known" || bad "mkstore gen 1"
ds scan >/dev/null 2>&1 || bad "scan 1"
ds plan sa >"$tmp/plan" 2>&1 || bad "plan: $(cat "$tmp/plan")"
grep -qi 'update\|create' "$tmp/plan" || bad "plan shows no work: $(cat "$tmp/plan")"
ds sync sa sb >"$tmp/out" 2>"$tmp/err" || bad "update sync: $(cat "$tmp/out" "$tmp/err" | head -c 600)"
st_check_converged "$store" "$SMBD_SHARE_DIR/a" "update (sa)"
st_check_converged "$store" "$SMBD_SHARE_DIR/b" "update (sb)"
ds sync sa >"$tmp/out" 2>&1 || bad "third sync: $(cat "$tmp/out")"
grep -q 'sync sa: ok, 0 files' "$tmp/out" || bad "a sync with nothing to do sent files: $(cat "$tmp/out")"
ds history >"$tmp/hist" 2>&1 || bad "history: $(cat "$tmp/hist")"
[ "$(grep -c ' sa .* ok ' "$tmp/hist")" -ge 3 ] || bad "history: $(cat "$tmp/hist")"
st_exit smb_sync
