# shellcheck shell=bash disable=SC2154,SC2034 # $W, $ds, $rusage, $top, $repeat... come from bench/wire
# bench/wire_real.bash: the real package updates of bench/wire (--real),
# sourced by bench/wire (uses its $W, $ds, $rusage, $top, log, now, secs).
#
# Each update is two Debian versions of one package, fetched with
# `apt-get download PKG=VERSION` into $real_cache and unpacked with
# `dpkg-deb -x`. Symbolic links, then empty directories, are removed from
# both trees (the bench compares file content; a package's links are a few
# bytes of names), so every tool sees the same regular files. The console holds the old version
# and sends the new one; every tool gets the same old tree.
#
# Per update, one row per tool: bytes that cross the link (both directions
# for distsync and rsync; the patch sizes for the per-file tools), CPU
# seconds (user+sys) of the sending side and its peak RSS:
#   distsync console  `distsync sync --json`, transport = agent: bytes_wire
#                     + bytes_received; CPU of the console process (bench_rusage
#                     of the sync minus the agents' own); peak RSS of the
#                     console (wait4's ru_maxrss is the largest of the console
#                     and its agents: "<=" marks a figure that may be the
#                     agent's)
#   distsync agent    the receiving agent (applies the deltas, verifies
#                     SHA-256): its CPU and peak RSS
#   rsync             -a --no-whole-file, with and without -z, local:
#                     bytes sent + received from --stats; CPU of all rsync
#                     processes (both ends)
#   zstd -19 / bsdiff / xdelta3 / zstd --patch-from: bench/wire_perfile.py
#                     (one process per file; files with no old version are
#                     counted as zstd -19 of the file)
#   casync            chunks of the new tree the old store lacks + the index;
#                     CPU of `casync make` of the new tree
# With --repeat N every tool runs N times and each figure is the median.

# The pinned updates: "PKG OLD_VERSION NEW_VERSION" (Debian 12 bookworm,
# bookworm-security and bookworm-updates, as the mirror held them on
# 2026-11-27). A version the mirror no longer holds is skipped with a
# message; pass --pkg to pick others (apt-cache madison PKG lists them).
real_default=(
  "libc6 2.36-9+deb12u7 2.36-9+deb12u14"
  "libpython3.11-stdlib 3.11.2-6+deb12u8 3.11.2-6+deb12u9"
  "git 1:2.39.5-0+deb12u2 1:2.39.5-0+deb12u3"
  "libssl3 3.0.20-1~deb12u2 3.0.22-1~deb12u2"
  "postgresql-15 15.18-0+deb12u1 15.20-0+deb12u1"
)
realrows=() realinfo=()

