#!/usr/bin/env bash
# New-admin pass: an ssh:// server's identity = is checked by `config
# check` (exit 2, FILE:LINE: [server NAME] key 'identity': PATH: reason)
# instead of surfacing at the first sync, and the login says the same:
#  - the .pub given instead of the private key (libssh2 called it
#    "missing, unreadable, or protected by a passphrase");
#  - a key with a passphrase (OpenSSH format, and PEM);
#  - an RSA key (OpenSSH format, and PEM);
#  - a missing file, a folder, a file that is no key;
#  - a good key readable by group or others (0644, 0640: red-team pass;
#    accepted before, where OpenSSH's ssh refuses it), at config check and
#    at the login, which sends nothing.
# An ed25519 and a PEM ECDSA key without a passphrase pass, and the sync
# with the good key works against a real sshd.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init config_check_identity
sshd_start "$tmp/sshd"
sshd_known_hosts "$tmp/known_hosts"
k=$tmp/keys
mkdir -p "$k" "$tmp/store/patches" "$tmp/state" "$tmp/t"
echo x >"$tmp/store/patches/a.bin"
kg() { ssh-keygen -q "$@" </dev/null >/dev/null 2>&1 || bad "ssh-keygen $*"; }
kg -t ed25519 -N 'a passphrase' -f "$k/ed_pass"
kg -t ecdsa -m PEM -N 'a passphrase' -f "$k/ec_pem_pass"
kg -t ecdsa -m PEM -N '' -f "$k/ec_pem"
kg -t rsa -b 2048 -N '' -f "$k/rsa"
kg -t rsa -b 2048 -m PEM -N '' -f "$k/rsa_pem"
echo 'not a key' >"$k/text"
conf() { # IDENTITY
  printf '[console]\nstore = %s\nstate = %s\nclasses = patches\n[server a]\nurl = ssh://%s@127.0.0.1:%s%s\nknown_hosts = %s\nidentity = %s\n' \
    "$tmp/store" "$tmp/state" "$SSHD_USER" "$SSHD_PORT" "$tmp/t" "$tmp/known_hosts" "$1" >"$tmp/d.conf"
}
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
check() { # IDENTITY NEEDLE
  conf "$1"
  st_expect_ds 2 "d.conf:8: [server a] key 'identity': $1: $2" config check
}
check "$SSH_KEY.pub" "a public key, not a private one"
check "$k/ed_pass" "protected by a passphrase"
check "$k/ec_pem_pass" "protected by a passphrase"
check "$k/rsa" "an RSA key"
check "$k/rsa_pem" "an RSA key"
check "$k/missing" "No such file or directory"
check "$k" "not a regular file"
check "$k/text" "not a private key file"
cp "$SSH_KEY" "$k/open" && chmod 644 "$k/open"
check "$k/open" "permissions 0644 are too open"
chmod 640 "$k/open"
check "$k/open" "permissions 0640 are too open"
for good in "$SSH_KEY" "$k/ec_pem"; do
  conf "$good"
  ds config check >"$tmp/out" 2>&1 || bad "config check refused $good: $(cat "$tmp/out")"
done
# the login says the same as config check
conf "$SSH_KEY.pub"
st_expect_ds 4 "identity $SSH_KEY.pub: a public key, not a private one" sync a
conf "$k/open"
st_expect_ds 4 "identity $k/open: permissions 0640 are too open" sync a
[ -z "$(ls -A "$tmp/t")" ] || bad "a sync with a key open to others wrote to the target"
chmod 600 "$k/open"
ds config check >"$tmp/out" 2>&1 || bad "config check refused a 0600 key: $(cat "$tmp/out")"
conf "$SSH_KEY"
ds sync a >"$tmp/out" 2>&1 || bad "sync with the right key failed: $(cat "$tmp/out")"
cmp -s "$tmp/store/patches/a.bin" "$tmp/t/patches/a.bin" || bad "the sync with the right key shipped nothing"
exit $fail
