"""The status page in a real browser (tests/func/daemon_web.sh): headless
Chromium, driven through DevTools (cdp.py), against a running daemon.

  web_check.py TMP URL TOKEN STATUS_JSON FROZEN PRESS [TUNNEL_URL [ROLLOUTS_JSON]]

TMP: scratch folder (the browser's profile); URL: the daemon's TCP
listener; STATUS_JSON: `distsync status --json` of every server; FROZEN:
the frozen servers' names, one per line; PRESS: the server whose Run now
is pressed; TUNNEL_URL: a TCP relay to the daemon's Unix socket (the page
must need no token there), or ""; ROLLOUTS_JSON: `distsync rollout status
--json` (the page's rollouts must show the same), optional.

Checks, each a FAIL line: without the token (or with a wrong one) the
page asks for it; with
#token= it takes it (and drops it from the address bar); each server's
state, missing/outdated/drifted counts and sizes equal status --json's,
frozen as `distsync status` says; a hostile file name is shown as text;
Run now puts a live run with a progress bar on the page that `distsync
runs --json` lists, and the server turns "in sync" on a later refresh by
itself, the run's events open; the site's Run now runs the site's
servers; no script error and no CSP violation. Exit 0 all good, 1 a
failure, 77 Chromium cannot start here.
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import cdp  # noqa: E402

fails = []


def bad(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    fails.append(msg)


def fmt_bytes(n):
    """As the CLI and the page print sizes (IEC)."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    v, i = float(n), 0
    while v >= 1024 and i < len(units) - 1:
        v /= 1024
        i += 1
    return f"{n} B" if i == 0 else f"{v:.1f} {units[i]}"


# The page's server rows as it shows them: name, the state cell's badges,
# and the text of each count cell.
ROWS_JS = """
Array.from(document.querySelectorAll('tr.server')).map(tr => ({
  server: tr.dataset.server,
  badges: Array.from(tr.querySelectorAll('td.state .badge')).map(b => b.textContent),
  missing: tr.querySelector('td[data-k="missing"]').textContent,
  outdated: tr.querySelector('td[data-k="outdated"]').textContent,
  drifted: tr.querySelector('td[data-k="drifted"]').textContent,
  runNowDisabled: tr.querySelector('button[data-run-now]').disabled,
}))
"""


def js_str(s):
    return json.dumps(s)


def check_rows(b, status, frozen):
    rows = {r["server"]: r for r in b.eval(ROWS_JS)}
    if sorted(rows) != sorted(s["server"] for s in status):
        bad(f"the page lists servers {sorted(rows)}, status --json {sorted(s['server'] for s in status)}")
    for s in status:
        r = rows.get(s["server"])
        if r is None:
            continue
        c, by = s["counts"], s["bytes"]
        for k in ("missing", "outdated", "drifted"):
            want = "0" if c[k] == 0 else f"{c[k]} · {fmt_bytes(by[k])}"
            if r[k] != want:
                bad(f"server {s['server']}: the page shows {k} '{r[k]}', status --json says '{want}'")
        pending = c["missing"] + c["outdated"] + c["unrecorded"] + c["unreadable"]
        want = "drifted" if c["drifted"] else "pending" if pending else "in sync"
        if not r["badges"] or r["badges"][0] != want:
            bad(f"server {s['server']}: the page's state is {r['badges']}, status --json means '{want}'")
        is_frozen = "frozen" in r["badges"]
        if is_frozen != (s["server"] in frozen):
            bad(f"server {s['server']}: the page shows frozen={is_frozen}, distsync status: "
                f"{'frozen' if s['server'] in frozen else 'not frozen'}")
        if r["runNowDisabled"] != (s["server"] in frozen):
            bad(f"server {s['server']}: Run now disabled={r['runNowDisabled']} (frozen: {s['server'] in frozen})")
    return rows


