#!/usr/bin/env bash
# Large files and renames (issue 9, "What must hold"):
#  1. A file larger than one zpatch window (DS_ZPATCH_WINDOW, 64 MiB): 80
#     MiB rebuilt in place (a byte changed every 4 KiB: no 64 KiB chunk in
#     common, so no COPY record) goes as a zpatch of several segments, each
#     a ZSTD or BSDIFF record (stream version 2, the local receiver's; an
#     80 MiB basis is over the BSDIFF limit, so ZSTD today) with its own
#     basis range inside the basis and at most 64 MiB long, the segments
#     covering the file (the cached .zpb or .zpd is parsed); it rebuilds
#     exactly and costs under 1% of the file on the wire.
#  2. Renamed files: a definitions file under a new, unrelated name with
#     small edits finds its basis by chunk overlap; a rebuilt library under
#     a new version name (libbig.so.7.1 -> libbig.so.7.2, no chunk in
#     common, another file in the folder) finds it by the closest name.
#     Both go as small deltas, and every target file equals the store.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init sync_zpatch_big
store=$tmp/store target=$tmp/t conf=$tmp/b.conf
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
gen() { # gen OUT SEED MIB REBUILT: pseudo-random; REBUILT=1 changes a byte every 4 KiB
  python3 - "$@" <<'PY'
import random, sys
out, seed, mib, rebuilt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
b = bytearray(random.Random(seed).randbytes(mib << 20))
if rebuilt:
    b[100::4096] = bytes(x ^ 0xA5 for x in b[100::4096])
open(out, "wb").write(b)
PY
}
gen "$store/engines/big.bin" 1 80 0
gen "$store/engines/libbig.so.7.1" 2 6 0
gen "$store/engines/other.bin" 3 6 0
gen "$store/definitions/url-2026-11-22.dat" 4 8 0
en_head "$conf" "$store" "$tmp/state" "delta_level = 3"
en_server "$conf" t "$target" local "max_delete = 100%"
st_full_deltas "$conf"
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds scan >/dev/null 2>&1 && ds sync t >/dev/null 2>&1 || bad "first sync"
wire() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["servers"][0]["bytes_wire"])' "$1" 2>/dev/null || echo -1; }

# 1. the large file, rebuilt in place
gen "$store/engines/big.bin" 1 80 1
ds scan >/dev/null 2>&1 || bad "scan (big)"
ds sync t --json >"$tmp/big.json" 2>"$tmp/big.err" || bad "sync (big): $(head -c 300 "$tmp/big.err")"
w=$(wire "$tmp/big.json")
python3 - "$tmp/state/deltas" $((80 << 20)) >"$tmp/recs" <<'PY'
import glob, struct, sys
d, size = sys.argv[1], int(sys.argv[2])
# every record: kind, basis_off, basis_len, target bytes it makes
for path in glob.glob(d + "/*.zpd") + glob.glob(d + "/*.zpb"):
    z = open(path, "rb").read()
    if z[:4] != b"DSZP" or struct.unpack(">Q", z[8:16])[0] != size:
        continue
    o, recs = 16, []
    while z[o] != 0:
        if z[o] == 1:
            boff, blen, raw, comp = struct.unpack(">QQII", z[o + 1:o + 25])
            recs.append(("ZSTD", boff, blen, raw))
            o += 25 + comp
        elif z[o] == 3:
            boff, blen, raw, cl, cc, el, ec, dc = struct.unpack(">QQIIIIII", z[o + 1:o + 41])
            recs.append(("BSDIFF", boff, blen, raw))
            o += 42 + cc + ec + dc
        elif z[o] == 2:
            boff, n = struct.unpack(">QQ", z[o + 1:o + 17])
            recs.append(("COPY", boff, n, n))
            o += 17
        else:
            sys.exit(f"{path}: unknown record kind {z[o]} at {o}")
    print("FILE", path[-3:], z[4], len(recs))
    for r in recs:
        print(*r)