# real_fetch PKG VERSION: prints the path of the cached .deb, or fails with
# a message.
real_fetch() {
  local d=$real_cache/$1/${2//[:\/]/_} f
  mkdir -p "$d"
  f=$(find "$d" -maxdepth 1 -name '*.deb' | head -1)
  if [ -z "$f" ]; then
    if ! (cd "$d" && apt-get download -q "$1=$2" >"$d/apt.log" 2>&1); then
      log "SKIP $1: the mirror has no version $2 ($(grep -m1 '^E:' "$d/apt.log"))"
      return 1
    fi
    f=$(find "$d" -maxdepth 1 -name '*.deb' | head -1)
  fi
  [ -n "$f" ] && echo "$f"
}

# real_unpack DEB DIR: DIR/pkg holds the package's regular files (links and
# then empty directories removed: distsync syncs files, not empty folders).
real_unpack() {
  [ -f "$2.done" ] && [ "$(cat "$2.done")" = "$1 files-only" ] && return
  rm -rf "$2" && mkdir -p "$2/pkg"
  dpkg-deb -x "$1" "$2/pkg" || return 1
  find "$2/pkg" -type l -delete
  find "$2/pkg" -mindepth 1 -type d -empty -delete
  echo "$1 files-only" >"$2.done"
}

# use_sum FILE: "cpu maxrss_kib" of the bench_rusage lines in FILE (CPU
# summed, RSS the largest).
use_sum() {
  awk 'NF >= 4 {c += $1 + $2; if ($4 > r) r = $4} END {printf "%.3f %d", c, r}' "$1" 2>/dev/null ||
    echo "0 0"
}

# real_ds U [LEVEL]: distsync rows ("tool\tbytes\tcpu\trss_kib\tnote") for
# the update in U/old, U/new (LEVEL: sync --delta-level LEVEL).
real_ds() {
  local u=$1 st=$1/ds c err="" b cu au cs t0 wall lv=${2:+ (level $2)}
  rm -rf "$st" && mkdir -p "$st/store" "$st/t/srv"
  cp -a "$u/old/pkg" "$st/store/pkg"
  printf '#!/bin/sh\nexec "%s" "%s" "%s" "$@"\n' "$rusage" "$st/agent-use" "$ds" >"$st/agent-wrap"
  chmod +x "$st/agent-wrap"
  c=$st/ds.conf
  printf '[console]\nclasses = pkg\nstore = %s\nstate = %s\n' "$st/store" "$st/state" >"$c"
  printf '\n[server srv]\nurl = file://%s\ntransport = agent\nagent = %s\nclasses = pkg\nprune = yes\n' \
    "$st/t/srv" "$st/agent-wrap" >>"$c"
  "$ds" -c "$c" scan >/dev/null 2>"$st/err" && "$ds" -c "$c" sync srv >/dev/null 2>>"$st/err" ||
    err="first sync failed: $(tail -1 "$st/err")"
  rsync -a --delete "$u/new/pkg/" "$st/store/pkg/"
  "$rusage" "$st/scan-use" "$ds" -c "$c" scan >/dev/null 2>>"$st/err" || err=${err:-"scan failed"}
  "$ds" -c "$c" plan srv --json --no-scan >"$st/plan.json" 2>>"$st/err"
  rm -f "$st/agent-use"
  t0=$(now)
  "$rusage" "$st/sync-use" "$ds" -c "$c" sync srv --json ${2:+--delta-level "$2"} >"$st/sync.json" 2>>"$st/err" ||
    err=${err:-"sync failed: $(tail -1 "$st/err")"}
  wall=$(secs "$t0" "$(now)")
  diff -rq "$u/new/pkg" "$st/t/srv/pkg" >"$st/diff" 2>&1 ||
    err=${err:-"TARGET DIFFERS FROM THE NEW VERSION ($st/diff: $(head -1 "$st/diff"))"}
  b=$(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["servers"][0]
m = {}
try:
    for it in json.load(open(sys.argv[2]))["items"]:
        if it["action"] in ("create", "update"):
            n, b = m.get(it["method"], (0, 0))
            m[it["method"]] = (n + 1, b + it["size"])
except (OSError, ValueError, KeyError):
    pass
print(s["bytes_wire"] + s["bytes_received"], s["bytes_wire"], s["bytes_received"], s["bytes_literal"],
      s["bytes_copied"], ";".join("%s_%d_files_%d_B" % (k, v[0], v[1]) for k, v in sorted(m.items())) or "-")
' "$st/sync.json" "$st/plan.json" 2>/dev/null) || err=${err:-"no summary"}
  if [ -n "$err" ]; then
    printf 'distsync console%s\t-\t-\t-\t%s\n' "$lv" "$err"
    return
  fi
  read -r cu crss <<<"$(use_sum "$st/sync-use")"
  read -r au arss <<<"$(use_sum "$st/agent-use")"
  cs=$(use_sum "$st/scan-use" | cut -d' ' -f1)
  set -- $b
  printf 'distsync console%s\t%s\t%.3f\t%s%s\tsent %s, received %s (literal %s, copied %s); plan: %s; scan %s s; sync wall %s s\n' \
    "$lv" "$1" "$(awk -v a="$cu" -v b="$au" 'BEGIN {print a - b}')" "$([ "$crss" -gt "$arss" ] || echo "<=")" \
    "$crss" "$2" "$3" "$4" "$5" "$(echo "$6" | sed "s/_/ /g; s/;/, /g")" "$cs" "$wall"
  printf 'distsync agent (applies)%s\t-\t%s\t%s\t\n' "$lv" "$au" "$arss"
  rm -rf "$st"
}

# real_rsync U [-z]: one rsync row.
real_rsync() {
  local t=$1/rsync-target b cu rss
  rm -rf "$t" "$1/rsync-use" && cp -a "$1/old/pkg" "$t"
  b=$("$rusage" "$1/rsync-use" rsync -a --no-whole-file --delete ${2:-} --stats "$1/new/pkg/" "$t/" |
    awk '/^Total bytes (sent|received):/ {gsub(/,/, "", $4); b += $4} END {print b + 0}')
  read -r cu rss <<<"$(use_sum "$1/rsync-use")"
  printf 'rsync --no-whole-file%s\t%s\t%s\t%s\tboth ends\n' "${2:+ $2}" "$b" "$cu" "$rss"
  rm -rf "$t"
}

# real_casync U: one casync row.
real_casync() {
  local c=$1/casync b cu rss
  rm -rf "$c" && mkdir -p "$c"
  casync make --store="$c/old.castr" "$c/old.caidx" "$1/old/pkg" >/dev/null 2>&1 &&
    "$rusage" "$c/use" casync make --store="$c/new.castr" "$c/new.caidx" "$1/new/pkg" >/dev/null 2>&1 ||
    { printf 'casync\t-\t-\t-\tcasync make failed\n'; return; }
  (cd "$c/old.castr" && find . -name '*.cacnk' -printf '%f\n' | sort) >"$c/old.list"
  b=$( (cd "$c/new.castr" && find . -name '*.cacnk' -printf '%f %s\n' | sort) |
    join -v 1 - "$c/old.list" | awk '{s += $2} END {print s + 0}')
  read -r cu rss <<<"$(use_sum "$c/use")"
  printf 'casync (missing chunks + index)\t%s\t%s\t%s\t\n' "$((b + $(stat -c %s "$c/new.caidx")))" "$cu" "$rss"
  rm -rf "$c"
}

# real_tools U: every tool's rows for one update, in table order (with
# --levels: distsync alone, once per level).
real_tools() {
  if [ -n "$levels" ]; then
    for l in ${levels//,/ }; do real_ds "$1" "$l"; done
    return
  fi
  real_ds "$1"
  real_rsync "$1"
  real_rsync "$1" -z
  python3 "$top/bench/wire_perfile.py" "$1/old/pkg" "$1/new/pkg" "$1" | tee "$1/plan" | grep -v '^plan' ||
    printf 'per-file tools\t-\t-\t-\tfailed\n'
  real_casync "$1"
}

# median: reads "tool\tbytes\tcpu\trss\tnote" lines of several runs; prints
# one line per tool (first-seen order) with the median of each figure and
# the last run's note.
median() {
  python3 -c '
import statistics, sys
rows = {}
for line in sys.stdin:
    f = line.rstrip("\n").split("\t") + [""] * 5
    rows.setdefault(f[0], []).append(f[1:5])
def med(vals):
    pre = "<=" if any(v.startswith("<=") for v in vals) else ""
    nums = [float(v.lstrip("<=")) for v in vals if v.lstrip("<=").replace(".", "", 1).isdigit()]
    if not nums:
        return vals[-1]
    m = statistics.median(nums)
    return pre + ("%d" % m if m == int(m) and "." not in vals[-1] else "%.2f" % m)
for tool, runs in rows.items():
    cols = list(zip(*runs))
    print("\t".join([tool] + [med(list(c)) for c in cols[:3]] + [runs[-1][3]]))'
}

# real_update "PKG OLD NEW": fetches, unpacks, runs the tools --repeat
# times; appends to realrows and realinfo.
real_update() {
  local pkg old new u dold dnew plan i all=""
  read -r pkg old new <<<"$1"
  u=$W/real/$pkg
  log "(real) $pkg $old -> $new: fetching"
  dold=$(real_fetch "$pkg" "$old") && dnew=$(real_fetch "$pkg" "$new") || {
    realinfo+=("- $pkg $old -> $new: SKIPPED, the mirror lacks a version (see $real_cache/$pkg)")
    return
  }
  real_unpack "$dold" "$u/old" && real_unpack "$dnew" "$u/new" || {
    realinfo+=("- $pkg: SKIPPED, dpkg-deb -x failed")
    return
  }
  for ((i = 1; i <= repeat; i++)); do
    log "(real) $pkg: run $i of $repeat"
    all+=$(real_tools "$u")$'\n'
  done
  plan=$(awk -F'\t' '$1 == "plan" {printf "%d changed files, %d added, %d bytes of new content; %d files whose content the old version holds", $2, $3, $4, $5}' "$u/plan" 2>/dev/null)
  realinfo+=("- $pkg $old -> $new: $(find "$u/new/pkg" -type f | wc -l) files, $(du -sb "$u/new/pkg" | cut -f1) bytes unpacked; $plan")
  while IFS= read -r line; do realrows+=("$pkg	$line"); done < <(printf '%s' "$all" | median)
}

# real_table: the Markdown table of realrows, with x rsync -z and x the best
# of bsdiff and zstd --patch-from.
real_table() {
  echo "| update | tool | bytes on the wire | x rsync -z | x best of bsdiff, zstd --patch-from | CPU s | peak RSS MiB | note |"
  echo "|---|---|---:|---:|---:|---:|---:|---|"
  printf '%s\n' "${realrows[@]}" | python3 -c '
import sys
rows = [l.rstrip("\n").split("\t") for l in sys.stdin if l.strip()]
def num(v):
    try:
        return float(v)
    except ValueError:
        return None
ref = {}
for u, tool, b, *_ in rows:
    if num(b) is not None:
        if tool == "rsync --no-whole-file -z":
            ref.setdefault(u, {})["z"] = num(b)
        if tool in ("bsdiff", "zstd -19 --long=27 --patch-from"):
            r = ref.setdefault(u, {})
            r["best"] = min(r.get("best", num(b)), num(b))
for u, tool, b, cpu, rss, note in ((r + [""] * 6)[:6] for r in rows):
    def x(k):
        return "%.2f" % (num(b) / ref[u][k]) if num(b) is not None and ref.get(u, {}).get(k) else "-"
    m = rss.lstrip("<=")
    rss = (rss[:2] if rss.startswith("<=") else "") + ("%.0f" % (float(m) / 1024) if num(m) is not None else "-")
    print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (u, tool, b, x("z"), x("best"), cpu, rss, note))'
}

# big_update SIZE: one file of SIZE random bytes (4G, 512M...) with four
# 4 KiB overwrites; distsync rows only (its peak RSS is the point).
big_update() {
  local n u=$W/big
  n=$(numfmt --from=iec "$1") || return
  if [ "$(cat "$u.done" 2>/dev/null)" != "$n" ]; then
    log "(big) generating a file of $n bytes"
    rm -rf "$u" && mkdir -p "$u/old/pkg" "$u/new/pkg"
    head -c "$n" /dev/urandom >"$u/old/pkg/big.bin" && cp "$u/old/pkg/big.bin" "$u/new/pkg/big.bin" || return
    python3 - "$u/new/pkg/big.bin" "$n" <<'PY'
import os, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    for k in range(1, 5):
        f.seek(n * k // 5 // 4096 * 4096)
        f.write(os.urandom(4096))
PY
    echo "$n" >"$u.done"
  fi
  log "(big) distsync"
  realinfo+=("- big: one file of $n random bytes, four 4 KiB overwrites (16384 bytes changed)")
  while IFS= read -r line; do realrows+=("big $1	$line"); done < <(real_ds "$u")
}
