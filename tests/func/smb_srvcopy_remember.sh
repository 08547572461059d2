#!/usr/bin/env bash
# A server-side copy fallback is remembered across runs (issue 12). A share
# that does not copy on its side (the test hook reads every splice's source
# through a second share of the same directory: libsmbclient then copies
# through the worker, silently) costs each run a probe: the first 256 KiB of
# a long COPY read across the link before the worker sees it and refuses.
# The run that sees it records it in the catalog (when, and the server's
# url); later runs send whole files from the start, without the probe,
# and say so in their events; `status` shows it. After 24 h (here: the
# record's time moved back 25 h in catalog.db) the next run probes again.
# Behind the counting relay, 6 files of 1 MiB with 4 KiB changed in each
# per run: bytes back from smbd of the first run (probe), the second (none:
# under 128 KiB) and the third (probe again: 256 KiB or more).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_srvcopy_remember
smbd_start "$tmp/smbd"
smbd_relay "$tmp/count"
smbd_sync_conf w "$SMBD_RELAY_PORT" engines
mkdir -p "$store/engines"
for i in 1 2 3 4 5 6; do head -c $((1 << 20)) /dev/urandom >"$store/engines/f$i.bin"; done
ds scan >/dev/null 2>&1 && ds sync w >/dev/null 2>"$tmp/err" || bad "first sync: $(cat "$tmp/err")"

# update N: 4 KiB changed in the middle of every file, synced to the share
# without server-side copy; the bytes back from smbd into down.N
update() {
  local u0 d0 u1 d1
  python3 - "$store/engines" <<'PY'
import os, sys
for n in sorted(os.listdir(sys.argv[1])):
    with open(os.path.join(sys.argv[1], n), "r+b") as f:
        f.seek(512 * 1024); f.write(os.urandom(4096))
PY
  ds scan >/dev/null 2>&1 || bad "scan $1"
  read -r u0 d0 <"$tmp/count"
  DISTSYNC_TEST_SMB_SPLICE_SHARE=dist2 ds sync w --no-scan >"$tmp/out.$1" 2>&1 ||
    bad "update $1: $(tail -3 "$tmp/out.$1")"
  sleep 0.3 # the relay's last writes
  read -r u1 d1 <"$tmp/count"
  down[$1]=$((d1 - d0))
  st_check_converged "$store" "$target" "update $1"
  ds history --events w >"$tmp/ev.$1" 2>&1 || bad "history $1: $(cat "$tmp/ev.$1")"
}
declare -a down

update 1
grep -q 'the rest of the run sends whole files' "$tmp/out.1" ||
  bad "update 1 did not meet the fallback: $(grep 'SMB worker' "$tmp/out.1")"
ds status w --no-scan >"$tmp/st" 2>&1
grep -q 'server-side copy: refused by the share at .* then try it again' "$tmp/st" ||
  bad "status does not show the remembered fallback: $(cat "$tmp/st")"

update 2
grep -q 'refused at .*, remembered): this run sends whole files' "$tmp/ev.2" ||
  bad "update 2's events do not say it sent whole files from the start: $(grep -i 'whole' "$tmp/ev.2")"
grep -q 'server-side copy fell back' "$tmp/out.2" && bad "update 2 probed again: $(grep 'fell back' "$tmp/out.2")"
[ "${down[2]}" -lt $((128 * 1024)) ] ||
  bad "update 2: ${down[2]} bytes came back from smbd (a probe: 256 KiB)"

# 25 h later: the record's time moved back
python3 - "$tmp/state" <<'PY'
import glob, sqlite3, sys
db = sqlite3.connect(glob.glob(sys.argv[1] + "/catalog*.db")[0])
n = db.execute("UPDATE meta SET value = value - 25 * 3600 WHERE key = 'srvcopy_off:w'").rowcount
db.commit()
sys.exit(0 if n == 1 else 1)
PY
[ $? = 0 ] || bad "no srvcopy_off:w record in the catalog"
update 3
grep -q 'tried again' "$tmp/ev.3" || bad "update 3's events do not say it tried again: $(grep -i 'server-side' "$tmp/ev.3")"
[ "${down[3]}" -ge $((256 * 1024)) ] ||
  bad "update 3: ${down[3]} bytes came back from smbd (no probe after 24 h)"
ds status w --no-scan >"$tmp/st" 2>&1
grep -q 'server-side copy: refused by the share at' "$tmp/st" ||
  bad "the fallback found again is not remembered: $(cat "$tmp/st")"
echo "smb_srvcopy_remember: bytes back from smbd: ${down[1]} (probe), ${down[2]} (remembered)," \
  "${down[3]} (after 24 h)"
st_exit smb_srvcopy_remember
