#!/usr/bin/env bash
# Issue 10: one style of units. Sizes are IEC (B, KiB, MiB, GiB) and rates
# IEC per second in every text output: history and gc print human sizes
# (raw bytes stay in --json), scan's rate is not MB/s. -q means the same
# for every command: no progress and no notes on stderr, results on stdout
# still printed (scan -q printed nothing at all).
set -uo pipefail
. "$DS_SRC/tests/func/lib/sync.bash"
st_init cli_units
export DISTSYNC_TEST_NO_FSYNC=1
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
mkdir -p "$tmp/state" "$tmp/t"
st_gen "$tmp/store" 0 "$tmp/known" --files 12 --max 256 >/dev/null
st_conf "$tmp/c.conf" "$tmp/store" "$tmp/state" t "file://$tmp/t" local

ds -q scan >"$tmp/scan.out" 2>"$tmp/scan.err" || bad "scan -q failed: $(cat "$tmp/scan.err")"
grep -q "^scan: 12 files" "$tmp/scan.out" || bad "scan -q printed no summary: $(cat "$tmp/scan.out")"
grep -Eq "hashed in .* \(([0-9.]+ (B|KiB|MiB|GiB)/s)\)" "$tmp/scan.out" ||
  bad "scan rate not in IEC units: $(cat "$tmp/scan.out")"
grep -Eq "MB/s|kB/s|GB/s" "$tmp/scan.out" && bad "scan prints SI rates: $(cat "$tmp/scan.out")"

ds -q sync t >"$tmp/sync.out" 2>"$tmp/sync.err" || bad "sync failed: $(cat "$tmp/sync.err")"
[ ! -s "$tmp/sync.err" ] || bad "sync -q wrote to stderr: $(cat "$tmp/sync.err")"
grep -q "^sync t: ok" "$tmp/sync.out" || bad "sync -q printed no summary"

ds history >"$tmp/h.txt" || bad "history failed"
wire=$(ds history --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["bytes_wire"])')
[ "$wire" -gt 1048576 ] || bad "history --json bytes_wire $wire: expected raw bytes over 1 MiB"
grep -q " $wire " "$tmp/h.txt" && bad "history text shows raw bytes $wire: $(cat "$tmp/h.txt")"
grep -Eq "[0-9.]+ MiB" "$tmp/h.txt" || bad "history text has no MiB sizes: $(cat "$tmp/h.txt")"

ds gc >"$tmp/gc.txt" 2>&1 || bad "gc failed: $(cat "$tmp/gc.txt")"
grep -Eq "^stored bytes: +[0-9.]+ (B|KiB|MiB|GiB) \(compressed chunks; [0-9.]+ (B|KiB|MiB|GiB) on disk\)" \
  "$tmp/gc.txt" || bad "gc sizes not in IEC units: $(cat "$tmp/gc.txt")"
st_exit cli_units
