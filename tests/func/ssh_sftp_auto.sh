#!/usr/bin/env bash
# transport = auto against a real OpenSSH sshd: the agent when it answers
# our HELLO (an update then goes as a delta), else SFTP with an event that
# says why (agent = /nonexistent: not found; a command that is no agent:
# did not answer); transport = agent with a missing agent fails with a
# clear message. Readers never see a partial file while SFTP syncs replace
# files, on an account with a shell (mv -f) and on an SFTP-only account
# (sshd ForceCommand internal-sftp, and command="internal-sftp" in
# authorized_keys: unlink + rename, said in the events; a path may be
# absent for an instant, never partial), and on a shell account whose mv
# loop cannot start (MaxSessions 2: no channel left for it): unlink +
# rename too, the events saying why.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_sftp_auto
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
sshd_known_hosts "$tmp/known_hosts"
store=$tmp/store known=$tmp/known
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
field() {
  python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print([s for s in d["servers"] if s["server"]==sys.argv[2]][0][sys.argv[3]])' "$@"
}
server() { # NAME ROOT AGENT [TRANSPORT]
  mkdir -p "$2"
  printf '\n[server %s]\nurl = ssh://%s@127.0.0.1:%s%s\ntransport = %s\nidentity = %s\nknown_hosts = %s\nagent = %s\nclasses = patches engines definitions\nprune = yes\n' \
    "$1" "$SSHD_USER" "$SSHD_PORT" "$2" "${4:-auto}" "$SSH_KEY" "$tmp/known_hosts" "$3"
}
{
  printf '[console]\nstore = %s\nstate = %s\n' "$store" "$tmp/state"
  server ag "$tmp/t-ag" "$DISTSYNC agent"
  server none "$tmp/t-none" /nonexistent
  server echo "$tmp/t-echo" "echo hello"
  server forced "$tmp/t-forced" /nonexistent agent
} >"$tmp/d.conf"
mkdir -p "$tmp/state"
st_gen "$store" 0 "$known" --files 18 --max 1536 || bad "mkstore"
head -c $((8 << 20)) /dev/urandom >"$store/engines/big.bin"
ds scan >/dev/null 2>&1 || bad "scan"

ds sync --json ag none echo >"$tmp/s1.json" 2>"$tmp/s1.err" || bad "auto syncs failed: $(head -c 600 "$tmp/s1.err")"
for s in ag none echo; do st_check_converged "$store" "$tmp/t-$s" "auto, $s"; done
ds history --events none >"$tmp/ev.none" 2>&1
grep -q "transport = auto: the agent command '/nonexistent --root .*' was not found" "$tmp/ev.none" ||
  bad "auto without an agent: no event says why SFTP: $(grep -i sftp "$tmp/ev.none" | head -3)"
ds history --events echo >"$tmp/ev.echo" 2>&1
grep -q "transport = auto: 'echo hello --root .*' did not answer as a distsync agent" "$tmp/ev.echo" ||
  bad "auto with a non-agent: $(grep -i sftp "$tmp/ev.echo" | head -3)"
ds history --events ag >"$tmp/ev.ag" 2>&1
if grep -q "SFTP mode" "$tmp/ev.ag"; then bad "auto with a working agent used SFTP"; fi

# the agent answers: an update goes as a delta; SFTP sends the file whole
python3 - "$store/engines/big.bin" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(3 << 20)
    f.write(os.urandom(4096))
PY
ds scan >/dev/null 2>&1
ds sync --json ag none >"$tmp/s2.json" 2>"$tmp/s2.err" || bad "update failed: $(head -c 600 "$tmp/s2.err")"
wa=$(field "$tmp/s2.json" ag bytes_wire)
wn=$(field "$tmp/s2.json" none bytes_wire)
[ "$wa" -lt $((1 << 20)) ] || bad "auto with an agent: $wa wire bytes for a 4 KiB edit (no delta?)"
[ "$wn" -gt $((8 << 20)) ] || bad "auto over SFTP: $wn wire bytes, less than the whole 8 MiB file"

# transport = agent with no agent: a clear message, no fallback
rc=0
ds sync forced >"$tmp/s3.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || bad "transport = agent without an agent succeeded"
grep -q "agent command was not found on the server" "$tmp/s3.out" ||
  bad "missing agent: unclear message: $(head -c 400 "$tmp/s3.out")"