def check_report(b, status, server):
    """Opens the server's file status report: every listed path is there, as text."""
    b.eval(f"""Array.from(document.querySelectorAll('tr.server')).find(tr => tr.dataset.server === {js_str(server)})
               .querySelector('td.name button').click(), true""")
    text = b.wait_for("document.querySelector('tr.detail .detail-body') && "
                      "document.querySelector('tr.detail .detail-body').textContent", 10,
                      f"the file status report of {server}")
    s = next(x for x in status if x["server"] == server)
    for k in ("missing", "outdated"):
        for f in s[k]:
            if f["path"] not in text:
                bad(f"{server}'s report on the page lacks {k} file {f['path']!r}")
    if b.eval("document.querySelectorAll('img').length") != 0 or b.eval("document.title") == "pwned":
        bad("a file name was parsed as HTML (an <img> element appeared)")


def press_run_now(b, server, conf):
    b.eval(f"""Array.from(document.querySelectorAll('tr.server')).find(tr => tr.dataset.server === {js_str(server)})
               .querySelector('button[data-run-now]').click(), true""")
    note = b.wait_for("!document.getElementById('notice').hidden && "
                      "document.getElementById('notice').textContent", 15, "the Run now notice")
    m = re.match(r"Run (\S+) queued for " + re.escape(server), note)
    if not m:
        bad(f"Run now {server}: the page says {note!r}")
        return
    rid = m.group(1)
    print(f"web_check: Run now {server}: run {rid}")
    # the page shows it live with its progress bar (the site's 2 Mbit cap
    # keeps it running for seconds)
    row = b.wait_for(f"""(() => {{ const tr = Array.from(document.querySelectorAll('#live tr.run'))
                            .find(t => t.dataset.run === {js_str(rid)});
                          return tr && tr.dataset.state === 'running' && tr.querySelector('.bar') &&
                                 tr.textContent; }})()""", 30, f"run {rid} running on the page")
    if "files" not in row or "%" not in row:
        bad(f"run {rid}: the live row has no progress: {row!r}")
    out = subprocess.run([os.environ["DISTSYNC"], "-c", conf, "runs", "--json"], capture_output=True,
                         text=True, timeout=20)
    try:
        ids = [r["id"] for r in json.loads(out.stdout)["runs"]]
    except (ValueError, KeyError, TypeError):
        ids = None
    if ids is None or rid not in ids:
        bad(f"distsync runs --json does not list the page's run {rid}: {out.stdout[:300]} {out.stderr[:300]}")
    # the page refreshes itself: the run ends and the server turns in sync
    b.wait_for(f"""(() => {{ const tr = Array.from(document.querySelectorAll('tr.server'))
                           .find(t => t.dataset.server === {js_str(server)});
                         const s = tr && tr.querySelector('td.state .badge');
                         return s && s.textContent === 'in sync'; }})()""", 45,
               f"{server} in sync on the page after its run")
    b.wait_for(f"""Array.from(document.querySelectorAll('#recent tr.run'))
                   .some(t => t.dataset.run === {js_str(rid)} && t.dataset.state === 'ok')""", 15,
               f"run {rid} ok under Recent runs")
    # its events open under it
    b.eval(f"""Array.from(document.querySelectorAll('#recent tr.run')).find(t => t.dataset.run === {js_str(rid)})
               .querySelector('button').click(), true""")
    b.wait_for("document.querySelector('#recent table.events') !== null", 10, f"the events of run {rid}")


