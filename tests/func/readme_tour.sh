#!/usr/bin/env bash
# README's Quick tour, run as a new admin would, line by line from the
# README itself: copy the example config, point store, state and the
# servers at this test's folders (the ssh:// and smb:// examples dropped, as
# their hosts do not exist), then every `build/distsync ...` line of the
# tour in order: each must exit 0 (the tour named a server the example
# config does not have). `config check` counts in the singular for one.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init readme_tour
tour=$(awk '/^## Quick tour/ {on = 1} on && /^```sh/ {code = 1; next} code && /^```/ {exit} code' "$DS_SRC/README.md")
grep -q '^build/distsync sync ' <<<"$tour" || bad "no Quick tour found in README.md: $tour"
cd "$tmp" || exit 1
mkdir -p store/patches store/engines dist/paris
for i in 1 2 3; do head -c 100000 /dev/urandom >"store/patches/kb$i.msu"; done
echo engine >store/engines/e.dat
python3 - "$DS_SRC/conf/distsync.conf" my.conf "$tmp" <<'PY'
import sys
src, dst, tmp = sys.argv[1:]
out, skip = [], False
for line in open(src):
    if line.startswith("["):
        skip = line.strip() in ("[server paris-1]", "[server lyon-1]")
    if skip:
        continue
    if line.startswith("store = "):
        line = f"store = {tmp}/store\n"
    elif line.startswith("state = "):
        line = f"state = {tmp}/state\n"
    elif line.startswith("url = file://"):
        line = f"url = file://{tmp}/dist/paris\n"
    elif line.startswith("servers = paris-1 lyon-1"):
        line = "servers = paris-local\n"
    out.append(line)
open(dst, "w").writelines(out)
PY
export DISTSYNC_CONFIG=$tmp/my.conf
n=0
while IFS= read -r line; do
  case "$line" in build/distsync\ *) ;; *) continue ;; esac
  cmd=${line%%  #*}
  cmd="\"\$DISTSYNC\"${cmd#build/distsync}"
  rc=0
  eval "$cmd" >"$tmp/out" 2>"$tmp/err" || rc=$?
  n=$((n + 1))
  [ "$rc" = 0 ] || bad "tour: '${line%%  #*}': exit $rc: $(head -c 400 "$tmp/err")"
done <<<"$tour"
[ "$n" -ge 12 ] || bad "only $n tour commands run"
"$DISTSYNC" config check >"$tmp/out" 2>&1 || bad "config check: $(cat "$tmp/out")"
grep -q '^2 sites, 1 server, 2 schedules$' "$tmp/out" || bad "config check counts: $(cat "$tmp/out")"
st_exit readme_tour
