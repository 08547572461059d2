#!/usr/bin/env bash
# Issue 15, console backup and restore, through the CLI:
#  - backup --out writes a tar + zstd archive, mode 0600, whose MANIFEST
#    records the version, the console id, the date and every member's
#    SHA-256 (checked here against the extracted members): the config, the
#    catalog, the ssh:// server's known_hosts;
#  - without --include-secrets the identity file's bytes are nowhere in the
#    archive, the MANIFEST lists it as omitted and stderr says so; with it,
#    they are there;
#  - restore onto a fresh console (config, state and known_hosts removed)
#    puts each file back with its mode, and `status` (the server's report)
#    and `history` (text and --json --events) print what they printed
#    before the backup;
#  - restore over an existing console without --force is refused (exit 1,
#    naming the files, nothing changed); with --force the old files are
#    kept as .bak, and a catalog another process has open is refused;
#    --dry-run lists the destinations and writes nothing;
#  - a backup whose catalog is at an older schema (4) restores on this
#    binary with the migrations run (user_version is the latest, history
#    works).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init backup_restore
store=$tmp/store
st_gen "$store" 0 "$tmp/known" --files 12 --max 4096 || bad "mkstore"
mkdir -p "$tmp/t" "$tmp/ssh"
st_conf "$tmp/c.conf" "$store" "$tmp/state" srv "file://$tmp/t" local
secret="SECRET-KEY-$RANDOM$RANDOM-do-not-ship"
printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n-----END OPENSSH PRIVATE KEY-----\n' "$secret" >"$tmp/ssh/id_test"
chmod 600 "$tmp/ssh/id_test"
echo "far.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBackupTestKnownHostsLine" >"$tmp/ssh/kh"
chmod 640 "$tmp/ssh/kh"
printf '\n[server far]\nurl = ssh://u@far.example/srv\nidentity = %s\nknown_hosts = %s\n' \
  "$tmp/ssh/id_test" "$tmp/ssh/kh" >>"$tmp/c.conf"
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }

ds sync srv >/dev/null 2>&1 || bad "first sync"
st_gen "$store" 1 "$tmp/known" --files 12 --max 4096 || bad "mkstore gen 1"
ds sync srv >/dev/null 2>&1 || bad "second sync"
head -c 3000 /dev/urandom >"$store/patches/pending.bin" # status has work to report
ds scan >/dev/null 2>&1 || bad "scan"

chmod 640 "$tmp/state/catalog.db" # not the mode of the online copy (0600): restore gives this one back
# what the console says before the backup (the retain store is not backed up)
report() { # report OUTFILE
  { ds status srv --no-scan; echo "exit $?"; } 2>&1 | grep -v '^console: retain store' >"$1"
  ds history >>"$1" 2>&1
  ds history --json --events >>"$1" 2>&1
}
report "$tmp/before"
grep -q "^status srv: 1 missing" "$tmp/before" || bad "status before: $(head -3 "$tmp/before")"
[ "$(grep -c '^[0-9].* srv ' "$tmp/before")" -ge 2 ] || bad "history before lists fewer than 2 runs: $(cat "$tmp/before")"

# backup without secrets
ds backup --out "$tmp/b1.tar.zst" >"$tmp/out" 2>"$tmp/err" || bad "backup: $(cat "$tmp/err")"
[ "$(stat -c %a "$tmp/b1.tar.zst")" = 600 ] || bad "archive mode $(stat -c %a "$tmp/b1.tar.zst"), expected 600"
grep -q "left out secret $tmp/ssh/id_test" "$tmp/err" || bad "backup does not say the secret was left out: $(cat "$tmp/err")"
ls "$tmp"/b1.tar.zst.tmp.* >/dev/null 2>&1 && bad "a temporary archive was left behind"
mkdir "$tmp/x1" && zstd -dcq "$tmp/b1.tar.zst" | tar -x -C "$tmp/x1" || bad "the archive is not tar + zstd"
zstd -dcq "$tmp/b1.tar.zst" | grep -qa "$secret" && bad "the secret is in the archive without --include-secrets"
python3 - "$tmp/x1" "$tmp" <<'PY' || bad "MANIFEST of the backup"
import hashlib, os, socket, sys
d, tmp = sys.argv[1:]
lines = open(os.path.join(d, "MANIFEST")).read().splitlines()
assert lines[0] == "distsync-backup 1", lines[0]
rec = {l.split(" ", 1)[0]: l.split(" ", 1)[1] for l in lines[1:4]}
assert rec["version"], rec
assert rec["console"].startswith(socket.gethostname() + ":"), rec
files = [l.split(" ", 6) for l in lines if l.startswith("file ")]
roles = sorted(f[2] for f in files)
assert roles == ["catalog", "config", "known_hosts"], roles
for f in files:
    data = open(os.path.join(d, f[1]), "rb").read()
    assert hashlib.sha256(data).hexdigest() == f[3], f
    assert len(data) == int(f[4]), f
