#!/usr/bin/env bash
# Issue 15: backup copies the catalog with SQLite's online backup API, so
# the copy is one consistent snapshot while others write:
#  - a writer (python3 sqlite3) commits 50-row transactions into the
#    catalog, and holds each write transaction open for 100 ms, while five
#    backups run: every backup finishes, and each archived catalog passes
#    PRAGMA integrity_check and holds a whole number of those transactions
#    (never part of one), more of them in later backups;
#  - a backup taken while `distsync sync` runs (a capped server, ~5 s)
#    holds a catalog that passes integrity_check and has the store's file
#    rows and the sync's run (still 'running'); the sync itself completes.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init backup_consistent
store=$tmp/store
st_gen "$store" 0 "$tmp/known" --files 10 --max 4096 || bad "mkstore"
mkdir -p "$tmp/t" "$tmp/t2"
st_conf "$tmp/c.conf" "$store" "$tmp/state" srv "file://$tmp/t" local slow "file://$tmp/t2" local
printf 'bandwidth = 40Mbit\n' >>"$tmp/c.conf"
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
ds sync srv >/dev/null 2>&1 || bad "first sync"

# the archived catalog of backup $1, extracted to $2
catalog_of() {
  mkdir -p "$2" && zstd -dcq "$1" | tar -x -C "$2" catalog.db || bad "no catalog.db in $1"
}

python3 - "$tmp/state/catalog.db" "$tmp/stop" <<'PY' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
n = 0
while not os.path.exists(sys.argv[2]):
    db.execute("BEGIN IMMEDIATE")
    for i in range(50):
        db.execute("INSERT INTO meta(key, value) VALUES(?, ?)", ("bk:%d" % n, n))
        n += 1
    time.sleep(0.1)  # the write lock held while backups run
    db.execute("COMMIT")
PY
writer=$!
st_pids+=("$writer")
sleep 0.5
prev=-1
for i in 1 2 3 4 5; do
  start=$(date +%s%N)
  timeout 30 "$DISTSYNC" -c "$tmp/c.conf" backup --out "$tmp/w$i.tar.zst" >/dev/null 2>"$tmp/err" ||
    bad "backup $i under a writer: $(cat "$tmp/err")"
  ms=$((($(date +%s%N) - start) / 1000000))
  catalog_of "$tmp/w$i.tar.zst" "$tmp/w$i"
  n=$(python3 - "$tmp/w$i/catalog.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
ok = db.execute("PRAGMA integrity_check").fetchone()[0]
n = db.execute("SELECT count(*) FROM meta WHERE key LIKE 'bk:%'").fetchone()[0]
print(n if ok == "ok" else "integrity:" + ok)
PY
)
  case $n in
  '' | *[!0-9]*) bad "backup $i: $n" ;;
  *) [ $((n % 50)) = 0 ] || bad "backup $i holds $n writer rows: part of a transaction"
     [ "$n" -gt "$prev" ] || bad "backup $i holds $n writer rows, not more than the backup before ($prev)"
     prev=$n ;;
  esac
  echo "backup $i under a writer: ${ms} ms, $n rows"
  sleep 0.3
done
touch "$tmp/stop"
wait "$writer" || bad "the writer failed"

# a backup in the middle of a sync
ds sync slow >"$tmp/sync.out" 2>&1 &
sp=$!
st_pids+=("$sp")
for _ in $(seq 1 100); do # until the run is recorded
  python3 -c "
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
sys.exit(0 if db.execute(\"SELECT count(*) FROM run WHERE status = 'running'\").fetchone()[0] else 1)
" "$tmp/state/catalog.db" 2>/dev/null && break
  sleep 0.1
done
ds backup --out "$tmp/s.tar.zst" >/dev/null 2>"$tmp/err" || bad "backup during a sync: $(cat "$tmp/err")"
kill -0 "$sp" 2>/dev/null || bad "the sync ended before the backup was taken (the test proves nothing)"
wait "$sp" || bad "the sync failed beside the backup: $(tail -3 "$tmp/sync.out")"
catalog_of "$tmp/s.tar.zst" "$tmp/s"
python3 - "$tmp/s/catalog.db" "$store" <<'PY' || bad "the catalog backed up during a sync"
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
files = sum(len(f) for _, _, f in os.walk(sys.argv[2]))
rows = db.execute("SELECT count(*) FROM file").fetchone()[0]
assert rows == files, (rows, files)
running = db.execute("SELECT count(*) FROM run r JOIN server s ON s.id = r.server_id"
                     " WHERE s.name = 'slow' AND r.status = 'running'").fetchone()[0]
assert running == 1, running
PY
st_exit backup_consistent
