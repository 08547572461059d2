#!/usr/bin/env bash
# The sync progress board on a terminal (run under script(1) for a pty):
# one line per active server ("NAME: i/n files, done / total, W on the
# wire at RATE, ETA"), a total line, and nothing of it when stderr is not
# a terminal or --json is given (no escape sequences in logs).
set -euo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_progress_board
export DISTSYNC_TEST_NO_FSYNC=1
command -v script >/dev/null || { echo "SKIP: script(1) is not installed"; exit 0; }

mkdir -p "$tmp/store/patches" "$tmp/state"
for i in 1 2 3 4 5 6; do head -c 8000000 /dev/urandom >"$tmp/store/patches/f$i.bin"; done
st_conf "$tmp/c.conf" "$tmp/store" "$tmp/state" \
  alpha "file://$tmp/ta" agent beta "file://$tmp/tb" local gamma "file://$tmp/tc" agent
for t in ta tb tc; do mkdir -p "$tmp/$t"; done

# A terminal: the board is drawn on stderr (script merges it into the log).
script -qfec "'$DISTSYNC' -c '$tmp/c.conf' sync --all" "$tmp/tty.log" >/dev/null </dev/null ||
  bad "sync --all on a terminal failed: $(tail -3 "$tmp/tty.log")"
log=$(tr '\r' '\n' <"$tmp/tty.log" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g')
for s in alpha beta gamma; do
  grep -Eq "^$s: [0-9]+/6 files, .* on the wire at .*/s" <<<"$log" ||
    bad "no board line for $s: $(grep -m3 "$s" <<<"$log" || true)"
  grep -q "^sync $s: ok" <<<"$log" || bad "no summary line for $s"
done
grep -Eq "^total: [0-9]+/[0-9]+ files, .* on the wire at .*\[[0-9]+ active, [0-9]+ seen\]" <<<"$log" ||
  bad "no total line: $(grep -m3 total <<<"$log" || true)"
for t in ta tb tc; do st_check_converged "$tmp/store" "$tmp/$t" "$t"; done

# Not a terminal, and --json on one: no board, no escape sequences.
head -c 8000000 /dev/urandom >"$tmp/store/patches/f1.bin"
"$DISTSYNC" -c "$tmp/c.conf" sync --all >"$tmp/out" 2>"$tmp/err" || bad "sync (no tty) failed"
if grep -q $'\x1b' "$tmp/err" "$tmp/out"; then bad "escape sequences without a terminal"; fi
head -c 8000000 /dev/urandom >"$tmp/store/patches/f2.bin"
script -qfec "'$DISTSYNC' -c '$tmp/c.conf' sync --all --json >'$tmp/j.json'" "$tmp/j.log" \
  >/dev/null </dev/null || bad "sync --json on a terminal failed"
if grep -q $'\x1b' "$tmp/j.log"; then bad "--json: the board was drawn on the terminal"; fi
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["servers"])==3' "$tmp/j.json" ||
  bad "--json output is not the servers' JSON"
st_exit sync_progress_board