dests = {f[2]: (f[6], f[5]) for f in files}
assert dests["config"][0] == os.path.realpath(tmp + "/c.conf"), dests
assert dests["catalog"][0] == tmp + "/state/catalog.db", dests
assert dests["known_hosts"] == (tmp + "/ssh/kh", "0640"), dests
om = [l for l in lines if l.startswith("omitted ")]
assert om == ["omitted secret " + tmp + "/ssh/id_test"], om
PY
# with secrets
ds backup --out "$tmp/b2.tar.zst" --include-secrets >"$tmp/out" 2>"$tmp/err" || bad "backup --include-secrets: $(cat "$tmp/err")"
zstd -dcq "$tmp/b2.tar.zst" | grep -qa "$secret" || bad "the secret is not in the archive with --include-secrets"
grep -q "left out" "$tmp/err" && bad "--include-secrets still leaves something out: $(cat "$tmp/err")"

# restore over the live console: refused without --force, nothing changed
sum_before=$(cat "$tmp/c.conf" "$tmp/ssh/kh" | sha256sum)
"$DISTSYNC" restore "$tmp/b2.tar.zst" >"$tmp/out" 2>"$tmp/err"
[ $? = 1 ] || bad "restore over an existing console was not refused (exit 1)"
grep -q "$tmp/state/catalog.db" "$tmp/err" && grep -q "force" "$tmp/err" || bad "the refusal does not name the files or --force: $(cat "$tmp/err")"
[ "$(cat "$tmp/c.conf" "$tmp/ssh/kh" | sha256sum)" = "$sum_before" ] || bad "a refused restore changed files"
ls "$tmp"/state/.catalog.db.restore.* >/dev/null 2>&1 && bad "a refused restore left a temporary file"

# restore onto a fresh console
mv "$tmp/state" "$tmp/state.old"
rm -f "$tmp/c.conf" "$tmp/ssh/kh" "$tmp/ssh/id_test"
"$DISTSYNC" restore --dry-run "$tmp/b2.tar.zst" >"$tmp/out" 2>"$tmp/err" || bad "restore --dry-run: $(cat "$tmp/err")"
grep -q "would restore catalog .*$tmp/state/catalog.db" "$tmp/out" || bad "restore --dry-run does not list the catalog: $(cat "$tmp/out")"
[ -e "$tmp/c.conf" ] || [ -e "$tmp/state" ] || [ -e "$tmp/ssh/kh" ] && bad "restore --dry-run wrote files"
"$DISTSYNC" restore "$tmp/b2.tar.zst" >"$tmp/out" 2>"$tmp/err" || bad "restore on a fresh console: $(cat "$tmp/err")"
for f in c.conf state/catalog.db ssh/kh ssh/id_test; do
  grep -q "restored .*$tmp/$f" "$tmp/out" || bad "restore does not say it restored $f: $(cat "$tmp/out")"
done
[ "$(stat -c %a "$tmp/ssh/kh")" = 640 ] || bad "known_hosts mode $(stat -c %a "$tmp/ssh/kh"), expected 640"
[ "$(stat -c %a "$tmp/ssh/id_test")" = 600 ] || bad "identity mode $(stat -c %a "$tmp/ssh/id_test"), expected 600"
[ "$(stat -c %a "$tmp/state/catalog.db")" = 640 ] || bad "catalog mode $(stat -c %a "$tmp/state/catalog.db"), expected 640 (the original's)"
grep -q "$secret" "$tmp/ssh/id_test" || bad "the identity file was not restored"
report "$tmp/after"
diff "$tmp/before" "$tmp/after" >"$tmp/diff" || bad "status/history differ after restore: $(head -20 "$tmp/diff")"
python3 -c "
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
" "$tmp/state/catalog.db" || bad "the restored catalog fails integrity_check"

