"""A tiny client of Chromium's DevTools protocol for the web page test
(tests/func/daemon_web.sh): headless Chromium started with
--remote-debugging-pipe (JSON messages, each ending in a NUL byte, written
to its fd 3 and read from its fd 4), so no port and no websocket are
needed. Every wait is bounded; close() always kills the browser.
"""
import json
import os
import select
import shutil
import signal
import subprocess
import time


class CdpError(Exception):
    pass


class Unavailable(Exception):
    """Chromium is not installed or cannot start here (the test skips)."""


class Browser:
    def __init__(self, user_data_dir, start_timeout=20.0):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise Unavailable("no chromium on PATH (tools/setup installs it)")
        self.to_r, self.to_w = os.pipe()      # we write, chromium reads (its fd 3)
        self.from_r, self.from_w = os.pipe()  # chromium writes (its fd 4), we read
        # chromium wants them as fds 3 and 4: the shell moves them there
        hi_r, hi_w = 100, 101
        os.dup2(self.to_r, hi_r)
        os.dup2(self.from_w, hi_w)
        args = [exe, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--remote-debugging-pipe", f"--user-data-dir={user_data_dir}",
                "--window-size=1400,1100", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # root: chromium refuses its sandbox
        self.log = open(os.path.join(os.path.dirname(user_data_dir), "chromium.log"), "wb")
        self.proc = subprocess.Popen(
            ["bash", "-c", 'exec "$@" 3<&100 4>&101 100<&- 101>&-', "bash"] + args,
            pass_fds=(hi_r, hi_w), stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            start_new_session=True)
        for fd in (hi_r, hi_w, self.to_r, self.from_w):
            os.close(fd)
        self.buf = b""
        self.seq = 0
        self.events = []
        self.session = None
        try:
            self.call("Browser.getVersion", timeout=start_timeout)
        except (CdpError, OSError) as e:
            self.close()
            raise Unavailable(f"chromium did not start: {e}; its log: {self.log_tail()}")

    def log_tail(self):
        try:
            with open(self.log.name, "rb") as f:
                return f.read()[-600:].decode("utf-8", "replace").replace("\n", " | ")
        except OSError:
            return ""

    def _read_msg(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("no message from chromium in time")
            r, _, _ = select.select([self.from_r], [], [], left)
            if not r:
                continue
            chunk = os.read(self.from_r, 65536)
            if not chunk:
                raise CdpError("chromium closed its DevTools pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, timeout=10.0, session=True):
        """Sends one command (to the attached page unless session=False)
        and returns its result; events read meanwhile go to self.events."""
        self.seq += 1
        m = {"id": self.seq, "method": method, "params": params or {}}
        if session and self.session is not None:
            m["sessionId"] = self.session
        os.write(self.to_w, json.dumps(m).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            r = self._read_msg(deadline)
            if r.get("id") == self.seq:
                if "error" in r:
                    raise CdpError(f"{method}: {r['error'].get('message')}")
                return r.get("result", {})
            if "method" in r:
                self.events.append(r)

    def open_page(self):
        """A new tab, attached: later calls go to it."""
        t = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        a = self.call("Target.attachToTarget", {"targetId": t["targetId"], "flatten": True},
                      session=False)
        self.session = a["sessionId"]
        for m in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(m)

    def navigate(self, url, timeout=15.0):
        self.call("Page.navigate", {"url": url}, timeout=timeout)

    def eval(self, expr, timeout=10.0):
        """The value of a JavaScript expression in the page (JSON-able)."""
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CdpError(f"evaluating {expr[:80]!r}: "
                           f"{d.get('exception', {}).get('description') or d.get('text')}")
        return r["result"].get("value")

    def wait_for(self, expr, timeout, what):
        """Polls expr until it is truthy; returns its value or raises."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.eval(expr)
            except CdpError as e:
                last = str(e)
            else:
                if last:
                    return last
            time.sleep(0.2)
        raise CdpError(f"{what}: not within {timeout:.0f} s (last: {str(last)[:300]})")

    def screenshot(self, path):
        r = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                      timeout=20.0)
        import base64
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def problems(self, ignore_network=False):
        """JavaScript exceptions, console errors and CSP violations seen so far."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description")))
                                                        for a in p.get("args", [])))
            elif m == "Log.entryAdded":
                en = p.get("entry", {})
                if en.get("level") != "error":
                    continue
                if ignore_network and en.get("source") == "network":
                    continue
                out.append(f"log ({en.get('source')}): {en.get('text')}")
        return out

    def close(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self.to_w, self.from_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
