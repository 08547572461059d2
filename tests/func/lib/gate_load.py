#!/usr/bin/env python3
"""Simulated upgrade clients against the daemon's gate API (tests/func/gate_load.sh,
bench/gate).

Each of --clients clients (PREFIX-NNNN for each --site PREFIX) asks for an
upgrade until granted (a wait is retried after --retry ms, not retry_after,
to load the gate), holds the slot for --hold ms, heartbeats once and reports
success. --threads threads share the clients, one keep-alive connection each.
A connection error (the daemon killed) is retried on a new connection until
--deadline.

Every grant and release is logged with its client-side times. A slot is
certainly held from the grant's reply to the report's first send (a report
retried after the daemon was killed may have been carried out by the first
attempt, its reply lost), so the check is sound: more grants alive at one
instant than a cap is a real violation. Checks:
  - no instant exceeds --cap global, site=PREFIX:N, server=NAME:N;
  - a client never gets a second token while its first is unreported (no
    double grant) and the heartbeat of a held grant never says unknown, also
    after a restart (no forgotten grant);
  - at the end GET /v1/rollouts/NAME counts every client succeeded, none granted.
Prints one JSON line of figures (decisions, per second, p50/p99 ms) and exits
1 with the violations on stderr.
"""
import argparse
import http.client
import json
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--optoken", required=True)
    ap.add_argument("--rollout", default="agent")
    ap.add_argument("--product", default="agent")
    ap.add_argument("--site", action="append", required=True)  # client ID prefix
    ap.add_argument("--clients", type=int, default=1000)  # per site
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--hold", type=float, default=2.0)
    ap.add_argument("--retry", type=float, default=5.0)
    ap.add_argument("--deadline", type=float, default=45.0)
    ap.add_argument("--cap", action="append", default=[])  # global:N site:P:N server:S:N
    ap.add_argument("--started", help="file written once the first grant came back")
    a = ap.parse_args()

    work = [f"{p}-{i:04d}" for i in range(a.clients) for p in a.site]
    work.reverse()
    lock = threading.Lock()
    events = []  # (t, +1/-1, client, server)
    lat = []
    errors = []
    conn_errors = [0]
    held = {}  # client -> token (granted, report not acknowledged)
    end = time.monotonic() + a.deadline
    t0 = time.monotonic()

    class Conn:
        def __init__(self):
            self.c = None

        def post(self, path, body, tok):
            """(status, reply, start, end): start is the first attempt's send
            time (a request retried after a connection error may have been
            carried out by the first attempt, its reply lost), end the reply's."""
            first = None
            while time.monotonic() < end:
                try:
                    if self.c is None:
                        self.c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
                    s = time.monotonic()
                    first = s if first is None else first
                    self.c.request("POST", path, json.dumps(body),
                                   {"Authorization": "Bearer " + tok,
                                    "Content-Type": "application/json"})
                    r = self.c.getresponse()
                    data = r.read()
                    e = time.monotonic()
                    with lock:
                        lat.append(e - s)
                    return r.status, json.loads(data), first, e
                except (OSError, http.client.HTTPException, ValueError):
                    with lock:
                        conn_errors[0] += 1
                    if self.c is not None:
                        self.c.close()
                    self.c = None
                    time.sleep(0.05)
            raise TimeoutError(path)

    def client(cn, cid):
        retried = False
        while True:
            st, j, s, e = cn.post("/v1/upgrade/request",
                                  {"client": cid, "product": a.product, "version": "6.0"}, a.token)
            if st != 200:
                errors.append(f"{cid}: request: {st} {j}")
                return
            if j["decision"] == "wait":
                time.sleep(a.retry / 1000)
                continue
            if j["decision"] != "grant":
                errors.append(f"{cid}: {j}")
                return
            break
        with lock:
            if cid in held and held[cid] != j["token"]:
                errors.append(f"{cid}: a second token {j['token']} while {held[cid]} is unreported")
            held[cid] = j["token"]
            events.append((e, 1, cid, j["server"]))
            if a.started and len(events) == 1:
                open(a.started, "w").close()
        time.sleep(a.hold / 1000)
        hb = {"token": j["token"], "client": cid}
        st, jj, _, _ = cn.post("/v1/upgrade/heartbeat", hb, a.token)
        if st != 200:
            errors.append(f"{cid}: heartbeat of its held grant: {st} {jj} (forgotten grant)")
        rep = {"token": j["token"], "client": cid, "outcome": "success", "version": "7.0"}
        while True:
            n0 = conn_errors[0]
            st, jj, s, _ = cn.post("/v1/upgrade/report", rep, a.token)
            retried = retried or conn_errors[0] != n0
            if st == 200 or (retried and st == 400 and "already" in jj.get("error", "")):
                break
            errors.append(f"{cid}: report: {st} {jj}")
            break
        with lock:
            events.append((s, -1, cid, j["server"]))
            held.pop(cid, None)

    def worker():
        cn = Conn()
        while True:
            with lock:
                if not work:
                    return
                cid = work.pop()
            try:
                client(cn, cid)
            except TimeoutError as ex:
                errors.append(f"{cid}: no answer before the deadline ({ex})")
                return

    th = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    dur = time.monotonic() - t0

    # the caps at every instant: releases before grants at the same time
    caps = {}
    for c in a.cap:
        p = c.split(":")
        caps[tuple(p[:-1])] = int(p[-1])
    use = {}
    peak = {}
    for t, d, cid, srv in sorted(events, key=lambda x: (x[0], x[1])):
        site = cid.rsplit("-", 1)[0]
        for k in (("global",), ("site", site), ("server", srv)):
            use[k] = use.get(k, 0) + d
            peak[k] = max(peak.get(k, 0), use[k])
            if k in caps and use[k] > caps[k]:
                errors.append(f"cap exceeded: {':'.join(k)} has {use[k]} > {caps[k]} at {t - t0:.3f}s")
    grants = sum(1 for e in events if e[1] == 1)
    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
    c.request("GET", f"/v1/rollouts/{a.rollout}", headers={"Authorization": "Bearer " + a.optoken})
    r = json.loads(c.getresponse().read())
    total = a.clients * len(a.site)
    if r["granted"] != 0 or r["succeeded"] != total or grants != total:
        errors.append(f"end: {grants} grants logged for {total} clients; the gate counts {r}")
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0
    print(json.dumps({"clients": total, "decisions": len(lat), "seconds": round(dur, 2),
                      "per_s": round(len(lat) / dur), "p50_ms": round(pct(0.5), 2),
                      "p99_ms": round(pct(0.99), 2), "conn_errors": conn_errors[0],
                      "peak": {":".join(k): v for k, v in sorted(peak.items())}}))
    for e in errors[:20]:
        print(e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
