#!/usr/bin/env bash
# distsync history and gc after real syncs: runs newest first with their
# totals and per-file events (--json, --server, --limit, --events, text);
# gc keeps every version a server references (each target file's SHA-256 is
# still retained after gc), is idempotent, and reports space as JSON.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init history_gc
store=$tmp/store known=$tmp/known
st_conf "$tmp/d.conf" "$store" "$tmp/state" one "file://$tmp/t1" local two "file://$tmp/t2" agent
# a 9-file store: 10% (the default max_delete) would hold every deletion back
sed -i '/^\[console\]/a max_delete = 100%' "$tmp/d.conf"
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
mkdir -p "$tmp/t1" "$tmp/t2"
st_gen "$store" 0 "$known" --files 9 --max 512 || bad "mkstore"
ds scan >/dev/null 2>&1 || bad "scan"
ds sync one two >/dev/null 2>"$tmp/err" || bad "sync 1: $(head -c 300 "$tmp/err")"
st_gen "$store" 1 "$known" || bad "mkstore 1"
ds scan >/dev/null 2>&1 || bad "scan 1"
ds sync one >/dev/null 2>"$tmp/err" || bad "sync 2: $(head -c 300 "$tmp/err")"
st_check_converged "$store" "$tmp/t1" "one"

ds history --json --events >"$tmp/h.json" 2>"$tmp/err" || bad "history --json: $(cat "$tmp/err")"
python3 - "$tmp/h.json" <<'PY' || fail=1
import json, sys
runs = json.load(open(sys.argv[1]))
need = {"id", "server", "trigger", "started_at", "ended_at", "duration_s", "status", "files_created",
        "files_updated", "files_deleted", "files_failed", "bytes_wire", "bytes_literal",
        "bytes_copied", "error", "events"}
assert len(runs) == 3, f"FAIL: {len(runs)} runs, want 3"
for r in runs:
    assert need <= set(r), f"FAIL: run lacks {need - set(r)}"
    assert r["status"] == "ok" and r["trigger"] == "manual", r
assert [r["id"] for r in runs] == sorted((r["id"] for r in runs), reverse=True), "FAIL: not newest first"
assert runs[0]["server"] == "one", runs[0]
assert runs[0]["files_updated"] + runs[0]["files_created"] >= 1, runs[0]
assert runs[0]["bytes_wire"] > 0, runs[0]
first = [r for r in runs if r["server"] == "one"][-1]
assert first["files_created"] == 9, f"FAIL: first sync created {first['files_created']}, want 9"
kinds = [e["kind"] for e in first["events"]]
assert kinds[0] == "start" and kinds[-1] == "end", kinds
files = [e for e in first["events"] if e["kind"] == "file" and e["outcome"] == "created"]
assert len(files) == 9, f"FAIL: {len(files)} created-file events, want 9"
assert sum(e["bytes_wire"] for e in files) <= first["bytes_wire"], "FAIL: file bytes exceed the run's"
PY
n=$(ds history --server two --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 1 ] || bad "history --server two: $n runs, want 1"
n=$(ds history --limit 2 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 2 ] || bad "history --limit 2: $n runs"
ds history --events >"$tmp/h.txt" || bad "history (text) failed"
grep -q "^ID .*SERVER" "$tmp/h.txt" || bad "history text has no header"
[ "$(grep -c ' ok ' "$tmp/h.txt")" -ge 3 ] || bad "history text lacks the 3 ok runs: $(cat "$tmp/h.txt")"
ds history --server nobody | grep -q "no runs recorded" || bad "history of an unknown server"
ds history --limit x 2>/dev/null && bad "history --limit x accepted"

ds gc --json >"$tmp/gc1" 2>"$tmp/err" || bad "gc: $(cat "$tmp/err")"
ds gc --json >"$tmp/gc2" 2>"$tmp/err" || bad "gc (again): $(cat "$tmp/err")"
python3 - "$tmp/gc1" "$tmp/gc2" "$tmp/t1" "$tmp/t2" <<'PY' || fail=1
import hashlib, json, os, sys
g1, g2 = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for k in ("retained_versions", "stored_bytes", "logical_bytes", "freed_bytes", "delta_cache_bytes",
          "referenced_versions"):
    assert k in g1, f"FAIL: gc --json lacks {k}: {g1}"
assert g2["freed_bytes"] == 0 and g2["freed_versions"] == 0, f"FAIL: gc not idempotent: {g2}"
shas = set()
for root in sys.argv[3:]:
    for r, ds, fs in os.walk(root):
        ds[:] = [d for d in ds if d != ".distsync"]
        for f in fs:
            shas.add(hashlib.sha256(open(os.path.join(r, f), "rb").read()).hexdigest())
assert g1["referenced_versions"] >= len(shas), f"FAIL: {len(shas)} versions on targets, gc saw {g1['referenced_versions']} referenced"
assert g1["retained_versions"] >= len(shas), f"FAIL: {len(shas)} versions on targets, {g1['retained_versions']} retained"
assert g1["logical_bytes"] >= g1["stored_bytes"] // 2, g1
PY
ds gc >"$tmp/gc.txt" || bad "gc (text)"
grep -q "retained versions:" "$tmp/gc.txt" || bad "gc text output: $(cat "$tmp/gc.txt")"
# The retained versions still serve as delta bases: the server holding the
# old version converges after gc.
ds sync two >/dev/null 2>"$tmp/err" || bad "sync after gc: $(head -c 300 "$tmp/err")"
st_check_converged "$store" "$tmp/t2" "two after gc"
st_exit "history_gc"
