#!/usr/bin/env bash
# `distsync agent`, exec'd by the console over SSH for every run, starts
# without mapping libsmbclient and the ~100 Samba, Kerberos, LDAP and ICU
# libraries behind it (libsmbclient is dlopen'ed when an smb:// server is
# first used, src/transport/smb_dl.c): distsync's ELF file does not need
# it, and a running agent, after answering HELLO, maps no Samba library and
# at most 60 shared objects (Debian 12 today: about 55 before the change's
# 140 less the Samba ones). Prints the medians of 5 times from exec to
# HELLO_OK for `distsync agent` and distsync-agent (information: the machine
# is shared, so no bound is put on them).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
: "${DISTSYNC_AGENT:?}"
st_init agent_startup
mkdir -p "$tmp/root"

needed=$(readelf -d "$DISTSYNC" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
grep -q '^libsmbclient\.' <<<"$needed" && bad "$DISTSYNC needs libsmbclient at start (NEEDED)"

cat >"$tmp/probe.py" <<'PY'
import os, statistics, struct, subprocess, sys, time
ds, agent, root = sys.argv[1:4]

def s(b):
    return struct.pack(">H", len(b)) + b

p = struct.pack(">IHH", 0x44534150, 1, 0xFFFF) + s(b"agent_startup") + s(b"test")
HELLO = struct.pack(">IBBHI", len(p), 1, 0, 0, 7) + p

def hello(argv, maps=False):
    t0 = time.monotonic()
    pr = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    pr.stdin.write(HELLO)
    pr.stdin.flush()
    h = pr.stdout.read(12)
    ms = (time.monotonic() - t0) * 1000
    if len(h) != 12 or h[4] != 0x81:
        sys.exit("%s: no HELLO_OK (got %r)" % (argv, h))
    libs = None
    if maps:
        with open("/proc/%d/maps" % pr.pid) as f:
            libs = sorted({l.split()[-1] for l in f if ".so" in l.split()[-1]})
    pr.stdin.close()
    if pr.wait() != 0:
        sys.exit("%s: exit %d" % (argv, pr.returncode))
    return ms, libs

_, libs = hello([ds, "agent", "--root", root], maps=True)
samba = [l for l in libs if "smbclient" in l or "samba" in l]
if samba:
    print("MAPS: distsync agent maps %d shared objects, Samba ones: %s" % (len(libs), " ".join(samba[:4])))
elif len(libs) > 60:
    print("MAPS: distsync agent maps %d shared objects (at most 60)" % len(libs))
print("  distsync agent maps %d shared objects at HELLO_OK" % len(libs))
for argv in ([ds, "agent", "--root", root], [agent, "agent", "--root", root]):
    med = statistics.median(hello(argv)[0] for _ in range(5))
    print("  exec to HELLO_OK, median of 5: %6.1f ms  %s"
          % (med, os.path.basename(argv[0])))
PY
out=$(python3 "$tmp/probe.py" "$DISTSYNC" "$DISTSYNC_AGENT" "$tmp/root" 2>&1) || bad "the HELLO probe failed: $out"
echo "$out"
grep -q '^MAPS:' <<<"$out" && bad "$(grep '^MAPS:' <<<"$out")"
st_exit agent_startup
