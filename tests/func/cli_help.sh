#!/usr/bin/env bash
# Help through the real CLI: `distsync help`, `help CMD`, `CMD --help`,
# `--version`, and the closest-command suggestion for a typo (exit 2).
# For every command, the long options of its getopt table (read from
# src/cli/cmd_*.c) and its short letters are all in `CMD --help`, and every
# option `CMD --help` lists is in the getopt table: the help cannot lie.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init cli_help
src=${DS_SRC:?}/src/cli

out=$("$DISTSYNC" help) || bad "help exit $?"
"$DISTSYNC" --help >"$tmp/h2" || bad "--help exit $?"
[ "$out" = "$(cat "$tmp/h2")" ] || bad "help and --help differ"
v=$("$DISTSYNC" --version) || bad "--version exit $?"
[ "$v" = "$("$DISTSYNC" version)" ] || bad "--version ($v) differs from version"
grep -qE '^distsync [0-9]' <<<"$v" || bad "--version prints '$v'"

cmds="version config schedule scan files agent plan sync status verify history gc trust backup restore import-manifest rollout export"
for c in $cmds; do
  grep -qE "^  $c " <<<"$out" || bad "help does not list $c"
  h=$("$DISTSYNC" "$c" --help) || bad "$c --help exit $?"
  [ "$h" = "$("$DISTSYNC" help "$c")" ] || bad "help $c differs from $c --help"
  file=$src/cmd_${c%%-*}.c # import-manifest: cmd_import.c
  # long options of the getopt table: {"name", no_argument|required_argument|optional_argument
  longs=$(grep -oE '\{"[a-z-]+", *(no|required|optional)_argument' "$file" | sed -E 's/\{"([a-z-]+)".*/\1/' | sort -u)
  shorts=$(grep -oE 'getopt_long\([^"]*"[^"]*"' "$file" | sed -E 's/.*"([^"]*)"/\1/' | tr -d ':+')
  # commands on the shared selection (src/cli/select.c): its options, plus
  # the command's cli_flag table {"name", 'x' or 0, ...}
  if grep -q cli_select_parse "$file"; then
    sel=$(grep -oE '\{"[a-z-]+", *(no|required|optional)_argument' "$src/select.c" | sed -E 's/\{"([a-z-]+)".*/\1/')
    own=$(sed -n '/struct cli_flag flags\[\] = {/,/};/p' "$file" | grep -oE '\{"[a-z-]+", *('"'"'.'"'"'|0)')
    longs=$(printf '%s\n%s\n' "$sel" "$(sed -E 's/\{"([a-z-]+)".*/\1/' <<<"$own")" | grep . | sort -u)
    shorts="$(grep -oE 'strcpy\(shorts, "[a-z]*"' "$src/select.c" | sed -E 's/.*"([a-z]*)"/\1/')$(grep -oE "'.'" <<<"$own" | tr -d "'" | tr -d '\n')"
  fi
  [ "$c" = version ] && longs=help
  for o in $longs; do
    grep -qE -- "--$o\b" <<<"$h" || bad "$c --help does not mention --$o (in its getopt table)"
  done
  # every option the help lists is accepted by the getopt table
  for o in $(echo "$h" | grep -oE -- '^  (-[a-zA-Z], )?--[a-z-]+' | sed -E 's/.*--//'); do
    grep -qx -- "$o" <<<"$longs" || bad "$c --help lists --$o, which its getopt table does not accept"
  done
  # short letters of the getopt string, e.g. getopt_long(argc, argv, "jnah", ...)
  for ((i = 0; i < ${#shorts}; i++)); do
    l=${shorts:i:1}
    grep -qE -- "^  -$l, --" <<<"$h" || bad "$c --help does not show -$l (in its getopt string)"
  done
  # every option has a one-line description
  nodesc=$(grep -E -- '^  (-[a-zA-Z], )?--' <<<"$h" | grep -cvE -- '--[a-z-]+(\[?=?[A-Z0-9=]*\]?| [A-Z0-9|]+)? +[A-Za-z]' || true)
  [ "$nodesc" = 0 ] || bad "$c --help has $nodesc option(s) without a description"
done

# a typo suggests the closest command and exits 2
"$DISTSYNC" sycn >/dev/null 2>"$tmp/e"
rc=$?
[ $rc = 2 ] || bad "unknown command exit $rc, not 2"
grep -q "did you mean 'sync'" "$tmp/e" || bad "sycn: no suggestion of sync: $(cat "$tmp/e")"
"$DISTSYNC" stauts >/dev/null 2>"$tmp/e"
grep -q "did you mean 'status'" "$tmp/e" || bad "stauts: no suggestion of status: $(cat "$tmp/e")"
"$DISTSYNC" help verfy >/dev/null 2>"$tmp/e" && bad "help verfy exited 0"
grep -q "did you mean 'verify'" "$tmp/e" || bad "help verfy: no suggestion: $(cat "$tmp/e")"
"$DISTSYNC" zzzzzzzz >/dev/null 2>"$tmp/e"
grep -q "did you mean" "$tmp/e" && bad "zzzzzzzz got a suggestion: $(cat "$tmp/e")"
# --help after an option that takes a value is that value, not help
"$DISTSYNC" -c /nonexistent/x.conf history --server --help >/dev/null 2>&1
[ $? = 2 ] || bad "history --server --help was taken as help"
st_exit cli_help
