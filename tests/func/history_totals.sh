#!/usr/bin/env bash
# Issue 7 item 6: history records what the run did. After each sync (new
# files, then updates + a new file + a prune, then a lost manifest whose
# files are adopted), `history --json` gives the same totals as `sync --json`
# (created; updated, adopted included; deleted; failed; bytes on the wire,
# literal and copied), the per-file events agree with those counts, and the
# run's end event carries its byte totals. Both receivers: in-process, agent.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init history_totals
store=$tmp/store known=$tmp/known
st_conf "$tmp/d.conf" "$store" "$tmp/state" one "file://$tmp/t1" local two "file://$tmp/t2" agent
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
mkdir -p "$tmp/t1" "$tmp/t2"

# compare WHAT: the last `sync --json` ($tmp/s.json) against history.
compare() {
  ds history --json --events --limit 2 >"$tmp/h.json" 2>"$tmp/err" || bad "$1: history: $(cat "$tmp/err")"
  python3 - "$tmp/s.json" "$tmp/h.json" "$1" <<'PY' || fail=1
import json, sys
s, h, what = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
runs = {r["server"]: r for r in h}
errs = []
for srv in s["servers"]:
    r = runs[srv["server"]]
    pairs = [("created", "files_created"), ("updated", "files_updated"), ("deleted", "files_deleted"),
             ("failed_files", "files_failed"), ("bytes_wire", "bytes_wire"),
             ("bytes_literal", "bytes_literal"), ("bytes_copied", "bytes_copied")]
    for a, b in pairs:
        if srv[a] != r[b]:
            errs.append(f"{srv['server']}: sync {a}={srv[a]}, history {b}={r[b]}")
    files = [e for e in r["events"] if e["kind"] == "file"]
    n = lambda *o: sum(1 for e in files if e["outcome"] in o)
    if n("created") != srv["created"] or n("updated", "adopted") != srv["updated"] \
            or n("adopted") != srv["adopted"]:
        errs.append(f"{srv['server']}: file events {[e['outcome'] for e in files][:10]} vs sync {srv}")
    if sum(1 for e in r["events"] if e["kind"] == "delete" and e["outcome"] == "deleted") != srv["deleted"]:
        errs.append(f"{srv['server']}: delete events disagree with deleted={srv['deleted']}")
    end = [e for e in r["events"] if e["kind"] == "end"]
    if len(end) != 1 or (end[0]["bytes_literal"], end[0]["bytes_copied"], end[0]["bytes_wire"]) != \
            (r["bytes_literal"], r["bytes_copied"], r["bytes_wire"]):
        errs.append(f"{srv['server']}: end event {end} does not carry the run's bytes {r}")
if errs:
    print(f"FAIL: {what}: " + "; ".join(errs), file=sys.stderr)
    sys.exit(1)
PY
}

st_gen "$store" 0 "$known" --files 20 --max 256 || bad "mkstore"
ds scan >/dev/null 2>&1 || bad "scan"
ds sync one two --json >"$tmp/s.json" 2>"$tmp/err" || bad "sync 1: $(cat "$tmp/err")"
compare "first sync"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert all(x["created"] == 20 and x["bytes_wire"] > 0 for x in s["servers"]), s' \
  "$tmp/s.json" || bad "first sync did not create 20 files"

# updates, one new file, one removed (prune = yes)
st_gen "$store" 1 "$known" --files 20 --max 256 || bad "mkstore 1"
echo "new" >"$store/patches/zz-new.txt"
victim=$(cd "$store" && find patches engines definitions -type f | sort | head -1)
rm -f "$store/$victim"
ds scan >/dev/null 2>&1 || bad "scan 2"
ds sync one two --json >"$tmp/s.json" 2>"$tmp/err" || bad "sync 2: $(cat "$tmp/err")"
compare "updates and a prune"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert all(x["created"] >= 1 and x["updated"] >= 1 and x["deleted"] == 1 for x in s["servers"]), s' \
  "$tmp/s.json" || bad "second sync: want creates, updates and one delete: $(cat "$tmp/s.json")"

# a lost manifest: every file is adopted in place
rm -f "$tmp/t1/.distsync/manifest" "$tmp/t2/.distsync/manifest"
ds sync one two --json >"$tmp/s.json" 2>"$tmp/err" || bad "sync 3: $(cat "$tmp/err")"
compare "adopted files"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert all(x["adopted"] > 0 and x["adopted"] == x["updated"] and x["created"] == 0 for x in s["servers"]), s' \
  "$tmp/s.json" || bad "third sync: want only adopted files: $(cat "$tmp/s.json")"
# the text forms say the same
ds history --limit 1 >"$tmp/h.txt"
n=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["servers"][1]; print("%d/%d/%d/%d" % (s["created"], s["updated"], s["deleted"], s["failed_files"]))' "$tmp/s.json")
grep -q " $n " "$tmp/h.txt" || bad "history text lacks c/u/d/f $n: $(cat "$tmp/h.txt")"
st_exit history_totals
