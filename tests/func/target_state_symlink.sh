#!/usr/bin/env bash
# A target whose .distsync (or .distsync/tmp) is a symbolic link is refused
# by the local and agent receivers and by `agent --import`, saying it is a
# symbolic link refused for safety (it said "Not a directory"); nothing is
# written through the link.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init target_state_symlink
store=$tmp/store
mkdir -p "$store/patches" "$tmp/elsewhere" "$tmp/tl" "$tmp/ta"
echo hello >"$store/patches/a.txt"
st_conf "$tmp/c.conf" "$store" "$tmp/state" loc "file://$tmp/tl" local ag "file://$tmp/ta" agent
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
ds export loc --full --out "$tmp/b.dsb" >/dev/null 2>"$tmp/err" || bad "export: $(cat "$tmp/err")"

for link in .distsync .distsync/tmp; do
  for srv in loc ag; do
    root=$tmp/t${srv:0:1}
    rm -rf "$root/.distsync"
    [ "$link" = .distsync ] || mkdir "$root/.distsync"
    ln -s "$tmp/elsewhere" "$root/$link"
    st_expect_rc 4 "sync $srv with $link a symbolic link" ds sync "$srv"
    grep -qF "$root/$link: a symbolic link, refused for safety" "$tmp/out" "$tmp/err" ||
      bad "sync $srv with $link a symbolic link does not say so: $(cat "$tmp/out" "$tmp/err")"
    grep -q "Not a directory" "$tmp/out" "$tmp/err" && bad "sync $srv still says 'Not a directory'"
  done
  st_expect_rc 1 "agent --import with $link a symbolic link" "$DISTSYNC" agent --root "$tmp/tl" --import "$tmp/b.dsb"
  grep -qF "$tmp/tl/$link: a symbolic link, refused for safety" "$tmp/err" ||
    bad "agent --import with $link a symbolic link does not say so: $(cat "$tmp/err")"
done
[ -z "$(ls -A "$tmp/elsewhere")" ] || bad "something was written through the link: $(ls -A "$tmp/elsewhere")"
st_exit target_state_symlink
