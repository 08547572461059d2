#!/usr/bin/env bash
# tools/upgrade-client never puts a secret on a command line: every local
# user can read another process's argv (ps, /proc/PID/cmdline). The client
# runs against the real daemon's gate with the real curl, through a PATH
# wrapper that records each curl's argv before running it; after a grant,
# download, install and report, no recorded argv holds the enrolment token
# (the Authorization header) or the grant's token (heartbeat, report bodies).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init upgrade_client_argv

gate_init 4096
mkdir -p "$tmp/srv/s1" "$tmp/bin"
gate_console
cat >>"$conf" <<CONF

[site paris]
clients = par-*

[server s1]
url = file://$tmp/srv/s1
site = paris
CONF
gate_rollout all 'par-*' 'lease = 1m'
gate_up upgrade_client_argv 10 s1

real=$(command -v curl) || bad "no curl"
cat >"$tmp/bin/curl" <<SH
#!/bin/sh
# records this curl's argv (what ps shows), then runs the real curl
printf '%s\n' "\$*" >>"$tmp/argv.log"
exec "$real" "\$@"
SH
chmod +x "$tmp/bin/curl"
cat >"$tmp/install" <<'SH'
#!/bin/sh
sleep 3
cp "$1" "$DEST/installed.bin"
SH
chmod +x "$tmp/install"
out=$(PATH=$tmp/bin:$PATH DEST=$tmp timeout 50 "$DS_SRC/tools/upgrade-client" \
  --gate "http://127.0.0.1:$port" --token-file "$tmp/entoken" --client par-a --product agent \
  --version 6.0 --fetch "file://$tmp/srv/{server}" --install "$tmp/install" --heartbeat 1 2>&1) ||
  bad "upgrade-client exited $?: $out"
cmp -s "$tmp/installed.bin" "$tmp/store/engines/agent-7.0.msi" || bad "the package was not installed: $out"
[ "$(grep -c . "$tmp/argv.log")" -ge 4 ] || bad "too few curl calls recorded: $(cat "$tmp/argv.log")"
grep -q 'heartbeat' "$tmp/argv.log" || bad "no heartbeat was sent: $(cat "$tmp/argv.log")"
grep -qF "$entok" "$tmp/argv.log" && bad "the enrolment token is on curl's command line: $(grep -F "$entok" "$tmp/argv.log" | head -1)"
grep -q '"token"' "$tmp/argv.log" && bad "a grant token is on curl's command line: $(grep '"token"' "$tmp/argv.log" | head -1)"
dm_stop
st_exit upgrade_client_argv
