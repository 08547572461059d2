#!/usr/bin/env bash
# distsync verify (issue 7 item 3), through the CLI with a real agent:
# a target file changed in place with the same size and its mtime put back
# passes `status` (size and mtime agree) but `verify` hashes it on the
# target, exits 3 and names it (text and --json: expected vs actual sha256);
# a deleted file is reported missing; `verify --repair` restores both
# (sha256 compared with the store) and a second verify exits 0; history
# records the verify and repair runs. Also for transport = local.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init verify_drift
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
mkdir -p "$store/patches" "$store/engines" "$store/definitions" "$tmp/t-ag" "$tmp/t-loc"
for i in 1 2 3; do head -c 300000 /dev/urandom >"$store/patches/p$i.bin"; done
head -c 70000 /dev/urandom >"$store/engines/eng.dat"
printf 'defs v1\n' >"$store/definitions/av.def"
st_conf "$tmp/d.conf" "$store" "$tmp/state" ag "file://$tmp/t-ag" agent loc "file://$tmp/t-loc" local
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null || bad "scan"
ds sync --all >/dev/null || bad "first sync"

sha() { sha256sum "$1" | cut -d' ' -f1; }
for srv in ag loc; do
  t=$tmp/t-$srv
  rc=0; ds verify "$srv" >"$tmp/v0" 2>&1 || rc=$?
  [ $rc = 0 ] || bad "$srv: verify of a clean server exited $rc: $(head -c 300 "$tmp/v0")"

  # tamper: same size, mtime put back
  f=$t/engines/eng.dat
  touch -r "$f" "$tmp/stamp"
  python3 - "$f" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
for i in range(1000, 1064):
    b[i] ^= 0x5A
open(p, "r+b").write(b)
PY
  touch -r "$tmp/stamp" "$f"
  [ "$(sha "$f")" != "$(sha "$store/engines/eng.dat")" ] || bad "$srv: tampering did not change the file"
  rm "$t/patches/p2.bin"

  # status sees only the deletion: the tampered file looks in sync
  ds status "$srv" --json >"$tmp/st.json" 2>/dev/null
  python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))[0]
sys.exit(0 if "engines/eng.dat" not in [e["path"] for e in d["drifted"]+d["outdated"]] else 1)' "$tmp/st.json" ||
    echo "note: status already reports the tampered file"

  rc=0; ds verify "$srv" >"$tmp/v1" 2>"$tmp/v1e" || rc=$?
  [ $rc = 3 ] || bad "$srv: verify after tampering exited $rc, want 3: $(head -c 400 "$tmp/v1" "$tmp/v1e")"
  grep -q "drifted engines/eng.dat" "$tmp/v1" || bad "$srv: verify does not name the drifted file: $(head -c 400 "$tmp/v1")"
  grep -q "missing patches/p2.bin" "$tmp/v1" || bad "$srv: verify does not name the missing file: $(head -c 400 "$tmp/v1")"

  rc=0; ds verify "$srv" --json >"$tmp/v1.json" 2>/dev/null || rc=$?
  [ $rc = 3 ] || bad "$srv: verify --json exited $rc, want 3"
  python3 - "$tmp/v1.json" "$(sha "$f")" "$(sha "$store/engines/eng.dat")" "$srv" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))["servers"][0]
actual, expected, srv = sys.argv[2:]
ok = (d["status"] == "drift" and d["verified"] == d["files"] - 2 and d["missing"] == ["patches/p2.bin"]
      and len(d["drifted"]) == 1 and d["drifted"][0]["path"] == "engines/eng.dat"
      and d["drifted"][0]["actual_sha256"] == actual and d["drifted"][0]["expected_sha256"] == expected
      and d["drifted"][0]["actual_size"] == d["drifted"][0]["expected_size"] == 70000)
if not ok:
    print(f"FAIL: {srv}: verify --json: {d}", file=sys.stderr)
    sys.exit(1)
PY

  rc=0; ds verify "$srv" --repair >"$tmp/v2" 2>&1 || rc=$?
  [ $rc = 3 ] || bad "$srv: verify --repair exited $rc, want 3 (drift found, repaired): $(head -c 600 "$tmp/v2")"
  grep -q "verified again: ok" "$tmp/v2" || bad "$srv: repair did not re-verify clean: $(head -c 600 "$tmp/v2")"
  [ "$(sha "$f")" = "$(sha "$store/engines/eng.dat")" ] || bad "$srv: repair did not restore engines/eng.dat"
  [ "$(sha "$t/patches/p2.bin" 2>/dev/null)" = "$(sha "$store/patches/p2.bin")" ] || bad "$srv: repair did not restore patches/p2.bin"
  st_check_converged "$store" "$t" "$srv after repair"

  rc=0; ds verify "$srv" >"$tmp/v3" 2>&1 || rc=$?
  [ $rc = 0 ] || bad "$srv: verify after repair exited $rc: $(head -c 300 "$tmp/v3")"

  ds history --server "$srv" --json >"$tmp/h.json" || bad "$srv: history"
  python3 - "$tmp/h.json" "$srv" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
runs = d if isinstance(d, list) else d["runs"]
seen = [(r.get("kind"), r["status"]) for r in runs]
for want in [("verify", "drift"), ("repair", "ok"), ("verify", "ok")]:
    if want not in seen:
        print(f"FAIL: {sys.argv[2]}: history lacks a {want} run: {seen}", file=sys.stderr)
        sys.exit(1)
PY
done
rc=0; ds verify --all >/dev/null 2>&1 || rc=$?
[ $rc = 0 ] || bad "verify --all after the repairs exited $rc"
st_exit verify_drift