# readers while SFTP replaces files: GEN generations, the reader on ROOT
readers() { # WHAT SERVER ROOT GENS...
  local what=$1 srv=$2 root=$3 rpid reads nbad g
  shift 3
  rm -f "$tmp/stop"
  # every version first: the reader knows each legal hash from the start
  cp -a "$store" "$tmp/stores.now"
  for g in "$@"; do
    st_gen "$store" "$g" "$known" || bad "mkstore gen $g"
    rm -rf "$tmp/stores.$g" && cp -a "$store" "$tmp/stores.$g"
  done
  rm -rf "$store" && mv "$tmp/stores.now" "$store"
  python3 "$DS_SRC/tests/func/lib/reader.py" "$known" "$tmp/stop" "$tmp/reader.out" "$root" &
  rpid=$!
  st_pids+=("$rpid")
  for g in "$@"; do
    rm -rf "$store" && cp -a "$tmp/stores.$g" "$store"
    ds scan >/dev/null 2>&1 || bad "scan gen $g"
    ds sync --force "$srv" >/dev/null 2>"$tmp/err" || bad "$what: sync gen $g: $(head -c 400 "$tmp/err")"
  done
  touch "$tmp/stop"
  wait "$rpid"
  read -r reads nbad <"$tmp/reader.out" || { reads=0 nbad=0; }
  echo "$what: reader: $reads whole-file reads, $nbad bad"
  [ "${nbad:-1}" = 0 ] || bad "$what: reader saw mixed or short files: $(tail -n +2 "$tmp/reader.out")"
  [ "${reads:-0}" -ge 100 ] || bad "$what: reader made only $reads reads: the test proves nothing"
  st_check_converged "$store" "$root" "$what"
}
rm -f "$store/engines/big.bin" # not a version the reader knows
ds scan >/dev/null 2>&1
ds sync --force ag none >/dev/null 2>&1 || bad "sync after removing big.bin failed"
readers "sftp, mv -f" none "$tmp/t-none" 1 2

# a shell account whose sshd allows 2 sessions: the SFTP channel and a
# file's take both, so the mv -f loop cannot start (no channel left): the
# replaces go by unlink + rename, the events say why, never partial
SSHD_EXTRA=$'Match all\n  MaxSessions 2'
sshd_restart
readers "sftp, the mv loop refused a channel" none "$tmp/t-none" 5 6
ds history --events -n 1 none >"$tmp/ev.none2" 2>&1
grep -q "the mv -f loop could not start (cannot open a channel: .*): a file is replaced by unlink + rename" "$tmp/ev.none2" ||
  bad "no event says the mv loop could not start: $(grep -i "sftp\|mv" "$tmp/ev.none2" | head -3)"

# an SFTP-only account: sshd forces internal-sftp for every session
SSHD_EXTRA=$'Match all\n  ForceCommand internal-sftp'
sshd_restart
ds sync --json ag >"$tmp/s4.json" 2>"$tmp/s4.err" || bad "auto on an SFTP-only account failed: $(head -c 600 "$tmp/s4.err")"
st_check_converged "$store" "$tmp/t-ag" "auto on an SFTP-only account"
ds history --events ag >"$tmp/ev.ag2" 2>&1
grep -q "the account runs no commands, so a file is replaced by unlink + rename" "$tmp/ev.ag2" ||
  bad "no event says unlink + rename: $(grep -i sftp "$tmp/ev.ag2" | head -3)"
readers "sftp-only account, unlink + rename" ag "$tmp/t-ag" 3 4

# the same through the key: command="internal-sftp" in authorized_keys
SSHD_EXTRA=""
sshd_restart
sed -i 's/^/command="internal-sftp" /' "$SSHD_DIR/authorized_keys.$SSHD_USER"
st_gen "$store" 7 "$known" || bad "mkstore gen 7"
ds scan >/dev/null 2>&1
ds sync --force ag >/dev/null 2>"$tmp/err" || bad "sync with command=internal-sftp: $(head -c 400 "$tmp/err")"
st_check_converged "$store" "$tmp/t-ag" "command=internal-sftp"
ds history --events -n 1 ag >"$tmp/ev.ag3" 2>&1
grep -q "the account runs no commands, so a file is replaced by unlink + rename" "$tmp/ev.ag3" ||
  bad "command=internal-sftp: no unlink + rename event: $(grep -i sftp "$tmp/ev.ag3" | head -3)"
st_exit ssh_sftp_auto
