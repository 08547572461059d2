#!/usr/bin/env bash
# Issue 7 item 5: an unreadable store file is a scan error, never silently
# absent. As an unprivileged user (root runs the commands as 'nobody' with
# setpriv, on a store and state that user owns), scan names the file, counts
# it as unreadable (the catalog row count agrees with 'files'), and exits 23;
# status lists it as "unreadable in the store"; sync ships the rest, fails
# that file (exit 1), and does not prune it from a server that already has
# it, even with prune = yes. Once readable again it ships.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
# 'nobody' must reach the test directory and the binary (a private build
# tree: fall back to /tmp and a copy of the binary)
if [ "$(id -u)" = 0 ] && ! "${as_nobody[@]}" test -x "${DS_TEST_TMP:-/tmp}" 2>/dev/null; then
  DS_TEST_TMP=/tmp
fi
st_init scan_unreadable
if [ "$(id -u)" = 0 ] && ! "${as_nobody[@]}" test -x "$DISTSYNC" 2>/dev/null; then
  cp "$DISTSYNC" "$tmp/distsync" && DISTSYNC=$tmp/distsync
fi
chmod 755 "$tmp"
store=$tmp/store
st_conf "$tmp/d.conf" "$store" "$tmp/state" one "file://$tmp/t1" local two "file://$tmp/t2" agent
mkdir -p "$tmp/t1" "$tmp/t2" "$store/patches" "$store/engines" "$store/definitions"
for f in a b c; do echo "content $f" >"$store/patches/$f.msu"; done
echo eng >"$store/engines/e.bin"
echo def >"$store/definitions/d.dat"
as_user=()
if [ "$(id -u)" = 0 ]; then
  chown -R nobody:nogroup "$tmp"
  as_user=("${as_nobody[@]}")
fi
# the tmp dir's parents must be searchable by that user
"${as_user[@]}" test -r "$store/patches/a.msu" || { bad "$tmp is not reachable as nobody"; st_exit scan_unreadable; }
ds() { "${as_user[@]}" "$DISTSYNC" -c "$tmp/d.conf" "$@"; }

# 1. a new file that cannot be read
chmod 000 "$store/patches/c.msu"
ds scan --json >"$tmp/scan.json" 2>"$tmp/scan.err"
rc=$?
[ $rc = 23 ] || bad "scan with an unreadable file exited $rc, want 23: $(cat "$tmp/scan.err")"
grep -q "error: patches/c.msu: unreadable.*Permission denied" "$tmp/scan.err" ||
  bad "scan did not name the unreadable file: $(cat "$tmp/scan.err")"
grep -q "previous entry kept" "$tmp/scan.err" && bad "scan claims a previous entry: $(cat "$tmp/scan.err")"
ds files --json >"$tmp/files.json" || bad "files"
python3 - "$tmp/scan.json" "$tmp/files.json" <<'PY' || fail=1
import json, sys
s, f = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert s["files"] == 5 and s["unreadable"] == 1, f"FAIL: scan summary {s}"
assert len(f) == s["files"], f"FAIL: scan counted {s['files']} files, the catalog holds {len(f)}"
u = [x["path"] for x in f if x["unreadable"]]
assert u == ["patches/c.msu"], f"FAIL: unreadable rows {u}"
PY
rc=0
ds status --json >"$tmp/st.json" 2>/dev/null || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 6 ] || bad "status exit $rc (0 in sync or 6 pending expected)"
ds status >"$tmp/st.txt" 2>/dev/null
python3 - "$tmp/st.json" <<'PY' || fail=1
import json, sys
for srv in json.load(open(sys.argv[1])):
    assert [x["path"] for x in srv["unreadable"]] == ["patches/c.msu"], f"FAIL: status {srv}"
    assert srv["counts"]["unreadable"] == 1 and srv["counts"]["missing"] == 4, f"FAIL: status {srv}"
PY
grep -q "unreadable in the store" "$tmp/st.txt" || bad "status text: $(cat "$tmp/st.txt")"
ds sync one two >"$tmp/sync.out" 2>"$tmp/sync.err"
rc=$?
[ $rc = 4 ] || bad "sync with an unreadable store file exited $rc, want 4"
grep -q "patches/c.msu: unreadable in the store" "$tmp/sync.err" || bad "sync did not name it: $(cat "$tmp/sync.err")"
for t in t1 t2; do
  [ -f "$tmp/$t/patches/a.msu" ] && [ -f "$tmp/$t/patches/b.msu" ] || bad "$t: the readable files did not ship"
done
# everything else shipped: status still reports work pending (exit 6), since
# the servers lack the file and every sync fails until a scan can read it
ds status one two >/dev/null 2>&1
rc=$?
[ $rc = 6 ] || bad "status with only an unreadable store file outstanding exited $rc, want 6"

# 2. readable again: it ships
chmod 644 "$store/patches/c.msu"
ds scan >/dev/null 2>&1 || bad "scan after chmod 644 exited $?"
ds sync one two >/dev/null 2>"$tmp/err" || bad "sync after the fix: $(cat "$tmp/err")"
st_check_converged "$store" "$tmp/t1" "one"
st_check_converged "$store" "$tmp/t2" "two"

# 3. a shipped file becomes unreadable (chmod keeps its mtime), then is
#    rewritten: servers keep the version they have (prune = yes)
chmod 000 "$store/patches/c.msu"
ds scan >/dev/null 2>"$tmp/err"
rc=$?
[ $rc = 23 ] || bad "scan of an unchanged but unreadable file exited $rc, want 23: $(cat "$tmp/err")"
echo "content c2" >"$store/patches/c.msu" # root writes it; still mode 000
ds scan >/dev/null 2>&1
[ $? = 23 ] || bad "scan of a rewritten unreadable file did not exit 23"
ds sync one two >/dev/null 2>"$tmp/err"
[ $? = 4 ] || bad "sync did not fail on the unreadable file"
for t in t1 t2; do
  [ "$(cat "$tmp/$t/patches/c.msu" 2>/dev/null)" = "content c" ] || bad "$t lost patches/c.msu (pruned or emptied)"
done
# 4. a directory that cannot be read hides a new file: also a scan error
chmod 644 "$store/patches/c.msu"
mkdir -p "$store/engines/locked"
echo hidden >"$store/engines/locked/new.bin"
chown -R --reference="$store/patches/a.msu" "$store/engines/locked"
chmod 000 "$store/engines/locked"
ds scan >/dev/null 2>"$tmp/err"
rc=$?
[ $rc = 23 ] || bad "scan with an unreadable directory exited $rc, want 23: $(cat "$tmp/err")"
grep -q "error: engines/locked: directory cannot be read.*Permission denied" "$tmp/err" ||
  bad "scan did not name the unreadable directory: $(cat "$tmp/err")"
chmod 755 "$store/engines/locked"
ds scan >/dev/null 2>&1 || bad "scan after the directory is readable again exited $?"
ds sync one two >/dev/null 2>"$tmp/err" || bad "sync after every fix: $(cat "$tmp/err")"
st_check_converged "$store" "$tmp/t1" "one, at the end"

ds history --json --events --limit 3 >"$tmp/h.json" 2>/dev/null
python3 - "$tmp/h.json" <<'PY' || fail=1
import json, sys
r = [x for x in json.load(open(sys.argv[1])) if x["status"] == "failed"][0]
assert r["files_failed"] == 1 and r["files_deleted"] == 0, f"FAIL: run {r}"
PY
st_exit scan_unreadable
