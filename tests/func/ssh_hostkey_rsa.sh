#!/usr/bin/env bash
# Red-team pass: RSA host keys against a real OpenSSH sshd (9.x refuses
# ssh-rsa SHA-1 signatures, all libssh2 1.10 can check).
# 1. The server has ed25519 and RSA host keys; known_hosts holds only its
#    RSA key (an old entry, or ssh-keyscan -t rsa). OpenSSH's ssh connects
#    with that file. distsync offered only ssh-rsa (the preference from
#    known_hosts) and failed with "SSH handshake failed: Unable to exchange
#    encryption keys". Now the known type comes first and the others follow:
#    the ed25519 key is refused as unknown, the message says the file holds
#    only ssh-rsa for the host and why that cannot serve, `trust --yes`
#    records the ed25519 key and the sync runs.
# 2. The server has only an RSA host key: the handshake's failure names
#    the likely cause and what to do (an ed25519 host key).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_hostkey_rsa
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
rsa=$SSHD_DIR/host_rsa
ssh-keygen -q -t rsa -b 2048 -N '' -C rsa-host -f "$rsa" </dev/null >/dev/null
sshd_restart "$rsa"
kh=$tmp/known_hosts
echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$rsa.pub")" >"$kh"
mkdir -p "$tmp/store/patches" "$tmp/state" "$tmp/t"
head -c 10000 /dev/urandom >"$tmp/store/patches/a.bin"
cat >"$tmp/d.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
classes = patches

[server r]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$tmp/t
identity = $SSH_KEY
known_hosts = $kh
agent = $DISTSYNC agent
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan"

# the reference: OpenSSH's own client accepts this known_hosts
ssh -o BatchMode=yes -o UserKnownHostsFile="$kh" -o StrictHostKeyChecking=yes -i "$SSH_KEY" \
  -p "$SSHD_PORT" "$SSHD_USER@127.0.0.1" true >"$tmp/ssh.out" 2>&1 ||
  bad "OpenSSH's ssh refused the RSA-only known_hosts (the test's premise): $(cat "$tmp/ssh.out")"

fp=$(sshd_fp "$SSHD_HOSTKEY.pub")
st_expect_ds 4 "host key unknown: ssh-ed25519 $fp is not in $kh, which holds only ssh-rsa for this host" sync r
out=$(ds sync r 2>&1)
[[ $out == *"OpenSSH 8.8"* ]] || bad "the RSA-only known_hosts: no word on why ssh-rsa cannot serve: $out"
[ -z "$(ls -A "$tmp/t")" ] || bad "something was written before the key was trusted"
ds trust --yes r >"$tmp/o" 2>&1 || bad "trust --yes failed: $(cat "$tmp/o")"
grep -q "ssh-ed25519" "$kh" || bad "trust did not record the ed25519 key: $(cat "$kh")"
ds sync r >"$tmp/o" 2>&1 || bad "sync after trust failed: $(cat "$tmp/o")"
st_check_converged "$tmp/store" "$tmp/t" "after trusting the ed25519 key"

# 2. only an RSA host key on the server
sshd_stop
sshd_run "$SSHD_DIR" "$rsa" "$SSHD_PORT" || { bad "sshd with an RSA host key only did not start"; exit 1; }
st_expect_ds 4 "give it an ed25519 host key" sync r
exit $fail
