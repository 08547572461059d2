#!/usr/bin/env bash
# Round trips per file over SMB (issue 12): at 40 ms each one costs 40 ms,
# and libsmbclient waits for every reply, so a stream of small files is
# bound by their number. A real smbd behind tests/func/lib/smb_wire.py,
# which logs every SMB2 message; a round trip is a client frame (a message
# not flagged as the related part of a compound). Each count is a sync's
# frames less those of a sync with nothing to do on a share of one file
# (login, lease, manifest), divided by the files (N in 3 directories):
#  - a new file of 20 KB: at most 13 (was 19.0: a stat after the create and
#    after the seal, 3 each, and the lease file read at every publish, 4);
#  - the same file replaced through a delta (server-side copies, its
#    listing included): at most 23 (was 34.1: also a stat of the file
#    it replaces, though this session holds it open as the basis);
#  - an unchanged file, listed by the walk: at most 2 (was 8.3: a stat of
#    every entry, 3 each, as the listing carries the attributes already).
# A sync under load may cross more wall-clock seconds and read the lease
# file once more per second (4 frames): that is the margin over what is
# measured (10.4, 18.4, 1.1). Each sync converges, and a last one sends
# nothing (the sizes and mtimes recorded without a stat are the share's).
# One connection (connections = 1): what a file costs on a connection. With
# several, each also logs in and looks up the directories it has not seen
# (measured here with the default 4: 15.6 per new file, 23.7 per delta, in
# total over the four, for 37 files; smb_connections.sh tests them).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_requests
N=30
smbd_start "$tmp/smbd"
smbd_wire "$tmp/wire"
smbd_sync_conf u "$SMBD_WIRE_PORT" engines 'connections = 1'
mkdir -p "$store/engines"

# run NAME: a sync; its client frames into frames.NAME, its output into out.NAME
run() {
  ds scan >/dev/null 2>&1 || bad "scan before $1"
  : >"$tmp/wire"
  ds sync u --no-scan >"$tmp/out.$1" 2>&1 || bad "sync $1: $(cat "$tmp/out.$1")"
  sleep 0.3 # the relay's last lines
  python3 - "$tmp/wire" >"$tmp/frames.$1" <<'PY'
import sys
n = 0
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 7 and f[1] == "c" and not int(f[4], 16) & 0x4:
        n += 1
print(n)
PY
  st_check_converged "$store" "$target" "sync $1"
}
# check NAME BASE MAX: frames per file of sync NAME over BASE, at most MAX
check() {
  local per
  per=$(python3 -c 'import sys; print("%.2f" % ((int(sys.argv[1]) - int(sys.argv[2])) / int(sys.argv[3])))' \
    "$(cat "$tmp/frames.$1")" "$(cat "$tmp/frames.$2")" "$N")
  echo "smb_requests: $1: $per round trips per file (sync $(cat "$tmp/frames.$1"), base $(cat "$tmp/frames.$2"))"
  python3 -c 'import sys; sys.exit(float(sys.argv[1]) > float(sys.argv[2]))' "$per" "$3" ||
    bad "$1: $per round trips per file, more than $3"
}

echo seed >"$store/engines/seed"
run first
run base
for i in $(seq "$N"); do
  d=$store/engines/a/b$((i % 3))
  mkdir -p "$d"
  head -c 20000 /dev/urandom >"$d/f$i"
done
run new
run unchanged
for i in $(seq "$N"); do
  printf 'XYZ%05d' "$i" | dd of="$store/engines/a/b$((i % 3))/f$i" bs=1 seek=9000 conv=notrunc status=none
done
run delta
grep -q 'copied [1-9][0-9]* bytes on the server' "$tmp/out.delta" ||
  bad "the update made no server-side copy: $(grep 'SMB worker' "$tmp/out.delta")"
run after
grep -q 'sync u: ok, 0 files' "$tmp/out.after" || bad "a sync with nothing to do sent files: $(cat "$tmp/out.after")"
check new base 13
check delta base 23
check unchanged base 2
st_exit smb_requests
