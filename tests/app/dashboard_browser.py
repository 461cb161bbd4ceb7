"""Start the dashboard on 127.0.0.1 and drive it in headless chromium over the DevTools
protocol (websocket): wait for the player, screenshot, list Streamlit exceptions and every
request the page made. Usable from the tests and as a script::

    RSVLM_DEMO_PRESET=showcase python tests/app/dashboard_browser.py docs/app.png
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
#: every host name resolves to nothing except 127.0.0.1: a request that leaves fails
HOST_RULES = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def chromium_path() -> str | None:
    """The chromium executable on PATH (or /usr/bin/chromium), None when absent."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def streamlit_server(preset: str = "small", env: dict[str, str] | None = None) -> Iterator[str]:
    """``streamlit run app/Home.py`` on a free port of 127.0.0.1; yields its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "Home.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    full_env = {**os.environ, "RSVLM_DEMO_PRESET": preset, **(env or {})}
    log = tempfile.NamedTemporaryFile(prefix="streamlit-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class PageReport:
    """What the browser saw: request URLs, failed requests, exception texts, load time (s)."""

    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    seconds_to_player: float | None = None
    seconds_to_results: float | None = None
    frames_played: int | None = None

    def external(self) -> list[str]:
        """Requests to anything but 127.0.0.1 (data: / blob: URLs are local)."""
        local = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:", "chrome")
        return [u for u in self.requests if not u.startswith(local)]


class _CDP:
    """A minimal DevTools client over one websocket (``websockets`` sync API)."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self._conn = connect(ws_url, max_size=64 * 2**20, open_timeout=20)
        self.ws = self._conn.__enter__()
        self.n = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        self.n += 1
        my = self.n
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        t0 = time.time()
        while time.time() - t0 < timeout:
            msg = json.loads(self.ws.recv(timeout=timeout))
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)
        raise TimeoutError(method)

    def eval(self, expr: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")

    def close(self) -> None:
        self._conn.__exit__(None, None, None)


PLAYER_JS = "!!Array.from(document.querySelectorAll('p')).find(e => /frame \\d+ \\/ \\d+/.test(e.textContent))"
RESULTS_JS = "!!Array.from(document.querySelectorAll('h4')).find(e => e.textContent.includes('What changed'))"
IMAGES_JS = ("Array.from(document.querySelectorAll('[data-testid=\"stImage\"] img, iframe'))"
             ".filter(e => e.getBoundingClientRect().width > 50).length")
EXCEPTIONS_JS = "Array.from(document.querySelectorAll('[data-testid=\"stException\"]')).map(e => e.innerText)"


FRAME_JS = ("(Array.from(document.querySelectorAll('p')).map(e => e.textContent.match(/^frame (\\d+) \\/ \\d+$/))"
            ".find(m => m) || [null, '-1'])[1] * 1")
CLICK_JS = ("(b => b ? (b.click(), true) : false)(Array.from(document.querySelectorAll('button'))"
            ".find(e => e.innerText.trim() === '{label}'))")


def drive(url: str, screenshot: Path | None, timeout: float = 120, wait_results: bool = True,
          size: tuple[int, int] = (1600, 1250), play_s: float = 0.0) -> PageReport:
    """Open ``url`` in headless chromium (no host but 127.0.0.1 resolves), wait for the player
    (and the analysis results), save a screenshot, and report requests and exceptions."""
    exe = chromium_path()
    if exe is None:
        raise FileNotFoundError("chromium not found")
    port = free_port()
    profile = tempfile.mkdtemp(prefix="rsvlm-chromium-")
    cmd = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
           f"--host-resolver-rules={HOST_RULES}", f"--user-data-dir={profile}",
           f"--window-size={size[0]},{size[1]}", "--no-first-run", "--no-default-browser-check",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--metrics-recording-only", "--disable-features=MediaRouter,OptimizationHints", "about:blank"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report = PageReport()
    cdp = None
    try:
        _wait_http(f"http://127.0.0.1:{port}/json/version", 30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
            pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
        cdp = _CDP(pages[0]["webSocketDebuggerUrl"])
        cdp.call("Network.enable")
        cdp.call("Page.enable")
        cdp.call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1,
                 mobile=False)
        t0 = time.time()
        cdp.call("Page.navigate", url=url)
        while time.time() - t0 < timeout:
            if report.seconds_to_player is None and cdp.eval(PLAYER_JS):
                report.seconds_to_player = time.time() - t0
            if report.seconds_to_player is not None and (not wait_results or cdp.eval(RESULTS_JS)):
                if wait_results and report.seconds_to_results is None:
                    report.seconds_to_results = time.time() - t0
                break
            time.sleep(0.5)
        time.sleep(2.0)  # let images and charts paint
        if play_s > 0:  # press Play, let the player fragment run, press Pause: frames advanced
            before = cdp.eval(FRAME_JS)
            cdp.eval(CLICK_JS.replace("{label}", "Play"))
            time.sleep(play_s)
            cdp.eval(CLICK_JS.replace("{label}", "Pause"))
            time.sleep(1.0)
            report.frames_played = int(cdp.eval(FRAME_JS)) - int(before)
        report.exceptions = list(cdp.eval(EXCEPTIONS_JS) or [])
        if screenshot is not None:
            shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            tmp = screenshot.with_name(f".{screenshot.name}.part")
            tmp.write_bytes(base64.b64decode(shot["data"]))
            os.replace(tmp, screenshot)
        cdp.call("Runtime.evaluate", expression="1")  # flush pending events
        for ev in cdp.events:
            if ev.get("method") == "Network.requestWillBeSent":
                report.requests.append(ev["params"]["request"]["url"])
            elif ev.get("method") == "Network.webSocketCreated":
                report.requests.append(ev["params"]["url"])
            elif ev.get("method") == "Network.loadingFailed":
                report.failed.append(ev["params"].get("errorText", ""))
    finally:
        if cdp is not None:
            cdp.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
    return report


def main(argv: list[str]) -> int:
    """``browser.py OUT.png``: screenshot of the app on the $RSVLM_DEMO_PRESET demo."""
    out = Path(argv[0] if argv else "docs/app.png")
    query = argv[1] if len(argv) > 1 else "?date=2022-08-01"  # a frame after the demo's fire
    with streamlit_server(os.environ.get("RSVLM_DEMO_PRESET", "showcase")) as url:
        rep = drive(url + query, out, timeout=300, size=(1600, 1500))
    print(json.dumps({"player_s": rep.seconds_to_player, "results_s": rep.seconds_to_results,
                      "exceptions": rep.exceptions, "external": rep.external(), "n_requests": len(rep.requests)},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
