#!/usr/bin/env bash
# Full disk on the target: two target roots (transport=local and agent)
# share a small tmpfs (12 MiB). A
# file whose new version does not fit fails; its old version stays intact;
# the other files still sync; the failure is in the sync summary (JSON and
# exit status) and in the history. Skips (exit 0, with the reason) when
# tmpfs cannot be mounted (not root, no CAP_SYS_ADMIN).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_fulldisk
t=$tmp/target
mkdir -p "$t"
if ! mount -t tmpfs -o size=12m distsync-test "$t" 2>"$tmp/merr"; then
  echo "SKIP: sync_fulldisk: cannot mount a tmpfs: $(cat "$tmp/merr")"
  exit 0
fi
trap 'st_cleanup; umount "$t" 2>/dev/null; [ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"' EXIT
store=$tmp/store
mkdir -p "$store/patches" "$store/definitions"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$store/patches/big.bin"
for i in 1 2 3; do head -c $((256 * 1024)) /dev/urandom >"$store/definitions/d$i.dat"; done
st_conf "$tmp/d.conf" "$store" "$tmp/state" full "file://$t/loc" local full-ag "file://$t/ag" agent
# a few files: 10% (the default max_delete) would hold every deletion back
sed -i '/^\[console\]/a max_delete = 100%' "$tmp/d.conf"
mkdir -p "$t/loc" "$t/ag"

ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan"
ds sync full full-ag --json >"$tmp/out" 2>"$tmp/err" || bad "first sync: $(head -c 400 "$tmp/err")"
st_check_converged "$store" "$t/loc" "first sync (local)"
st_check_converged "$store" "$t/ag" "first sync (agent)"
old_big=$(sha256sum <"$store/patches/big.bin")

# New versions: big.bin grows to 5 MiB (2 x 4.75 MiB used + 5 > 12: no room),
# the definitions change and a new small file appears.
head -c $((5 * 1024 * 1024)) /dev/urandom >"$store/patches/big.bin"
for i in 1 2 3; do head -c $((256 * 1024)) /dev/urandom >"$store/definitions/d$i.dat"; done
mkdir -p "$store/engines" && head -c 1000 /dev/urandom >"$store/engines/new.bin"
ds scan >/dev/null 2>&1 || bad "rescan"
for srv in full full-ag; do
  r=$t/loc
  [ $srv = full-ag ] && r=$t/ag
  rc=0
  ds sync $srv --json >"$tmp/out" 2>"$tmp/err.$srv" || rc=$?
  [ $rc = 1 ] || bad "$srv: sync onto a full disk exited $rc, want 1: $(head -c 400 "$tmp/err.$srv")"
  [ "$(sha256sum <"$r/patches/big.bin")" = "$old_big" ] || bad "$srv: the old big.bin was not kept intact"
  for f in definitions/d1.dat definitions/d2.dat definitions/d3.dat engines/new.bin; do
    cmp -s "$store/$f" "$r/$f" || bad "$srv: $f did not sync although it fits"
  done
  [ -z "$(find "$r/.distsync/tmp" -mindepth 1 -print -quit 2>/dev/null)" ] ||
    bad "$srv: files left in .distsync/tmp after the failure"
  python3 - "$tmp/out" $srv "$tmp/err.$srv" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
s = [x for x in d["servers"] if x["server"] == sys.argv[2]]
if not s:
    sys.exit("FAIL: summary has no entry for server %s: %r" % (sys.argv[2], d))
s = s[0]
if s.get("failed_files", 0) < 1:
    sys.exit("FAIL: summary does not count the failed file: %r" % s)
if s.get("status") == "ok":
    sys.exit("FAIL: summary status is ok despite a failed file: %r" % s)
txt = json.dumps(s).lower() + open(sys.argv[3]).read().lower()
if "big.bin" not in txt:
    sys.exit("FAIL: neither the summary nor stderr names the failed file: %r" % s)
if "space" not in txt:
    sys.exit("FAIL: neither the summary nor stderr gives the cause (no space): %r" % s)
PY
  ds history --server $srv --events --json >"$tmp/hist" 2>"$tmp/herr" || bad "history: $(cat "$tmp/herr")"
  python3 - "$tmp/hist" <<'PY' || fail=1
import json, sys
runs = json.load(open(sys.argv[1]))
if len(runs) < 2:
    sys.exit(f"FAIL: history shows {len(runs)} runs, want 2")
last = runs[0]
if last["status"] != "failed" or last["files_failed"] < 1:
    sys.exit(f"FAIL: history: last run is {last['status']} with {last['files_failed']} failed files")
ev = [e for e in last.get("events", []) if e["outcome"] == "failed" and (e["path"] or "").endswith("big.bin")]
if not ev:
    sys.exit("FAIL: history: no failed event for patches/big.bin: %r" % last.get("events"))
PY
done
# Room again (the big file is dropped from the store): the rerun converges.
rm "$store/patches/big.bin"
ds scan >/dev/null 2>"$tmp/scan.err" || bad "scan after rm: $(head -c 600 "$tmp/scan.err")"
ds sync full full-ag >/dev/null 2>"$tmp/err" || bad "sync after freeing space: $(head -c 400 "$tmp/err")"
st_check_converged "$store" "$t/loc" "after freeing space (local)"
st_check_converged "$store" "$t/ag" "after freeing space (agent)"
st_exit "sync_fulldisk"