PY
nfile=$(grep -c '^FILE' "$tmp/recs")
nz=$(grep -c '^ZSTD' "$tmp/recs") nbs=$(grep -c '^BSDIFF' "$tmp/recs") ncopy=$(grep -c '^COPY' "$tmp/recs")
nseg=$((nz + nbs))
echo "  80 MiB rebuilt: $w bytes on the wire; zpatch ($(awk '$1 == "FILE" {printf "%s, stream version %d", $2, $3}' "$tmp/recs")):" \
  "$nz ZSTD + $nbs BSDIFF records (basis ranges: $(awk '$1 == "ZSTD" || $1 == "BSDIFF" {printf "%d+%d ", $2 / 1048576, $3 / 1048576}' "$tmp/recs")MiB), $ncopy COPY"
[ "$nfile" = 1 ] || bad "want one cached zpatch of the 80 MiB file, found $nfile"
[ "$nseg" -ge 3 ] || bad "want the 80 MiB file in at least 3 segments, got $nz ZSTD + $nbs BSDIFF records"
[ "$ncopy" = 0 ] || bad "a rebuild shares no chunk, yet $ncopy COPY records"
awk -v n=$((80 << 20)) -v win=$((64 << 20)) '($1 == "ZSTD" || $1 == "BSDIFF") && ($2 + $3 > n || $3 > win || $3 == 0) {bad = 1} END {exit bad}' "$tmp/recs" ||
  bad "a segment's basis range is empty, over 64 MiB or outside the basis: $(head -5 "$tmp/recs")"
[ "$(awk '$1 == "ZSTD" || $1 == "BSDIFF" {print $2}' "$tmp/recs" | sort -u | wc -l)" -ge 2 ] ||
  bad "every segment has the same basis range: no per-segment windows"
[ "$(awk '$1 != "FILE" {t += $4} END {print t}' "$tmp/recs")" = $((80 << 20)) ] ||
  bad "the records do not make the 80 MiB file: $(awk '$1 != "FILE" {t += $4} END {print t}' "$tmp/recs") bytes"
[ "$w" -gt 0 ] && [ "$w" -lt $(((80 << 20) / 100)) ] || bad "the 80 MiB rebuild cost $w bytes on the wire (want under 1%)"
st_check_converged "$store" "$target" "after the large file"

# 2. renames: by chunk overlap, and by the closest name
python3 - "$store/definitions/url-2026-11-22.dat" "$store/definitions/av-2026-11-23.dat" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[1000000:1004096] = bytes(4096)           # an overwrite
b[5000000:5000000] = b"new definitions" * 64  # an insertion
open(sys.argv[2], "wb").write(b)
PY
rm "$store/definitions/url-2026-11-22.dat"
rm "$store/engines/libbig.so.7.1"
gen "$store/engines/libbig.so.7.2" 2 6 1
ds scan >/dev/null 2>&1 || bad "scan (renames)"
ds plan t --json --no-scan >"$tmp/plan.json" 2>/dev/null || bad "plan (renames)"
python3 - "$tmp/plan.json" <<'PY' || fail=1
import json, sys
items = {i["path"]: i for i in json.load(open(sys.argv[1]))["items"]}
want = {"definitions/av-2026-11-23.dat": "definitions/url-2026-11-22.dat",
        "engines/libbig.so.7.2": "engines/libbig.so.7.1"}
for path, basis in want.items():
    it = items.get(path, {})
    if it.get("method") != "delta" or it.get("basis") != basis:
        print(f"FAIL: {path}: planned {it.get('method')} against {it.get('basis')}, want a delta against {basis}", file=sys.stderr)
        sys.exit(1)
PY
ds sync t --json >"$tmp/ren.json" 2>"$tmp/ren.err" || bad "sync (renames): $(head -c 300 "$tmp/ren.err")"
w=$(wire "$tmp/ren.json")
echo "  renamed: definitions (chunk overlap) + rebuilt library (closest name), 14 MiB of new files: $w bytes on the wire"
[ "$w" -gt 0 ] && [ "$w" -lt $(((14 << 20) / 20)) ] || bad "the two renamed files cost $w bytes on the wire (want under 5% of 14 MiB)"
en_converged "$store" "$target" "after the renames"
st_exit "large files in windows, renamed files by overlap and by name"
