#!/usr/bin/env bash
# conf/distsync.service.in (issue 13): `cmake --install` puts the binary,
# the unit (ExecStart = the installed binary), the example config and the
# man pages in place; `systemd-analyze verify` accepts the installed unit
# (its ExecStart must exist); the hardening options are set. Skips (77) with
# a clear message where systemd-analyze is missing (Debian package systemd).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init daemon_unit
: "${DS_BUILD:?}"

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIP: systemd-analyze is not installed (apt-get install systemd): the unit is not verified"
  exit 77
fi
dest=$tmp/root
if ! out=$(cmake --install "$DS_BUILD" --prefix "$dest/usr" 2>&1); then
  bad "cmake --install failed: $out"
  st_exit daemon_unit
fi
unit=$dest/usr/lib/systemd/system/distsync.service
for f in "$dest/usr/bin/distsync" "$unit" "$dest/usr/share/man/man1/distsync.1" \
  "$dest/usr/share/man/man5/distsync.conf.5" "$dest/usr/share/doc/distsync/distsync.conf"; do
  [ -e "$f" ] || bad "cmake --install did not install $f"
done
grep -q "^ExecStart=$dest/usr/bin/distsync -c /etc/distsync/distsync.conf daemon\$" "$unit" ||
  bad "ExecStart is not the installed binary: $(grep ExecStart "$unit")"
for opt in ProtectSystem=strict PrivateTmp=yes NoNewPrivileges=yes ReadWritePaths=/var/lib/distsync \
  StateDirectory=distsync ProtectHome=read-only 'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF "$opt" "$unit" || bad "the unit lacks $opt"
done
# verify: the unit's syntax, its options and that ExecStart exists
export MANPATH=$dest/usr/share/man # Documentation= names the installed pages
if ! out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$unit" 2>&1); then
  bad "systemd-analyze verify failed: $out"
elif [ -n "$out" ]; then
  bad "systemd-analyze verify warned: $out"
fi
# and it fails on a broken unit (the check can fail)
sed 's/^ProtectSystem=strict/ProtectSystem=very/' "$unit" >"$tmp/broken.service"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$tmp/broken.service" 2>&1)
echo "$out" | grep -qi 'protect system' || bad "systemd-analyze verify did not flag a bad option: $out"
st_exit daemon_unit
