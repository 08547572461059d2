#!/usr/bin/env bash
# Hostile target state: the target's .distsync/manifest holds garbage, a
# huge entry count, traversal paths, bogus hashes, is a symlink, is huge, or
# the target's class folder / tmp folder is a symlink out of the root. The
# sync must either refuse cleanly (non-zero exit, an error naming the server
# and what is wrong) or treat the target as unknown and converge; it must
# never crash and never write outside the target root (a canary directory
# beside the target is compared before and after). Both transports.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_hostile
store=$tmp/store known=$tmp/known
st_gen "$store" 0 "$known" --files 9 --max 256 || bad "mkstore"
mkdir -p "$tmp/canary"
echo "precious" >"$tmp/canary/keep.txt"

cat >"$tmp/mkman.py" <<'PY'
# mkman.py OUT KIND: writes a hostile manifest (format: src/proto/manifest.c).
import hashlib, os, struct, sys
out, kind = sys.argv[1], sys.argv[2]
def entry(path, size=10, sha=b"\x01" * 32):
    p = path.encode()
    return struct.pack(">H", len(p)) + p + struct.pack(">QQ", size, 0) + sha
def manifest(entries, count=None):
    body = b"DSMANIF\n" + struct.pack(">IIQ", 1, 0, len(entries) if count is None else count)
    body += b"".join(entries)
    return body + hashlib.sha256(body).digest()
if kind == "garbage":
    data = os.urandom(4096)
elif kind == "truncated":
    data = manifest([entry("definitions/a"), entry("patches/b")])[:70]
elif kind == "hugecount":
    data = manifest([entry("definitions/a")], count=1 << 60)
elif kind == "traversal":
    data = manifest([entry("../canary/keep.txt"), entry("definitions/x")])
elif kind == "absolute":
    data = manifest([entry("/etc/passwd")])
elif kind == "badsha":  # plausible entries whose hashes lie
    data = manifest(sorted((entry(p) for p in sys.argv[3:]), key=lambda e: e[2:]))
elif kind == "hugelen":
    data = b"DSMANIF\n" + struct.pack(">IIQ", 1, 0, 1) + b"\xff\xff" + b"A" * 100
    data += hashlib.sha256(data).digest()
elif kind == "version":
    data = b"DSMANIF\n" + struct.pack(">IIQ", 99, 0, 0)
    data += hashlib.sha256(data).digest()
else:
    sys.exit("unknown kind " + kind)
open(out, "wb").write(data)
PY

canary_sum() { (cd "$tmp" && find canary -printf '%p %s %y\n' | sort && cat canary/* 2>/dev/null) | sha256sum; }
before=$(canary_sum)
store_files=$(cd "$store" && find . -type f | sed 's|^\./||' | sort)

# hostile TRANSPORT KIND: one scenario on a fresh target.
hostile() {
  local tr=$1 kind=$2 t=$tmp/t-$1-$2 rc=0 srv=hs-$1-$2
  rm -rf "$t" "$tmp/state-$srv"
  mkdir -p "$t/.distsync"
  st_conf "$tmp/$srv.conf" "$store" "$tmp/state-$srv" "$srv" "file://$t" "$tr"
  case $kind in
  symlink-manifest) ln -s "$tmp/canary/keep.txt" "$t/.distsync/manifest" ;;
  bigfile) truncate -s 5G "$t/.distsync/manifest" ;;
  symlink-class) ln -s "$tmp/canary" "$t/definitions" ;;
  symlink-tmp) ln -s "$tmp/canary" "$t/.distsync/tmp" ;;
  symlink-file) # a target file that is a symlink out of the root
    mkdir -p "$t/patches" && ln -s "$tmp/canary/keep.txt" "$t/patches/f000.bin" ;;
  badsha) # shellcheck disable=SC2086
    python3 "$tmp/mkman.py" "$t/.distsync/manifest" badsha $store_files
    (cd "$store" && find . -type f -exec sh -c 'mkdir -p "$1/$(dirname "$2")"; head -c 100 /dev/urandom >"$1/$2"' _ "$t" {} \;) ;;
  *) python3 "$tmp/mkman.py" "$t/.distsync/manifest" "$kind" ;;
  esac
  local man_before
  man_before=$(sha256sum <"$t/.distsync/manifest" 2>/dev/null || true)
  "$DISTSYNC" -c "$tmp/$srv.conf" scan >/dev/null 2>&1
  timeout 120 "$DISTSYNC" -c "$tmp/$srv.conf" sync "$srv" --json >"$tmp/out" 2>"$tmp/err" || rc=$?
  if [ $rc -ge 124 ]; then
    bad "$kind ($tr): sync crashed or hung (exit $rc): $(head -c 400 "$tmp/err")"
  elif [ $rc != 0 ]; then
    if ! grep -q "$srv" "$tmp/err" "$tmp/out"; then
      bad "$kind ($tr): refused (exit $rc) without naming server $srv: $(head -c 400 "$tmp/err")"
    fi
    case $kind in *manifest* | garbage | truncated | hugecount | traversal | absolute | hugelen | version | bigfile)
      grep -qi "manifest" "$tmp/err" "$tmp/out" ||
        bad "$kind ($tr): refused (exit $rc) without naming the manifest: $(head -c 400 "$tmp/err")" ;;
    esac
    echo "  $kind ($tr): refused: $(cat "$tmp/err" "$tmp/out" | grep -m1 "$srv" | head -c 200)"
  else
    case $kind in
    symlink-class | symlink-tmp | symlink-file) # converged only if the link was replaced, not followed
      [ -L "$t/definitions" ] || [ -L "$t/.distsync/tmp" ] || [ -L "$t/patches/f000.bin" ] ||
        st_check_converged "$store" "$t" "$kind ($tr)" ;;
    *) st_check_converged "$store" "$t" "$kind ($tr) (accepted as unknown target)" ;;
    esac
    echo "  $kind ($tr): treated as unknown, synced"
  fi
  if [ "$kind" = version ]; then # a newer distsync's manifest is never discarded
    [ $rc != 0 ] || bad "version ($tr): a manifest from a newer version was overwritten"
    [ "$(sha256sum <"$t/.distsync/manifest")" = "$man_before" ] ||
      bad "version ($tr): the newer manifest was changed or moved"
  fi
  [ "$(canary_sum)" = "$before" ] || {
    bad "$kind ($tr): the canary directory beside the target changed"
    rm -rf "$tmp/canary"/* && echo "precious" >"$tmp/canary/keep.txt"
  }
  [ -z "$(find "$tmp" -maxdepth 1 -newer "$tmp/$srv.conf" ! -name canary ! -name 'out' ! -name 'err' ! -name "state-$srv" ! -name "t-$1-$2" ! -path "$tmp")" ] ||
    bad "$kind ($tr): new files beside the target: $(find "$tmp" -maxdepth 1 -newer "$tmp/$srv.conf" | head -5 | tr '\n' ' ')"
}

for tr in local agent; do
  for kind in garbage truncated hugecount traversal absolute hugelen version badsha \
    symlink-manifest bigfile symlink-class symlink-tmp symlink-file; do
    hostile $tr $kind
  done
done
st_exit "sync_hostile"
