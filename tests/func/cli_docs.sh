#!/usr/bin/env bash
# Man pages and bash completion generated at build time (doc/gen_doc.c),
# and `cmake --install` into a DESTDIR:
#  - distsync.1 names every command, every option of each command, every
#    exit status (each CLI_EXIT_* of src/cli/cli.h), the signals (SIGHUP
#    reloads sync's caps; SIGINT, SIGTERM) and the four configuration
#    places; distsync.conf.5 names every key of the parser's table
#    (read from src/config/config_parse.c); both render with man -l when present;
#  - the completion script loads in bash, completes commands, a command's
#    options, server names (for every command that selects servers, history
#    and trust included), site names after --site and class names after
#    --class (from `distsync complete servers|sites|classes`);
#  - DESTDIR install holds bin/distsync, man1, man5, the completion and the
#    example config.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init cli_docs
bin=$(dirname "$DISTSYNC")
man1=$bin/doc/distsync.1 man5=$bin/doc/distsync.conf.5 comp=$bin/doc/distsync.bash
for f in "$man1" "$man5" "$comp"; do [ -s "$f" ] || bad "$f not generated"; done

cmds="help version config schedule scan scans files agent plan sync status verify history gc trust backup restore import-manifest rollout export"
for c in $cmds; do
  grep -q "^\.SS \\\\fB$c\\\\fR" "$man1" || bad "distsync.1 has no section for $c"
  for o in $("$DISTSYNC" "$c" --help | grep -oE -- '^  (-[a-zA-Z], )?--[a-z-]+' | sed -E 's/.*--//'); do
    grep -qF -- "\\-\\-$(echo "$o" | sed 's/-/\\-/g')" "$man1" || bad "distsync.1 lacks $c --$o"
  done
done
codes=$(grep -oE '^#define CLI_EXIT_[A-Z]+ +[0-9]+' "${DS_SRC:?}/src/cli/cli.h" | awk '{print $3}')
[ -n "$codes" ] || bad "no CLI_EXIT_* codes found in src/cli/cli.h"
for code in $codes 130; do
  grep -qx "\.B $code" "$man1" || bad "distsync.1 lacks exit status $code"
done
grep -q "143: SIGTERM" "$man1" || bad "distsync.1 lacks exit status 143"
for sig in SIGHUP SIGINT SIGTERM; do
  sed -n '/^\.SH SIGNALS/,/^\.SH /p' "$man1" | grep -qx "\.B $sig" || bad "distsync.1 SIGNALS lacks $sig"
done
sed -n '/^\.SH SIGNALS/,/^\.SH /p' "$man1" | grep -q "bandwidth caps" || bad "distsync.1: SIGHUP does not say it reloads the caps"
"$DISTSYNC" sync --help | grep -q SIGHUP || bad "sync --help does not mention SIGHUP"
"$DISTSYNC" sync --help | grep -q max_servers || bad "sync --help does not say servers run in parallel (max_servers)"
for f in "/etc/distsync/distsync.conf" "./distsync.conf" "DISTSYNC_CONFIG"; do
  grep -qF -- "$(echo "$f" | sed 's/-/\\-/g')" "$man1" || bad "distsync.1 does not name $f"
done
# every key of the parser's tables: {"key", k_fn} lines in *_keys[] arrays
keys=$(sed -n '/_keys\[\] = {/,/^};/p' "${DS_SRC:?}/src/config/config_parse.c" | grep -oE '\{"[a-z_]+", *k_' | sed -E 's/\{"([a-z_]+)".*/\1/' | sort -u)
[ -n "$keys" ] || bad "no keys found in src/config/config_parse.c"
for k in $keys; do
  grep -q "^\\\\fB$k\\\\fR = " "$man5" || bad "distsync.conf.5 lacks key $k"
