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
trap 'st_cleanup; umount "$t" "$tmp/full-agent" "$tmp/full-local" 2>/dev/null; [ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"' EXIT
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
  [ $rc = 4 ] || bad "$srv: sync onto a full disk exited $rc, want 4: $(head -c 400 "$tmp/err.$srv")"
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

# Part 2, a 20 MiB tmpfs per transport, filled to the last block:
#  - status puts every file in exactly one category (the counts add up to
#    the total), also when published files are missing from the manifest;
#  - errors name ENOSPC and the path (tmp file, manifest), and the lease is
#    not refused;
#  - a full target can still be pruned, and a rerun then converges.
# status_sum JSON WHAT [KEY=N...]: categories add up to the total (and KEY==N)
status_sum() {
  python3 - "$@" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))[0]
c = d["counts"]
cats = ("missing", "outdated", "drifted", "unrecorded", "extra", "in_sync")
s = sum(c.get(k, 0) for k in cats)
if "total" not in c or s != c["total"]:
    sys.exit(f"FAIL: {sys.argv[2]}: status categories sum to {s}, total {c.get('total')}: {c}")
for kv in sys.argv[3:]:
    k, v = kv.split("=")
    if c.get(k) != int(v):
        sys.exit(f"FAIL: {sys.argv[2]}: status counts {k}={c.get(k)}, want {v}: {c}")
PY
}
fill() { # fill DIR: takes every free block of DIR's file system
  dd if=/dev/zero of="$1/filler.bin" bs=64k 2>/dev/null
  dd if=/dev/zero of="$1/filler2.bin" bs=1k 2>/dev/null
}
store2=$tmp/store2
python3 - "$store2" <<'PY'
import os, random, sys
r = random.Random(5)
for i in range(160):
    d = os.path.join(sys.argv[1], ("patches", "engines", "definitions")[i % 3])
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "f%03d.bin" % i), "wb").write(r.randbytes(100 * 1024))
PY
for tr in agent local; do
  t2=$tmp/full-$tr s2=full2-$tr
  mkdir -p "$t2"
  if ! mount -t tmpfs -o size=20m "distsync-test-$tr" "$t2" 2>"$tmp/merr"; then
    bad "cannot mount the second tmpfs: $(cat "$tmp/merr")"
    continue
  fi
  rm -rf "$tmp/st2-$tr" "$tmp/store2-$tr"
  cp -a "$store2" "$tmp/store2-$tr"
  s2d=$tmp/store2-$tr
  st_conf "$tmp/$s2.conf" "$s2d" "$tmp/st2-$tr" $s2 "file://$t2/root" $tr
  d2() { "$DISTSYNC" -c "$tmp/$s2.conf" "$@"; }
  mkdir -p "$t2/root"
  d2 scan >/dev/null 2>&1 || bad "$tr: scan store2"
  d2 sync $s2 >/dev/null 2>"$tmp/e0" || bad "$tr: sync of 16 MiB onto 20 MiB: $(head -c 300 "$tmp/e0")"
  # published and verified files the manifest does not record (its write
  # failed): each is in exactly one category
  rm -f "$t2/root/.distsync/manifest"
  rc=0
  d2 status --json >"$tmp/st.json" 2>"$tmp/st.err" || rc=$?
  [ "$rc" = 6 ] || bad "$tr: status of unrecorded files: exit $rc, want 6 (work pending): $(head -c 300 "$tmp/st.err")"
  status_sum "$tmp/st.json" "$tr: files missing from the manifest" unrecorded=160 total=160
  d2 status >"$tmp/st.txt" 2>&1
  grep -q "160 unrecorded .* 160 files" "$tmp/st.txt" || bad "$tr: status text: $(head -1 "$tmp/st.txt")"
  d2 sync $s2 >/dev/null 2>"$tmp/e1" || bad "$tr: sync recording the files: $(head -c 300 "$tmp/e1")"
  d2 status --json >"$tmp/st.json" 2>/dev/null
  status_sum "$tmp/st.json" "$tr: after recording" in_sync=160

  # the disk is full: a grown file cannot be written
  fill "$t2/root"
  head -c 300000 /dev/urandom >"$s2d/patches/f000.bin"
  d2 scan >/dev/null 2>&1
  rc=0
  d2 sync $s2 >"$tmp/o2" 2>"$tmp/e2" || rc=$?
  [ $rc = 4 ] || bad "$tr: sync onto a full disk exited $rc, want 4"
  grep -q "\.distsync/tmp/.*No space left on device" "$tmp/e2" "$tmp/o2" ||
    bad "$tr: the failed tmp write does not name its path and ENOSPC: $(head -c 600 "$tmp/e2")"
  grep -q "\.distsync/manifest: cannot write: No space left on device" "$tmp/e2" "$tmp/o2" ||
    bad "$tr: the failed manifest write does not name its path and ENOSPC: $(head -c 600 "$tmp/e2")"
  ! grep -qi "cannot write the lease\|lease: " "$tmp/o2" ||
    bad "$tr: the lease was refused on a full disk: $(cat "$tmp/o2")"
  d2 status --json >"$tmp/st.json" 2>/dev/null
  status_sum "$tmp/st.json" "$tr: after ENOSPC" outdated=1 total=160

  # prune frees space although the disk is full; the rerun then converges
  for i in $(seq 100 159); do rm -f "$s2d"/*/f$i.bin; done
  d2 scan >/dev/null 2>&1
  d2 sync $s2 --force --json >"$tmp/o3" 2>"$tmp/e3" # 60 of 160: over max_delete
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["servers"][0]; sys.exit(0 if s["deleted"] == 60 else "FAIL: %s" % s)' \
    "$tmp/o3" || bad "$tr: a full target was not pruned: $(head -c 400 "$tmp/e3") $(head -c 400 "$tmp/o3")"
  d2 sync $s2 >/dev/null 2>"$tmp/e4" || bad "$tr: rerun after the prune: $(head -c 400 "$tmp/e4")"
  for c in patches engines definitions; do
    diff -r "$s2d/$c" "$t2/root/$c" >/dev/null || bad "$tr: $c differs from the store after the prune and rerun"
  done
  d2 status --json >"$tmp/st.json" 2>/dev/null
  status_sum "$tmp/st.json" "$tr: after the prune" in_sync=100 total=100
  umount "$t2"
done
st_exit "sync_fulldisk"
