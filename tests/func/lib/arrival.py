#!/usr/bin/env python3
"""arrival: bytes arriving at a receiver over time, and the rates they show.

usage:
  arrival.py proxy LOG LISTEN:HOST:PORT...   [--rcvbuf BYTES] [--tick SECONDS]
  arrival.py stats LOG... [--group NAME=PORT,PORT[@BPS]]... [--skip SECONDS]
                       [--margin FRACTION] [--min-mean FRACTION] [--json]

proxy: a TCP relay run on the receiving side of a link. For each LISTEN
port it accepts connections and relays them both ways to HOST:PORT (the real
receiver: a distsync agent behind socat, an rsync daemon, an rclone server).
Every --tick (default 0.01 s) it appends to LOG one line
"T BYTES_PORT1 BYTES_PORT2 ...": T is time.monotonic(), the counts are the
bytes read so far from the link side (sender to receiver only) summed over
every connection to that port. The counts are taken when the relay reads
them off the socket, so they are arrival times at the receiving host (with
a small receive buffer, --rcvbuf, default 65536, a slow relay cannot hide a
burst for long). Runs until SIGTERM.

stats: from the LOGs (of relays in several namespaces: merged, one
monotonic clock), per group of listen ports (every port when no --group; a
group "total" of every port is always added; --cap BPS is its cap), the bytes, the active time (first byte to
last byte), the mean rate, the steady rate (from the instant 10% of the
bytes had arrived to the instant 90% had), and the worst (highest) rate over any 1 s and any
100 ms window inside the active time, in bit/s. Windows start --skip
seconds after the group's first byte (default 0). With BPS (a cap in bit/s)
a ratio to it is printed. The exit status is 1 when, for a group with a
cap: with --margin, its worst 1 s window exceeds BPS * (1 + margin), or it
has no 1 s window after --skip; with --min-mean, its mean rate is below
BPS * min-mean.

Python stdlib only.
"""
import argparse
import json
import signal
import socket
import sys
import threading
import time


def proxy(a):
    specs = []
    for s in a.spec:
        lp, host, port = s.split(":")
        specs.append((int(lp), host, int(port)))
    conns = []  # [port index, bytes]; each written by one thread only
    lock = threading.Lock()

    def relay(src, dst, counter):
        try:
            while True:
                b = src.recv(1 << 16)
                if not b:
                    break
                if counter is not None:
                    counter[1] += len(b)
                dst.sendall(b)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def serve(idx, ls, host, port):
        while True:
            c, _ = ls.accept()
            try:
                u = socket.create_connection((host, port))
            except OSError:
                c.close()
                continue
            counter = [idx, 0]
            with lock:
                conns.append(counter)
            t1 = threading.Thread(target=relay, args=(c, u, counter), daemon=True)
            t2 = threading.Thread(target=relay, args=(u, c, None), daemon=True)
            t1.start()
            t2.start()
            threading.Thread(target=closer, args=(t1, t2, c, u), daemon=True).start()

    def closer(t1, t2, c, u):
        t1.join()
        t2.join()
        c.close()
        u.close()

    for i, (lp, host, port) in enumerate(specs):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # inherited by accepted sockets; set before listen so the window
        # the sender sees is small too
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
        ls.bind(("0.0.0.0", lp))
        ls.listen(64)
        threading.Thread(target=serve, args=(i, ls, host, port), daemon=True).start()

    out = open(a.log, "w")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    out.write("# ports " + " ".join(str(s[0]) for s in specs) + "\n")
    out.flush()
    while True:
        tot = [0] * len(specs)
        with lock:
            for idx, n in conns:
                tot[idx] += n
        now = time.monotonic()
        out.write("%.6f %s\n" % (now, " ".join(map(str, tot))))
        out.flush()
        if stop.is_set():
            break
        stop.wait(a.tick)
    out.close()


def load1(path):
    ports, rows = [], []
    for line in open(path):
        if line.startswith("# ports"):
            ports = [int(p) for p in line.split()[2:]]
        elif line.strip() and not line.startswith("#"):
            f = line.split()
            rows.append((float(f[0]), [int(x) for x in f[1:]]))
    return ports, rows


def load(paths):
    """Merges logs of relays in several namespaces (one monotonic clock): at
    each instant any log has a line, every log's last count so far."""
    logs = [load1(p) for p in paths]
    ports = [p for lp, _ in logs for p in lp]
    events = sorted((t, k, c) for k, (_, rows) in enumerate(logs) for t, c in rows)
    cur = [[0] * len(lp) for lp, _ in logs]
    rows = []
    for t, k, c in events:
        cur[k] = c
        rows.append((t, [x for v in cur for x in v]))
    return ports, rows


