#!/usr/bin/env bash
# New-admin pass: `config check --connect` checked smb:// servers only and
# passed over ssh:// ones in silence (exit 0), so a first check of a new SSH
# server said nothing about its host key, login or agent. It now makes the
# open a sync makes against a real sshd and says what it found, one line
# per server, exit 4 when one fails, writing nothing on the server:
#  - the agent answering HELLO (agent mode), or SFTP and why (auto);
#  - transport = agent with no agent there: a failure, not "ok";
#  - an unknown host key, a missing target root: the sync's messages.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init config_connect_ssh
sshd_start "$tmp/sshd"
sshd_known_hosts "$tmp/known_hosts"
mkdir -p "$tmp/store/patches" "$tmp/ag" "$tmp/sf" "$tmp/bad" "$tmp/bad2"
echo x >"$tmp/store/patches/a.bin"
server() { # NAME ROOT TRANSPORT AGENT [KNOWN_HOSTS]
  printf '\n[server %s]\nurl = ssh://%s@127.0.0.1:%s%s\ntransport = %s\nagent = %s\nidentity = %s\nknown_hosts = %s\n' \
    "$1" "$SSHD_USER" "$SSHD_PORT" "$2" "$3" "$4" "$SSH_KEY" "${5:-$tmp/known_hosts}"
}
{
  printf '[console]\nstore = %s\nstate = %s\nclasses = patches\n' "$tmp/store" "$tmp/state"
  server ag "$tmp/ag" agent "$DISTSYNC agent"
  server sf "$tmp/sf" auto /nonexistent
  server noagent "$tmp/bad" agent /nonexistent
  server stranger "$tmp/bad2" auto "$DISTSYNC agent" "$tmp/empty_known_hosts"
  server noroot "$tmp/missing" agent "$DISTSYNC agent"
} >"$tmp/d.conf"
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }

st_expect_ds 0 "connect    ag: ok (ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$tmp/ag, agent mode" config check --connect ag
st_expect_ds 0 "connect    sf: ok" config check --connect sf
st_expect_ds 0 "SFTP mode (transport = auto: the agent command '/nonexistent --root" config check --connect sf
st_expect_ds 4 "server noagent: transport = agent, but the agent command '/nonexistent --root" \
  config check --connect noagent
ds config check --connect noagent 2>&1 | grep -q 'connect    noagent: ok' && bad "a missing agent was called ok"
st_expect_ds 4 "server stranger: $SSHD_USER@127.0.0.1:$SSHD_PORT: host key unknown" config check --connect stranger
st_expect_ds 4 "server noroot: target root $tmp/missing" config check --connect noroot
# all of them: every server gets its line or its error, exit 4
ds config check --connect >"$tmp/all" 2>&1
rc=$?
[ "$rc" = 4 ] || bad "config check --connect of all: exit $rc"
for s in ag sf; do grep -q "connect    $s: ok" "$tmp/all" || bad "all: no line for $s: $(cat "$tmp/all")"; done
# nothing written on the servers, nothing synced
for d in ag sf bad bad2; do
  [ -z "$(ls -A "$tmp/$d")" ] || bad "config check --connect wrote in $d: $(ls -A "$tmp/$d")"
done
exit $fail
