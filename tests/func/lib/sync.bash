# Shared helpers for the sync functional tests (sourced, not run by CTest).
# Needs DISTSYNC and DS_SRC; DS_TEST_TMP optional.
: "${DISTSYNC:?}" "${DS_SRC:?}"
unset DISTSYNC_CONFIG
fail=0
MKSTORE="$DS_SRC/tests/func/lib/mkstore.py"

# st_init NAME: sets $tmp (removed on exit unless KEEP=1).
st_init() {
  tmp=$(mktemp -d "${DS_TEST_TMP:-/tmp}/$1.XXXXXX" 2>/dev/null || mktemp -d)
  if [ "${KEEP:-0}" != 1 ]; then trap 'st_cleanup; rm -rf "$tmp"' EXIT; else trap st_cleanup EXIT; fi
}
# Kills (by pid) what the test started in the background.
st_pids=()
st_cleanup() {
  local p
  for p in "${st_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

bad() { echo "FAIL: $*" >&2; fail=1; }

# st_expect_rc CODE WHAT CMD...: runs CMD (stdout to $tmp/out, stderr to
# $tmp/err); an exit other than CODE is bad, naming WHAT and the output.
st_expect_rc() {
  local code=$1 what=$2 rc=0
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" = "$code" ] || bad "$what: exit $rc, expected $code: $(head -c 600 "$tmp/out" "$tmp/err")"
}

# st_expect_ds CODE NEEDLE ARGS...: runs the test's own `ds ARGS`; it must
# exit CODE and print NEEDLE (stdout and stderr together).
st_expect_ds() {
  local want=$1 needle=$2 out rc=0
  shift 2
  out=$(ds "$@" 2>&1) || rc=$?
  [ "$rc" = "$want" ] || bad "distsync $*: exit $rc, want $want: $out"
  [[ "$out" == *"$needle"* ]] || bad "distsync $*: output lacks '$needle': $out"
}

# st_conf CONF STORE STATE [NAME URL TRANSPORT [PRUNE]]...: writes a config.
st_conf() {
  local conf=$1
  printf '[console]\nstore = %s\nstate = %s\n' "$2" "$3" >"$conf"
  shift 3
  while [ $# -ge 3 ]; do
    printf '\n[server %s]\nurl = %s\ntransport = %s\nclasses = patches engines definitions\nprune = yes\n' \
      "$1" "$2" "$3" >>"$conf"
    shift 3
  done
}

# st_full_deltas CONF: every server of CONF gets quick_deltas = no, for a
# test of the full deltas (BSDIFF, levels, sizes): a local target's link is
# always idle, so its deltas would otherwise be quick (README "Quick deltas").
st_full_deltas() {
  sed -i '/^\[server /a quick_deltas = no' "$1"
}

# st_rebuilt OUT SHIFT: a 2 MiB "binary" whose pointers are moved by SHIFT
# (an inserted function of SHIFT bytes, a few changed instructions): a
# rebuild, where BSDIFF records beat zstd (SHIFT 0: the original build).
st_rebuilt() {
  python3 - "$1" "$2" <<'PY'
import random, struct, sys
out, shift = sys.argv[1], int(sys.argv[2])
r = random.Random(7)
code = bytearray(r.randbytes(2 * 1024 * 1024))
b = bytearray()
if shift:
    b += bytes(r.getrandbits(8) for _ in range(shift))  # the inserted function
    for i in range(0, len(code), 50000):
        code[i] ^= 0x21  # a few changed instructions
for i in range(2 * 1024 * 1024 // 32):
    b += code[i * 24:i * 24 + 24]
    b += struct.pack("<Q", 0x400000 + ((i * 2654435761) % 2000000) + shift)
open(out, "wb").write(b)
PY
}

# st_need_retain_hook NAME: exits 0 (SKIP) on a build without the test
# hook DISTSYNC_TEST_RETAIN_DELAY_MS (cmake -DDS_TEST_HOOKS=ON).
st_need_retain_hook() {
  "$DISTSYNC" version | grep -q "DISTSYNC_TEST_RETAIN_DELAY_MS" && return 0
  echo "SKIP: $1: needs a test build (cmake -DDS_TEST_HOOKS=ON)"
  exit 0
}

# st_retained: versions in $tmp/state's retain store (0 without one).
st_retained() { sqlite3 "$tmp/state/retain/retain.db" 'SELECT count(*) FROM version' 2>/dev/null || echo 0; }

# st_retain_server: $store (patches/keep.txt) synced to one file:// server a
# at $tmp/t (agent, 1 MB/s) through $conf, with ds() defined; one version
# retained.
st_retain_server() {
  store=$tmp/store conf=$tmp/r.conf
  mkdir -p "$store/patches" "$tmp/t"
  printf '[console]\nstore = %s\nstate = %s\n\n[server a]\nurl = file://%s\n' \
    "$store" "$tmp/state" "$tmp/t" >"$conf"
  printf 'transport = agent\nclasses = patches\nbandwidth = 1MB\nprune = yes\n' >>"$conf"
  ds() { "$DISTSYNC" -c "$conf" "$@"; }
  printf 'v0\n' >"$store/patches/keep.txt"
  ds scan >/dev/null 2>&1 && ds sync a >/dev/null 2>&1 || bad "first sync"
  [ "$(st_retained)" = 1 ] || bad "first sync: $(st_retained) versions retained, 1 expected"
}

# st_small_store STORE: 3,000 small files (STORE/definitions/dNN/file-NNNNN.dat,
# "content N"), a store whose manifest outweighs a no-op sync's other traffic.
st_small_store() {
  python3 - "$1" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(3000):
    d = os.path.join(root, "definitions", "d%02d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "file-%05d.dat" % i), "w") as f:
        f.write("content %d\n" % i)
PY
}

# st_gen STORE GEN KNOWN [args]: writes generation GEN, records its versions.
st_gen() {
  local store=$1 gen=$2 known=$3
  shift 3
  python3 "$MKSTORE" "$store" "$gen" --known "$known" "$@"
}

# st_check_versions TARGET KNOWN WHAT: every visible file is a known version.
st_check_versions() {
  python3 - "$1" "$2" "$3" <<'PY' || fail=1
import hashlib, os, sys
root, known, what = sys.argv[1:]
ok = set(tuple(l.split()) for l in open(known) if l.strip())
bad = []
for r, ds, fs in os.walk(root):
    if os.path.relpath(r, root).split(os.sep)[0] == ".distsync":
        continue
    for f in fs:
        p = os.path.join(r, f)
        rel = os.path.relpath(p, root)
        try:
            h = hashlib.sha256(open(p, "rb").read()).hexdigest()
        except FileNotFoundError:
            continue
        if (rel, h) not in ok:
            bad.append(f"{rel} sha256={h} size={os.path.getsize(p)}")
if bad:
    print(f"FAIL: {what}: partial or unknown file(s) visible: " + "; ".join(bad[:5]), file=sys.stderr)
    sys.exit(1)
PY
}

# st_check_converged STORE TARGET WHAT: target equals the store, no tmp left.
st_check_converged() {
  local out
  if ! out=$(diff -r --exclude=.distsync "$1" "$2" 2>&1); then
    bad "$3: target differs from the store: $(echo "$out" | head -5)"
  fi
  if [ -d "$2/.distsync/tmp" ] && [ -n "$(find "$2/.distsync/tmp" -mindepth 1 -print -quit)" ]; then
    bad "$3: files left in .distsync/tmp: $(find "$2/.distsync/tmp" -mindepth 1 | head -5 | tr '\n' ' ')"
  fi
}

# st_exit: prints the verdict and exits.
st_exit() {
  if [ "$fail" = 0 ]; then echo "PASS: $1"; exit 0; fi
  echo "FAILED: $1" >&2
  exit 1
}

# st_list TARGET FILE: the target's content paths (state dir excluded).
st_list() {
  (cd "$1" && find . -path ./.distsync -prune -o -type f -print | sort) >"$2"
}
# st_check_kept TARGET BEFORE STORE WHAT: a path the target had before (in
# BEFORE, from st_list) that the store still has must still be there.
st_check_kept() {
  local p lost=""
  while IFS= read -r p; do
    [ -e "$3/$p" ] && [ ! -e "$1/$p" ] && lost="$lost $p"
  done <"$2"
  [ -z "$lost" ] || bad "$4: files the server had are gone:$(echo "$lost" | cut -c1-300)"
}

# st_kill_delay [MIN]: sets delay (ms) for the kill tests: a random point in
# the first two thirds of the time a sync is expected to take, dur_ms (the
# last full sync's), or kill_cap_ms when smaller; the window is at least
# MIN ms (default 50).
st_kill_delay() {
  local w=$((dur_ms * 2 / 3)) min=${1:-50}
  [ "${kill_cap_ms:-0}" -gt 0 ] && [ "$kill_cap_ms" -lt "$w" ] && w=$kill_cap_ms
  [ "$w" -ge "$min" ] || w=$min
  delay=$((RANDOM % w))
}
# st_kill_missed: the kill after $delay ms came when the sync had already
# ended, so a sync takes less than that here and now (a box whose load
# dropped): later kills come within two thirds of it.
st_kill_missed() {
  kill_cap_ms=$((delay * 2 / 3))
  echo "  a kill at ${delay} ms came after its sync ended: later ones within ${kill_cap_ms} ms"
}

# st_patches_in ROOT...: every file of $tmp/store/patches is in each ROOT's
# patches, the same bytes.
st_patches_in() {
  local r f
  for r in "$@"; do
    for f in "$tmp"/store/patches/*; do
      cmp -s "$f" "$r/patches/${f##*/}" || return 1
    done
  done
}

# st_watch_sync CONF OUT [ROOT...]: `distsync -c CONF sync --all` in the
# background (stdout and stderr into OUT), sampled every ST_WATCH_S seconds
# (default 0.05) until it ends. Sets MAXTHREADS (the most threads seen in
# /proc/PID/task), CONV_MS (ms from the start until every file of
# $tmp/store/patches was in each ROOT's patches; -1: not while it ran),
# RUN_MS and RC (its exit status).
st_watch_sync() {
  local cf=$1 out=$2 pid t0 n
  shift 2
  MAXTHREADS=0 CONV_MS=-1
  t0=$(date +%s%3N)
  "$DISTSYNC" -c "$cf" sync --all >"$out" 2>&1 &
  pid=$!
  st_pids+=("$pid")
  while kill -0 "$pid" 2>/dev/null; do
    n=$(ls "/proc/$pid/task" 2>/dev/null | wc -l)
    [ "$n" -gt "$MAXTHREADS" ] && MAXTHREADS=$n
    if [ "$CONV_MS" = -1 ] && st_patches_in "$@"; then CONV_MS=$(($(date +%s%3N) - t0)); fi
    sleep "${ST_WATCH_S:-0.05}"
  done
  RC=0
  wait "$pid" || RC=$?
  RUN_MS=$(($(date +%s%3N) - t0))
}