# --force while another process has the catalog open (a daemon): refused
python3 - "$tmp/state/catalog.db" "$tmp/holding" "$tmp/release" <<'PY' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN")
db.execute("SELECT count(*) FROM run").fetchone()  # a read transaction: WAL in use
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
db.execute("COMMIT")
PY
holder=$!
st_pids+=("$holder")
for _ in $(seq 1 100); do [ -e "$tmp/holding" ] && break; sleep 0.05; done
sum_cat=$(sha256sum <"$tmp/state/catalog.db")
"$DISTSYNC" restore --force "$tmp/b1.tar.zst" >"$tmp/out" 2>"$tmp/err"
[ $? = 1 ] || bad "restore --force over a catalog in use was not refused"
grep -q "in use" "$tmp/err" || bad "the refusal does not say the catalog is in use: $(cat "$tmp/err")"
[ "$(sha256sum <"$tmp/state/catalog.db")" = "$sum_cat" ] && [ ! -e "$tmp/state/catalog.db.bak" ] ||
  bad "a refused restore --force touched the catalog"
touch "$tmp/release"
wait "$holder"

# --force: replaces, keeps .bak
echo "# local edit" >>"$tmp/c.conf"
"$DISTSYNC" restore --force "$tmp/b1.tar.zst" >"$tmp/out" 2>"$tmp/err" || bad "restore --force: $(cat "$tmp/err")"
grep -q "# local edit" "$tmp/c.conf.bak" || bad "restore --force kept no .bak of the config"
[ -s "$tmp/state/catalog.db.bak" ] || bad "restore --force kept no .bak of the catalog"
grep -q "# local edit" "$tmp/c.conf" && bad "restore --force did not replace the config"
grep -q "left out secret $tmp/ssh/id_test" "$tmp/err" || bad "restore does not say the backup left the secret out: $(cat "$tmp/err")"

# an older catalog schema restores on this binary: migrations run
python3 "$DS_SRC/tests/func/lib/mkbackup.py" "$tmp/b1.tar.zst" "$tmp/old.tar.zst" old-schema || bad "mkbackup old-schema"
rm -rf "$tmp/state" "$tmp/c.conf" "$tmp/c.conf.bak" "$tmp/ssh/kh"
"$DISTSYNC" restore "$tmp/old.tar.zst" >"$tmp/out" 2>"$tmp/err" || bad "restore of a schema-4 backup: $(cat "$tmp/err")"
v=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA user_version').fetchone()[0])" "$tmp/state/catalog.db")
[ "$v" -ge 5 ] || bad "the restored schema-4 catalog was not migrated (user_version $v)"
ds freeze srv --reason "after restore" >/dev/null 2>&1 || bad "freeze (a migration-5 table) on the migrated catalog"
ds history >"$tmp/h" 2>&1 || bad "history on the migrated catalog"
# migration 7: the files the catalog had form scan generation 1
g=$(python3 -c "import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); print(d.execute('SELECT (SELECT COUNT(*) FROM file), (SELECT COUNT(*) FROM file_version WHERE first_gen = 1 AND last_gen IS NULL), (SELECT COUNT(*) FROM scan_gen WHERE id = 1 AND done_at IS NOT NULL)').fetchone())" "$tmp/state/catalog.db")
case "$g" in "(0, 0, "*) bad "migration 7: the backup's catalog has no files to check ($g)" ;;
"("*", "*", 1)") [ "$(echo "$g" | cut -d, -f1 | tr -d '(')" = "$(echo "$g" | cut -d, -f2 | tr -d ' ')" ] ||
  bad "migration 7: files and generation-1 versions differ ($g)" ;;
*) bad "migration 7: no completed generation 1 ($g)" ;;
esac
st_exit backup_restore
