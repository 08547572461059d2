#!/usr/bin/env bash
# New-admin pass: `plan --json` on a server that cannot be planned (an
# ssh:// server behind a real sshd whose host key is not trusted yet, a
# file:// root that does not exist) printed nothing for it on stdout: an
# empty output for `plan S --json` (not JSON at all) and `[]` for a
# selection, so a script saw "nothing to do". Each failed server is now
# {"server", "status": "failed", "error"}, as in status --json, beside
# the plans of the others; the exit stays 4.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_plan_json_failed
sshd_start "$tmp/sshd"
mkdir -p "$tmp/store/patches" "$tmp/state" "$tmp/ok" "$tmp/t"
echo x >"$tmp/store/patches/a.txt"
cat >"$tmp/d.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
classes = patches

[server sshnew]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$tmp/t
identity = $SSH_KEY
known_hosts = $tmp/known_hosts

[server gone]
url = file://$tmp/missing

[server good]
url = file://$tmp/ok
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan"

rc=0
ds plan --json sshnew >"$tmp/one.json" 2>"$tmp/one.err" || rc=$?
[ "$rc" = 4 ] || bad "plan --json of an untrusted server: exit $rc, expected 4"
python3 - "$tmp/one.json" <<'PY' || bad "plan sshnew --json: $(cat "$tmp/one.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["server"] == "sshnew" and d["status"] == "failed", d
assert "host key unknown" in d["error"] and "distsync trust sshnew" in d["error"], d
PY
rc=0
ds plan --json sshnew gone good >"$tmp/all.json" 2>"$tmp/all.err" || rc=$?
[ "$rc" = 4 ] || bad "plan --json of three servers, two failing: exit $rc, expected 4"
python3 - "$tmp/all.json" <<'PY' || bad "plan --json of three: $(cat "$tmp/all.json")"
import json, sys
d = {s["server"]: s for s in json.load(open(sys.argv[1]))}
assert set(d) == {"sshnew", "gone", "good"}, d.keys()
assert d["sshnew"]["status"] == "failed" and d["gone"]["status"] == "failed", d
assert "does not exist" in d["gone"]["error"], d["gone"]
assert "status" not in d["good"] and d["good"]["items"][0]["path"] == "patches/a.txt", d["good"]
PY
exit $fail
