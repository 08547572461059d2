#!/usr/bin/env bash
# Issue 15: restore refuses hostile archives before writing anything. From
# a good backup, tests/func/lib/mkbackup.py (python3 tarfile + zstd) makes
# archives with an entry named '../evil', an absolute entry, a symlink and
# a hardlink in place of the config, a member longer than the MANIFEST
# says, a changed byte (SHA-256), a 256 MiB member of zeros (a
# decompression bomb), a known_hosts member whose destination the config
# does not name, and a truncated archive. Each restore onto an empty
# console exits 1 naming the entry (or the archive's fault), and leaves no
# file at any destination and no temporary file. The rebuilt good archive
# still restores (so the refusals are the cases, not the builder).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init restore_hostile
store=$tmp/store
st_gen "$store" 0 "$tmp/known" --files 4 --max 2048 || bad "mkstore"
mkdir -p "$tmp/t"
st_conf "$tmp/c.conf" "$store" "$tmp/state" srv "file://$tmp/t" local
echo "far.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostileTest" >"$tmp/kh"
printf '\n[server far]\nurl = ssh://u@far.example/srv\nknown_hosts = %s\n' "$tmp/kh" >>"$tmp/c.conf"
"$DISTSYNC" -c "$tmp/c.conf" sync srv >/dev/null 2>&1 || bad "sync"
"$DISTSYNC" -c "$tmp/c.conf" backup --out "$tmp/good.tar.zst" >/dev/null 2>&1 || bad "backup"
rm -rf "$tmp/state" "$tmp/c.conf" "$tmp/kh"

nothing_written() { # nothing_written CASE
  local f
  for f in "$tmp/c.conf" "$tmp/state/catalog.db" "$tmp/kh" "$tmp/evil-kh" /tmp/distsync-evil "$tmp/../evil"; do
    [ -e "$f" ] && bad "$1: $f was written"
  done
  ls -a "$tmp" "$tmp/state" 2>/dev/null | grep -q '\.restore\.' && bad "$1: a temporary file was left"
}
check() { # check CASE REGEX
  OUTSIDE_DEST=$tmp/evil-kh python3 "$DS_SRC/tests/func/lib/mkbackup.py" "$tmp/good.tar.zst" "$tmp/h.tar.zst" "$1" ||
    { bad "mkbackup $1"; return; }
  local rc=0
  "$DISTSYNC" restore "$tmp/h.tar.zst" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" = 1 ] || bad "$1: restore exit $rc, expected 1: $(cat "$tmp/out" "$tmp/err")"
  grep -qE "$2" "$tmp/err" || bad "$1: the refusal does not say /$2/: $(cat "$tmp/err")"
  nothing_written "$1"
}
check dotdot "entry '\.\./evil': absolute or '\.\.' name"
check absolute "entry '/tmp/distsync-evil': absolute or '\.\.' name"
check symlink "entry 'config\.0': a link"
check hardlink "entry 'config\.0': a link"
check size-lie "entry 'config\.0': its header says [0-9]+ bytes, the MANIFEST [0-9]+"
check hash "entry 'config\.0': SHA-256 does not match"
check bomb "entry known_hosts\.9: expands more than 1000x.*decompression bomb"
check outside "entry 'known_hosts\.0': destination $tmp/evil-kh is not a known_hosts file the restored config names"
check truncated "not a readable backup archive.*[Tt]runcated"
# the builder's own output is restorable
python3 "$DS_SRC/tests/func/lib/mkbackup.py" "$tmp/good.tar.zst" "$tmp/g.tar.zst" good || bad "mkbackup good"
"$DISTSYNC" restore "$tmp/g.tar.zst" >"$tmp/out" 2>"$tmp/err" || bad "the rebuilt good archive: $(cat "$tmp/err")"
[ -s "$tmp/state/catalog.db" ] && [ -s "$tmp/c.conf" ] && [ -s "$tmp/kh" ] || bad "the rebuilt good archive restored nothing"
st_exit restore_hostile
