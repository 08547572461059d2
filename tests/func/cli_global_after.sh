#!/usr/bin/env bash
# -q, -v and -c are global options (README: "-q and -v mean the same for
# every command"): a new admin who types them after the command, as most
# tools allow (distsync sync -q s1), got only getopt's "invalid option --
# 'q'" and the command's usage, which does not list them. The usage error
# (exit 2, nothing done) now ends with a line saying where they go. An
# option after "--" or a command's own bad option gets no such line.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init cli_global_after
mkdir -p "$tmp/store/patches" "$tmp/t"
echo x >"$tmp/store/patches/a"
printf '[console]\nstore = %s\nstate = %s\n[server s1]\nurl = file://%s\n' "$tmp/store" "$tmp/state" "$tmp/t" >"$tmp/d.conf"
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
for c in "sync -q s1|-q|distsync -q sync" "status s1 -v|-v|distsync -v status" \
  "plan s1 --verbose|--verbose|distsync --verbose plan" "scan --quiet|--quiet|distsync --quiet scan" \
  "history -c other.conf|-c|distsync -c FILE history"; do
  IFS='|' read -r args opt hint <<<"$c"
  # shellcheck disable=SC2086
  st_expect_ds 2 "$opt is a global option: give it before the command ($hint ...)" $args
done
[ -e "$tmp/t/patches/a" ] && bad "a usage error synced"
out=$(ds plan --bogus 2>&1)
[[ $out == *"global option"* ]] && bad "a command's own bad option got the global hint: $out"
# the right place still works
ds -q sync s1 >/dev/null 2>&1 || bad "distsync -q sync s1 failed"
exit $fail
