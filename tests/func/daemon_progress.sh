#!/usr/bin/env bash
# Issue 13: a live run's progress moves within a file. During one 24 MiB
# file under a 24 Mbit/s cap (about 8 s), GET /v1/runs/ID and `distsync
# runs --json` show bytes_done growing at least twice before the file is
# done (files_done still 0), with a rate and an ETA; it never passes the
# total, and the run ends with bytes_done = bytes_total.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_progress

state=$tmp/state conf=$tmp/d.conf sock=$tmp/state/distsync.sock
size=$((24 * 1024 * 1024))
mkdir -p "$tmp/store/patches" "$tmp/store/engines" "$tmp/store/definitions"
head -c "$size" /dev/urandom >"$tmp/store/patches/big.bin"
en_head "$conf" "$tmp/store" "$state"
en_server "$conf" s1 "$tmp/t1" local "bandwidth = 24Mbit"
ds() { "$DISTSYNC" -c "$conf" "$@"; }

log=$tmp/daemon.log
dm_start "$log" 2026-03-10T00:00:00Z 1
api_wait_up "$log" || st_exit daemon_progress
api POST /v1/run-now '{"servers":["s1"]}'
expect 202 "run-now"
id=$(jq_py 'j["id"]')
# polls GET /v1/runs/ID over the socket every 100 ms until the run ends:
# one line per sample "files_done bytes_done bytes_total rate_bps eta_s"
python3 - "$sock" "$id" >"$tmp/samples" <<'PY' &
import http.client, json, socket, sys, time
class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sys.argv[1])
for _ in range(1200):
    c = Conn("localhost", timeout=10)
    c.request("GET", "/v1/runs/" + sys.argv[2])
    j = json.loads(c.getresponse().read())
    c.close()
    p = j["progress"]
    print(p["files_done"], p["bytes_done"], p["bytes_total"], p["rate_bps"], p["eta_s"], flush=True)
    if j["state"] not in ("queued", "running"):
        break
    time.sleep(0.1)
PY
poller=$!
# the CLI's view of the same, while the file is on its way
cli=0
for _ in $(seq 1 100); do
  b=$(ds runs --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"]; print(r[0]["progress"]["bytes_done"] if r else -1)')
  [ "$b" -gt 0 ] && [ "$b" -lt "$size" ] && { cli=1; break; }
  [ "$b" = -1 ] && break
  sleep 0.2
done
wait $poller
# within the file: files_done 0, 0 < bytes_done < size
read -r nseen rate eta past <<<"$(python3 - "$tmp/samples" "$size" <<'PY'
import sys
size = int(sys.argv[2]); seen = []; rate = eta = past = 0
for line in open(sys.argv[1]):
    fd, bd, bt, rb, es = line.split()
    fd, bd, bt = int(fd), int(bd), int(bt)
    past |= bt > 0 and bd > bt
    if fd == 0 and 0 < bd < size:
        if not seen or seen[-1] != bd:
            seen.append(bd)
        rate |= float(rb) > 0
        eta |= es != "None"
print(len(seen), rate, eta, past)
print(" ".join(map(str, seen)), file=sys.stderr)
PY
)"
echo "distinct bytes_done values within the file: $nseen"
head -8 "$tmp/samples" | tr "\n" "|"; echo
[ "$nseen" -ge 3 ] || bad "progress did not move at least twice within the file ($nseen values): $(tr '\n' '|' <"$tmp/samples")"
[ "$rate" = 1 ] || bad "no rate while the file was sent"
[ "$eta" = 1 ] || bad "no ETA while the file was sent"
[ "$past" = 0 ] || bad "bytes_done went past the total"
[ $cli = 1 ] || bad "distsync runs --json did not show progress within the file"
run_wait "$id" ok 60
api GET "/v1/runs/$id"
[ "$(jq_py 'j["progress"]["bytes_done"] == j["progress"]["bytes_total"] == '"$size")" = True ] ||
  bad "the run did not end with bytes_done = bytes_total = $size: $body"
cmp -s "$tmp/store/patches/big.bin" "$tmp/t1/patches/big.bin" || bad "the file differs on the target"
dm_stop
st_exit daemon_progress