# The page's rollouts as it shows them (the upgrade gate's section).
ROLLOUTS_JS = """
({
  rollouts: Array.from(document.querySelectorAll('div.rollout')).map(d => ({
    name: d.dataset.rollout,
    state: d.querySelector('.rollout-state .badge').textContent,
    reason: d.querySelector('.rollout-reason') ? d.querySelector('.rollout-reason').textContent : '',
    queue: d.querySelector('[data-k="queue"]').textContent,
    staged: d.querySelector('[data-k="staged"]').textContent,
    unstaged: d.querySelector('[data-k="unstaged"]') ? d.querySelector('[data-k="unstaged"]').textContent : '',
    rings: Array.from(d.querySelectorAll('tr.ring')).map(tr => {
      const o = {name: tr.dataset.ring};
      for (const td of tr.querySelectorAll('td.num')) o[td.dataset.k] = td.textContent;
      o.state = tr.querySelector('td.state .badge').textContent;
      const w = tr.querySelector('td.state .why');
      o.why = w ? w.textContent : '';
      return o;
    }),
  })),
  slots: Array.from(document.querySelectorAll('tr.slot')).map(tr => ({
    level: tr.dataset.level, name: tr.dataset.name,
    used: tr.querySelector('td[data-k="used"]').textContent,
    cap: tr.querySelector('td[data-k="cap"]').textContent,
  })),
})
"""


def check_rollouts(b, want):
    """The rollouts section against `distsync rollout status --json`: each
    rollout's state and reason, queue, staging, each ring's counts and why
    it is closed, and the slots in use against every cap."""
    b.wait_for("document.querySelectorAll('div.rollout').length > 0", 15, "the rollouts on the page")
    got = b.eval(ROLLOUTS_JS)
    pr = {r["name"]: r for r in got["rollouts"]}
    if sorted(pr) != sorted(r["name"] for r in want):
        bad(f"the page lists rollouts {sorted(pr)}, rollout status --json {[r['name'] for r in want]}")
    for w in want:
        p = pr.get(w["name"])
        if p is None:
            continue
        exp = {"state": w["state"], "reason": f"Paused: {w['reason']}" if w["state"] == "paused" else "",
               "queue": str(w["waiting"]), "staged": f"{w['staged']} of {w['servers']}"}
        notyet = [x["server"] for x in w["staging"] if not x["staged"]]
        exp["unstaged"] = f" (not yet: {', '.join(notyet)})" if notyet else ""
        for k, v in exp.items():
            if p[k] != v:
                bad(f"rollout {w['name']}: the page shows {k} {p[k]!r}, rollout status --json {v!r}")
        prings = {g["name"]: g for g in p["rings"]}
        if [g["name"] for g in p["rings"]] != [g["name"] for g in w["rings"]]:
            bad(f"rollout {w['name']}: rings {list(prings)} on the page, {[g['name'] for g in w['rings']]} in --json")
        for g in w["rings"]:
            pg = prings.get(g["name"], {})
            for k in ("members", "granted", "waiting", "succeeded", "failed", "expired"):
                if pg.get(k) != str(g[k]):
                    bad(f"rollout {w['name']} ring {g['name']}: {k} {pg.get(k)!r} on the page, {g[k]} in --json")
            if pg.get("state") != ("open" if g["open"] else "closed") or pg.get("why") != g["why"]:
                bad(f"rollout {w['name']} ring {g['name']}: the page says {pg.get('state')!r} {pg.get('why')!r}, "
                    f"--json open={g['open']} why={g['why']!r}")
    slots = {(c["level"], c["name"]): c for c in got["slots"]}
    for c in want[0]["caps"] if want else []:
        if c["cap"] is None and c["used"] == 0 and c["bw_cap"] is None and c["level"] != "global":
            continue
        p = slots.get((c["level"], c["name"]))
        exp = (str(c["used"]), "no cap" if c["cap"] is None else str(c["cap"]))
        if p is None or (p["used"], p["cap"]) != exp:
            bad(f"slots of {c['level']} {c['name']}: the page shows {p}, rollout status --json {exp}")
    print(f"web_check: rollouts {sorted(pr)}, {len(got['slots'])} slot rows checked")


