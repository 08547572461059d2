#!/usr/bin/env bash
# A reader hammers the target files (whole-file reads, over and over) while
# several syncs update them, with transport=local and transport=agent. Each
# read's sha256 must be one of the versions ever generated for that path:
# any mixed or short read fails the test. A path may disappear only when
# the store deleted it (the daily definitions rename).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_reader
store=$tmp/store known=$tmp/known
st_conf "$tmp/d.conf" "$store" "$tmp/state" \
  loc "file://$tmp/t-local" local ag "file://$tmp/t-agent" agent
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
mkdir -p "$tmp/t-local" "$tmp/t-agent"
st_gen "$store" 0 "$known" --files 18 --max 1536 || bad "mkstore"
ds scan >/dev/null 2>&1 || bad "scan"
ds sync loc ag >/dev/null 2>"$tmp/err" || bad "first sync: $(head -c 400 "$tmp/err")"
st_check_converged "$store" "$tmp/t-local" "first sync (local)"
st_check_converged "$store" "$tmp/t-agent" "first sync (agent)"
# All versions are generated up front: the reader knows every legal hash.
cp -a "$store" "$tmp/stores.0"
for g in 1 2 3 4 5 6; do
  st_gen "$store" "$g" "$known" || bad "mkstore gen $g"
  cp -a "$store" "$tmp/stores.$g"
done
rm -rf "$store" && cp -a "$tmp/stores.0" "$store"

python3 "$DS_SRC/tests/func/lib/reader.py" "$known" "$tmp/stop" "$tmp/reader.out" "$tmp/t-local" "$tmp/t-agent" &
rpid=$!
st_pids+=("$rpid")
for g in 1 2 3 4 5 6; do
  rm -rf "$store" && cp -a "$tmp/stores.$g" "$store"
  ds scan >/dev/null 2>&1 || bad "scan gen $g"
  ds sync loc ag >/dev/null 2>"$tmp/err" || bad "sync gen $g: $(head -c 400 "$tmp/err")"
done
touch "$tmp/stop"
wait "$rpid"
read -r reads nbad <"$tmp/reader.out" || { reads=0 nbad=0; }
echo "reader: $reads whole-file reads, $nbad bad"
[ "${nbad:-1}" = 0 ] || bad "reader saw mixed or short files: $(tail -n +2 "$tmp/reader.out")"
[ "${reads:-0}" -ge 200 ] || bad "reader made only $reads reads: the test proves nothing"
st_check_converged "$store" "$tmp/t-local" "after 6 syncs (local)"
st_check_converged "$store" "$tmp/t-agent" "after 6 syncs (agent)"
st_exit "sync_reader"
