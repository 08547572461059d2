#!/usr/bin/env bash
# The daemon's API token, its TLS key and certificate and a rollout's
# enrolment token are secrets to `distsync backup`, like an identity file:
# without --include-secrets their bytes are nowhere in the archive and the
# MANIFEST lists each as omitted; with it they are in, mode 0600, and
# `restore --dry-run` on a fresh console places them where the config says.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
st_init backup_api_secrets
mkdir -p "$tmp/store/engines" "$tmp/sec" "$tmp/t1"
head -c 1000 /dev/urandom >"$tmp/store/engines/agent-7.0.msi"
api="API-TOKEN-$RANDOM$RANDOM-do-not-ship"
enrol="ENROL-TOKEN-$RANDOM$RANDOM-do-not-ship"
tlskey="TLS-KEY-$RANDOM$RANDOM-do-not-ship"
(umask 077 && printf '%s\n' "$api" >"$tmp/sec/api.token" &&
  printf '%s\n' "$enrol" >"$tmp/sec/enrol.token" &&
  printf '%s\n' "$tlskey" >"$tmp/sec/tls.key" && printf 'CERT\n' >"$tmp/sec/tls.crt")
cat >"$tmp/c.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
listen = 127.0.0.1:1
api_token_file = $tmp/sec/api.token
api_tls_cert = $tmp/sec/tls.crt
api_tls_key = $tmp/sec/tls.key

[server s1]
url = file://$tmp/t1

[package agent-7]
product = agent
version = 7.0
path = engines/agent-7.0.msi

[ring all]
members = *

[rollout agent]
product = agent
version = 7.0
rings = all
token_file = $tmp/sec/enrol.token
CONF
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan"
secrets="api.token tls.crt tls.key enrol.token"

ds backup --out "$tmp/b1.tar.zst" >"$tmp/out" 2>"$tmp/err" || bad "backup: $(cat "$tmp/err")"
zstd -dcq "$tmp/b1.tar.zst" >"$tmp/b1.tar"
for s in "$api" "$enrol" "$tlskey"; do
  grep -qa -- "$s" "$tmp/b1.tar" && bad "a secret is in the archive without --include-secrets"
done
mkdir "$tmp/x1" && tar -x -C "$tmp/x1" -f "$tmp/b1.tar"
for f in $secrets; do
  grep -qx "omitted secret $tmp/sec/$f" "$tmp/x1/MANIFEST" || bad "MANIFEST lacks omitted $f: $(cat "$tmp/x1/MANIFEST")"
  grep -q "left out secret $tmp/sec/$f" "$tmp/err" || bad "backup does not say it left out $f"
done

ds backup --out "$tmp/b2.tar.zst" --include-secrets >"$tmp/out" 2>"$tmp/err" ||
  bad "backup --include-secrets: $(cat "$tmp/err")"
zstd -dcq "$tmp/b2.tar.zst" >"$tmp/b2.tar"
for s in "$api" "$enrol" "$tlskey"; do
  grep -qa -- "$s" "$tmp/b2.tar" || bad "a secret is missing with --include-secrets"
done
mkdir "$tmp/x2" && tar -x -C "$tmp/x2" -f "$tmp/b2.tar"
for f in $secrets; do
  grep -q "^file .* secret .* 0600 $tmp/sec/$f\$" "$tmp/x2/MANIFEST" || bad "MANIFEST lacks $f: $(cat "$tmp/x2/MANIFEST")"
done
rm -rf "$tmp/state" "$tmp/sec" "$tmp/c.conf"
"$DISTSYNC" restore --dry-run "$tmp/b2.tar.zst" >"$tmp/out" 2>&1 || bad "restore --dry-run: $(cat "$tmp/out")"
for f in $secrets; do
  grep -q "$tmp/sec/$f" "$tmp/out" || bad "restore --dry-run does not place $f: $(cat "$tmp/out")"
done
st_exit backup_api_secrets