def press_site(b, site, server):
    """The site's Run now: a run of its servers."""
    b.eval(f"""Array.from(document.querySelectorAll('div.site')).find(d => d.dataset.site === {js_str(site)})
               .querySelector('button[data-run-now="site"]').click(), true""")
    note = b.wait_for(f"""(() => {{ const n = document.getElementById('notice');
                          return !n.hidden && n.textContent.includes('for site ' + {js_str(site)}) && n.textContent; }})()""",
                      15, f"the Run now notice of site {site}")
    rid = re.match(r"Run (\S+) queued", note).group(1)
    b.wait_for(f"""(() => {{ const t = Array.from(document.querySelectorAll('tr.run')).find(t => t.dataset.run === {js_str(rid)});
                         return t && t.dataset.state === 'ok'; }})()""", 30, f"site {site}'s run {rid} ok on the page")
    find = f"Array.from(document.querySelectorAll('#recent tr.run')).find(t => t.dataset.run === {js_str(rid)})"
    b.eval(f"{find}.querySelector('button').click(), true")
    got = b.wait_for(f"""(() => {{ const d = {find}.nextElementSibling;
                         return d && d.classList.contains('detail') &&
                                Array.from(d.querySelectorAll('table.inner:not(.events) tbody tr'))
                                  .map(r => r.firstChild.textContent); }})()""", 10, f"the servers of run {rid}")
    if got != [server]:
        bad(f"site {site}'s run {rid} synced {got}, not [{server!r}]")


def main():
    tmp, url, token, status_path, frozen_path, press = sys.argv[1:7]
    tunnel = sys.argv[7] if len(sys.argv) > 7 else ""
    rollouts = json.load(open(sys.argv[8])) if len(sys.argv) > 8 else None
    conf = os.environ["DISTSYNC_CONF"]
    status = json.load(open(status_path))
    frozen = set(open(frozen_path).read().split())
    try:
        b = cdp.Browser(os.path.join(tmp, "chromium-profile"))
    except cdp.Unavailable as e:
        print(f"SKIP: {e}")
        return 77
    try:
        b.open_page()
        # no token: the page asks for it, and shows nothing else
        b.navigate(url + "/")
        b.wait_for("!document.getElementById('login').hidden", 15, "the token form without a token")
        if not b.eval("document.getElementById('main').hidden"):
            bad("without the token the page shows its data")
        # a wrong token: refused, and asked again
        b.navigate("about:blank")
        b.navigate(f"{url}/#token=wrong-{token}")
        b.wait_for("!document.getElementById('login').hidden && "
                   "document.getElementById('login-err').textContent.includes('refused')", 15,
                   "the token form again after a wrong token")
        login_problems = b.problems(ignore_network=True)  # the 401s are network errors
        b.events.clear()
        # the token in the fragment of a page being opened: taken, and gone
        # from the address bar
        b.navigate("about:blank")
        b.navigate(f"{url}/#token={token}")
        b.wait_for("document.body.dataset.refreshes >= 1", 20, "the page's first refresh with the token")
        href = b.eval("location.href")
        if token in href or "#" in href:
            bad(f"the token stays in the address bar: {href}")
        check_rows(b, status, frozen)
        if rollouts is not None:
            check_rollouts(b, rollouts)
        b.screenshot(os.path.join(tmp, "page.png"))
        check_report(b, status, press)
        press_run_now(b, press, conf)
        press_site(b, "paris", press)
        if os.environ.get("WEB_SHOT"):
            b.screenshot(os.environ["WEB_SHOT"])
        for p in login_problems + b.problems():
            bad(f"the page: {p}")
        if tunnel:  # through the Unix socket: no token asked
            b.events.clear()
            b.navigate(tunnel + "/")
            b.wait_for("document.body.dataset.refreshes >= 1", 20, "the page through the socket, no token")
            if not b.eval("document.getElementById('login').hidden"):
                bad("through the Unix socket the page asks for a token")
            for p in b.problems():
                bad(f"the page through the socket: {p}")
    except cdp.CdpError as e:
        bad(str(e))
    finally:
        b.close()
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