def worst(series, t0, t1, w):
    """Highest rate (bit/s) over windows of at least w seconds inside [t0, t1]."""
    best, j = None, 0
    for i, (ti, bi) in enumerate(series):
        if ti < t0:
            continue
        if ti + w > t1 + 1e-9:
            break
        j = max(j, i)
        while j < len(series) and series[j][0] < ti + w:
            j += 1
        if j >= len(series):
            break
        tj, bj = series[j]
        r = (bj - bi) * 8 / (tj - ti)
        best = r if best is None or r > best else best
    return best


def group_stats(series, skip):
    """series: [(t, bytes)] every tick, bytes non-decreasing."""
    final = series[-1][1] if series else 0
    if final == 0:
        return dict(bytes=0)
    # the first byte arrived after the last sample at 0 (and no later than
    # the first nonzero one); the last byte at the first sample at `final`
    k = next(i for i, (_, b) in enumerate(series) if b > 0)
    start = series[k - 1][0] if k > 0 else series[k][0]
    end = next(t for t, b in series if b == final)
    dur = end - start
    r = dict(bytes=final, seconds=round(dur, 3), mean_bps=final * 8 / dur if dur > 0 else None)
    # the steady rate: from the instant 10% of the bytes had arrived to the
    # instant 90% had, so the protocol's start and end (handshakes, the
    # commit's round trips) do not count
    t10, b10 = next((t, b) for t, b in series if b >= final * 0.1)
    t90, b90 = next((t, b) for t, b in series if b >= final * 0.9)
    r["steady_bps"] = (b90 - b10) * 8 / (t90 - t10) if t90 > t10 else None
    r["worst_1s_bps"] = worst(series, start + skip, end, 1.0)
    r["worst_100ms_bps"] = worst(series, start + skip, end, 0.1)
    return r


def stats(a):
    ports, rows = load(a.log)
    groups = []
    for g in a.group or []:
        name, rest = g.split("=", 1)
        cap = None
        if "@" in rest:
            rest, c = rest.split("@")
            cap = float(c)
        groups.append((name, [ports.index(int(p)) for p in rest.split(",")], cap))
    if not any(n == "total" for n, _, _ in groups):
        groups.append(("total", list(range(len(ports))), a.cap))
    res, bad = {}, []
    for name, idx, cap in groups:
        series = [(t, sum(c[i] for i in idx)) for t, c in rows]
        s = group_stats(series, a.skip)
        s["cap_bps"] = cap
        if cap:
            for k in ("mean_bps", "steady_bps", "worst_1s_bps", "worst_100ms_bps"):
                if s.get(k) is not None:
                    s[k.replace("_bps", "_ratio")] = round(s[k] / cap, 4)
            if a.margin is not None:
                w = s.get("worst_1s_bps")
                if w is None:
                    bad.append("%s: no 1 s window after the first %g s (too short to judge)"
                               % (name, a.skip))
                elif w > cap * (1 + a.margin):
                    bad.append("%s: over the cap (+%g%%) in a 1 s window" % (name, a.margin * 100))
            if a.min_mean is not None and (s.get("mean_bps") or 0) < cap * a.min_mean:
                bad.append("%s: mean below %g of the cap" % (name, a.min_mean))
        res[name] = s
    if a.json:
        print(json.dumps(res, indent=1))
    else:
        for name, s in res.items():
            def f(k):
                v = s.get(k)
                return "-" if v is None else "%.3f Mbit/s" % (v / 1e6)
            cap = s.get("cap_bps")
            print("%-8s %10d B in %7.2f s  mean %s  steady %s  worst 1s %s  worst 100ms %s%s" % (
                name, s["bytes"], s.get("seconds") or 0, f("mean_bps"), f("steady_bps"), f("worst_1s_bps"),
                f("worst_100ms_bps"), "" if not cap else "  (cap %.3f Mbit/s)" % (cap / 1e6)))
    if bad:
        print("; ".join(bad), file=sys.stderr)
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("proxy")
    p.add_argument("log")
    p.add_argument("spec", nargs="+")
    p.add_argument("--rcvbuf", type=int, default=65536)
    p.add_argument("--tick", type=float, default=0.01)
    s = sub.add_parser("stats")
    s.add_argument("log", nargs="+")
    s.add_argument("--group", action="append")
    s.add_argument("--skip", type=float, default=0.0)
    s.add_argument("--cap", type=float, help="the cap (bit/s) of group total")
    s.add_argument("--margin", type=float)
    s.add_argument("--min-mean", type=float)
    s.add_argument("--json", action="store_true")
    a = ap.parse_args()
    proxy(a) if a.cmd == "proxy" else stats(a)


if __name__ == "__main__":
    main()
