#!/usr/bin/env bash
# The layers of libdistsync (src/<layer>/, src/CMakeLists.txt) call only
# down: every ds_* symbol a layer's archive uses and does not define must be
# defined by a layer it declares (directly or through them), and it calls
# SQLite, libuv, inih, zstd, librsync, libcrypto, libssh2 or jansson only when it links that
# library itself. build/layers.txt has one line per layer: its name, its
# archive, libs=its outside libraries, then the allowed archives.
set -uo pipefail
: "${DS_BUILD:?}"
layers=$DS_BUILD/layers.txt
[ -r "$layers" ] || { echo "FAIL: no layer list at $layers" >&2; exit 1; }
fail=0 n=0
defs() { nm -g --defined-only "$@" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u; }
# outside library (as named in src/CMakeLists.txt) -> its symbols' prefix
declare -A prefix=([BZIP2]=BZ2_ [DIVSUFSORT]=divsufsort [SQLITE]=sqlite3_ [UV]=uv_ [INIH]=ini_ [ZSTD]=ZSTD_ [RSYNC]=rs_ [CRYPTO]=EVP_ [SSH2]=libssh2_ [SMBCLIENT]=smbc_ [ARCHIVE]=archive_ [JANSSON]=json_)
while read -r name archive libs allowed; do
  n=$((n + 1))
  [[ $libs == libs=* ]] || { echo "FAIL: layer $name: no libs= field in $layers" >&2; fail=1; continue; }
  for lib in "${!prefix[@]}"; do
    [[ ,${libs#libs=}, == *",$lib,"* ]] && continue
    used=$(nm -g --undefined-only "$archive" | awk -v p="${prefix[$lib]}" '$1 == "U" && index($2, p) == 1 {print $2}' | sort -u | head -3)
    if [ -n "$used" ]; then
      echo "FAIL: layer $name calls $(echo $used) but does not link $lib (src/CMakeLists.txt)" >&2
      fail=1
    fi
  done
  # shellcheck disable=SC2086
  missing=$(comm -23 \
    <(nm -g --undefined-only "$archive" | awk '$1 == "U" && $2 ~ /^ds_/ {print $2}' | sort -u) \
    <(defs "$archive" $allowed))
  if [ -n "$missing" ]; then
    for s in $missing; do
      owner=$(while read -r o a _; do defs "$a" | grep -qx "$s" && echo "$o"; done <"$layers")
      echo "FAIL: layer $name calls $s, defined in layer '${owner:-none}', which it may not use" >&2
    done
    fail=1
  fi
done <"$layers"
[ "$n" -ge 10 ] || { echo "FAIL: layers.txt names only $n layers" >&2; fail=1; }
[ "$fail" = 0 ] && echo "PASS: layers ($n layers, calls only go down)"
exit "$fail"