done
if command -v man >/dev/null; then
  grep -q "EXIT STATUS" <<<"$(MANWIDTH=100 man -l "$man1" 2>"$tmp/m1e")" || bad "man -l distsync.1 does not render"
  grep -q "scan_threads" <<<"$(MANWIDTH=100 man -l "$man5" 2>/dev/null)" || bad "man -l distsync.conf.5 does not render"
  [ -s "$tmp/m1e" ] && grep -q "warning" "$tmp/m1e" && bad "man warnings: $(head -3 "$tmp/m1e")"
fi

# completion: commands, options, server names
st_conf "$tmp/c.conf" "$tmp/store" "$tmp/state" paris-1 "file://$tmp/t1" local lyon-2 "file://$tmp/t2" local
printf '\n[site paris]\n' >>"$tmp/c.conf"
sed -i '/^\[server paris-1\]/a site = paris' "$tmp/c.conf"
mkdir -p "$tmp/store"
complete_words() { # complete_words WORDS...: prints COMPREPLY
  PATH="$bin:$PATH" bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _distsync; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$comp" "$@"
}
bash -c ". '$comp' && complete -p distsync" >/dev/null 2>&1 || bad "completion script does not load"
grep -qx sync <<<"$(complete_words distsync sy)" || bad "completion of 'sy' lacks sync"
grep -qx status <<<"$(complete_words distsync st)" || bad "completion of 'st' lacks status"
grep -qx -- --dry-run <<<"$(complete_words distsync sync --d)" || bad "completion of 'sync --d' lacks --dry-run"
grep -qx paris-1 <<<"$(complete_words distsync -c "$tmp/c.conf" sync par)" || bad "completion of a server name: $(complete_words distsync -c "$tmp/c.conf" sync par)"
grep -qx lyon-2 <<<"$(complete_words distsync -c "$tmp/c.conf" status "")" || bad "status completion lacks lyon-2"
grep -qx "$tmp/c.conf" <<<"$(complete_words distsync agent --root x --import "$tmp/c.c")" || bad "agent --import does not complete file names"
grep -qx complete <<<"$(complete_words distsync comp)" && bad "the hidden command complete is offered"
for c in plan sync status verify history trust export; do
  grep -qx lyon-2 <<<"$(complete_words distsync -c "$tmp/c.conf" "$c" ly)" || bad "$c: no server name completion"
done
grep -qx paris-1 <<<"$(complete_words distsync -c "$tmp/c.conf" import-manifest par)" || bad "import-manifest: no server name completion"
touch "$tmp/backup-file.tar.zst"
grep -qx "$tmp/backup-file.tar.zst" <<<"$(complete_words distsync restore "$tmp/backup-f")" || bad "restore: no file completion"
grep -qx "$tmp/backup-file.tar.zst" <<<"$(complete_words distsync backup --out "$tmp/backup-f")" || bad "backup --out: no file completion"
for c in plan sync status verify history; do
  grep -qx paris <<<"$(complete_words distsync -c "$tmp/c.conf" "$c" --site "")" || bad "$c --site: no site name completion"
  [ "$c" = history ] && continue # history takes no --class
  got=$(complete_words distsync -c "$tmp/c.conf" "$c" --class "")
  [ "$(sort <<<"$got" | tr '\n' ' ')" = "definitions engines patches " ] || bad "$c --class: class completion gave '$got'"
done

# cmake --install into a DESTDIR
if command -v cmake >/dev/null; then
  DESTDIR=$tmp/root cmake --install "$bin" --prefix /usr >"$tmp/inst.log" 2>&1 || bad "cmake --install: $(tail -3 "$tmp/inst.log")"
  for f in usr/bin/distsync usr/share/man/man1/distsync.1 usr/share/man/man5/distsync.conf.5 \
    usr/share/bash-completion/completions/distsync usr/share/doc/distsync/distsync.conf; do
    [ -s "$tmp/root/$f" ] || bad "cmake --install did not put $f in place"
  done
  "$tmp/root/usr/bin/distsync" --version >/dev/null || bad "installed binary does not run"
fi
st_exit cli_docs
