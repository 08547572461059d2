#!/usr/bin/env python3
# A slow link for tests: run as a server's `agent =`, it starts the real
# agent ($DISTSYNC agent ARGS...) and relays the console's bytes to it at
# DS_SLOW_BPS bytes/s (default 4 MB/s); replies pass straight through.
# EOF from the console closes the agent's stdin. SIGINT is ignored here so
# only the console reacts to a terminal's Ctrl-C (as the real agent, in its
# own process group, never sees it).
import os, signal, subprocess, sys, time

signal.signal(signal.SIGINT, signal.SIG_IGN)
bps = int(os.environ.get("DS_SLOW_BPS", "4000000"))
child = subprocess.Popen([os.environ["DISTSYNC"]] + sys.argv[1:], stdin=subprocess.PIPE)
step = max(bps // 20, 1)
try:
    while True:
        b = os.read(0, step)
        if not b:
            break
        child.stdin.write(b)
        child.stdin.flush()
        time.sleep(len(b) / bps)
except (BrokenPipeError, OSError):
    pass
try:
    child.stdin.close()
except OSError:
    pass
sys.exit(child.wait())
