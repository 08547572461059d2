#!/usr/bin/env bash
# The warm-up (deltas computed while a run connects, sync_prefetch.c) is
# for servers whose plan has deltas: an ssh:// server in SFTP mode
# (transport = sftp, real OpenSSH sshd) is sent whole files, so its run
# computes no delta. Before, the warm-up computed the deltas of every file
# changed since its last run (sync --json: "computed": 2, two in the delta
# cache) and the run waited for them before it ended. Checked: an update of
# 4 files to an SFTP server computes no delta, leaves none in the cache,
# sends whole files and converges.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_warm_sftp
sshd_start "$tmp/sshd"
sshd_known_hosts "$tmp/known_hosts"
store=$tmp/store
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
mkdir -p "$tmp/state" "$store/patches" "$tmp/t"
for i in 1 2 3 4; do head -c 300000 /dev/urandom >"$store/patches/f$i.bin"; done
printf '[console]\nstore = %s\nstate = %s\n\n[server s]\nurl = ssh://%s@127.0.0.1:%s%s\n' \
  "$store" "$tmp/state" "$SSHD_USER" "$SSHD_PORT" "$tmp/t" >"$tmp/d.conf"
printf 'identity = %s\nknown_hosts = %s\ntransport = sftp\nclasses = patches\n' \
  "$SSH_KEY" "$tmp/known_hosts" >>"$tmp/d.conf"
ds sync --all >"$tmp/first.out" 2>&1 || bad "first sync failed: $(tail -3 "$tmp/first.out")"
for i in 1 2 3 4; do # a delta each, were deltas sent
  printf 'sixteen bytes!!!' | dd of="$store/patches/f$i.bin" bs=1 seek=150000 conv=notrunc 2>/dev/null
done
ds scan >/dev/null 2>&1 || bad "scan"
ds -v sync --no-scan --json s >"$tmp/s.json" 2>"$tmp/s.err" || bad "sync failed: $(tail -3 "$tmp/s.err")"
n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["deltas"]["computed"])' "$tmp/s.json")
[ "$n" = 0 ] || bad "an SFTP server's sync computed $n deltas (it is sent whole files)"
n=$(find "$tmp/state/deltas" -type f -name '*.zp*' 2>/dev/null | wc -l)
[ "$n" = 0 ] || bad "$n deltas in the cache after an SFTP sync"
st_check_converged "$store" "$tmp/t" "s"
st_exit ssh_warm_sftp
