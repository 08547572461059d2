#!/usr/bin/env bash
# distsync-agent, the receiver alone, links only the base, proto and target
# layers: its ELF file needs no libsqlite3 or libuv (and no library outside
# its list: libarchive is on it for bundles), imports no sqlite3_*,
# uv_* or console-side librsync (loadsig, delta) symbol, and holds no symbol
# defined by a console layer (store, delta, sync, engine, config, schedule,
# transport; read from the build's layers.txt). Then it does its job: a sync
# through it (transport = agent, agent = distsync-agent) leaves the target
# equal to the store, and a second sync moves nothing; `cmake --install`
# installs it next to distsync.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
: "${DISTSYNC_AGENT:?}" "${DS_BUILD:?}"
st_init agent_links
export DISTSYNC_TEST_NO_FSYNC=1
agent=$DISTSYNC_AGENT
layers=$DS_BUILD/layers.txt

[ -x "$agent" ] || { echo "FAIL: no agent binary at $agent" >&2; exit 1; }
[ -r "$layers" ] || { echo "FAIL: no layer list at $layers" >&2; exit 1; }

# 1. What the dynamic linker loads.
needed=$(readelf -d "$agent" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
echo "  NEEDED: $(echo $needed)"
for lib in libsqlite3 libuv; do
  grep -q "^$lib\." <<<"$needed" && bad "$agent needs $lib"
done
# Exactly these, and each on purpose: libarchive reads bundles
# (`--import`, src/target/bundle_read.c); a new one must be added here.
allowed="libc libm libcrypto libzstd libxxhash librsync libbz2 libarchive"
for lib in $needed; do
  [[ " $allowed " == *" ${lib%%.so*} "* ]] || bad "$agent needs $lib, not in the agent's list ($allowed)"
done

# 2. What it imports.
imports=$(nm -D --undefined-only "$agent" | awk '{print $2}' | sed 's/@.*//')
hits=$(grep -E '^(sqlite3_|uv_|rs_delta_begin$|rs_loadsig_begin$|rs_build_hash_table$)' <<<"$imports")
[ -z "$hits" ] || bad "$agent imports console-side symbols: $(echo $hits | cut -c1-300)"

# 3. What it holds, statically linked: no sqlite3_/uv_ definitions, and no
# global symbol of a console layer's archive.
defined=$(nm --defined-only "$agent" | awk 'NF == 3 {print $3}' | sort -u)
hits=$(grep -E '^(sqlite3_|uv_)' <<<"$defined" | head -5)
[ -z "$hits" ] || bad "$agent holds SQLite or libuv code: $(echo $hits)"
console=0
while read -r name archive _; do
  case $name in base | proto | target) continue ;; esac
  console=$((console + 1))
  [ -r "$archive" ] || { bad "layer $name: no archive $archive"; continue; }
  hits=$(comm -12 <(nm -g --defined-only "$archive" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u) \
    <(echo "$defined") | head -5)
  [ -z "$hits" ] || bad "$agent holds code of the $name layer: $(echo $hits)"
done <"$layers"
[ "$console" -ge 5 ] || bad "layers.txt names only $console console layers"

# 4. It works: usage, then a sync through it, twice.
"$agent" >/dev/null 2>&1
[ $? = 2 ] || bad "distsync-agent without --root: want exit 2"
printf '' | "$agent" agent --root "$tmp" >/dev/null 2>&1 || bad "distsync-agent agent --root: empty input is not a clean end"
store=$tmp/store target=$tmp/target
mkdir -p "$store/patches/sub" "$store/engines" "$target"
head -c 300000 /dev/urandom >"$store/patches/a.bin"
head -c 70000 /dev/urandom >"$store/patches/sub/b.bin"
echo def >"$store/engines/c.txt"
st_conf "$tmp/conf" "$store" "$tmp/state" t1 "file://$target" agent
echo "agent = $agent" >>"$tmp/conf"
"$DISTSYNC" -c "$tmp/conf" scan >/dev/null 2>"$tmp/err" || bad "scan: $(head -c 300 "$tmp/err")"
"$DISTSYNC" -c "$tmp/conf" sync --json t1 >"$tmp/s1.json" 2>"$tmp/err" || bad "sync through distsync-agent: $(head -c 300 "$tmp/err")"
st_check_converged "$store" "$target" "first sync through distsync-agent"
"$DISTSYNC" -c "$tmp/conf" sync --json t1 >"$tmp/s2.json" 2>"$tmp/err" || bad "second sync: $(head -c 300 "$tmp/err")"
# changed FILE: files created + updated + deleted by the sync in FILE
changed() {
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["servers"][0]; print(s["created"]+s["updated"]+s["deleted"])' "$1" 2>/dev/null
}
[ "$(changed "$tmp/s1.json")" = 3 ] || bad "first sync through distsync-agent changed '$(changed "$tmp/s1.json")' files (want 3)"
[ "$(changed "$tmp/s2.json")" = 0 ] || bad "second sync through distsync-agent changed '$(changed "$tmp/s2.json")' files (want 0)"

# 5. It is installed.
if command -v cmake >/dev/null; then
  cmake --install "$DS_BUILD" --prefix "$tmp/inst" >/dev/null 2>"$tmp/err" || bad "cmake --install: $(head -c 300 "$tmp/err")"
  [ -x "$tmp/inst/bin/distsync-agent" ] || bad "cmake --install did not install bin/distsync-agent"
  [ -x "$tmp/inst/bin/distsync" ] || bad "cmake --install did not install bin/distsync"
fi
st_exit agent_links
