"""A real headless Chromium driven over the Chrome DevTools Protocol, to look at a page as a
person's browser would: what it logged as errors, and what the DOM holds once scripts ran."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websocket

from tuner.process import stop_child
from tuner.review.images import find_browser

NO_BROWSER = "no Chrome/Chromium found: `make test` installs Debian's chromium (as root)"

# The browser the suite found, before it hides it: whole studies then skip their curve PNGs,
# as on a machine without Chromium (the tuner logs event=trial_curve_skipped). Drawing curves
# no test looked at was ~150 s of the suite's CPU, a sixth of it. Tests that look at PNGs or
# pages are marked `browser` (or use `shown_browser`) and get the real one.
HIDDEN = "/nonexistent/browser-hidden-by-the-test-suite"


def _real_browser() -> str | None:
    """find_browser() as the user's environment answers it (xdist workers inherit the hiding)."""
    if os.environ.get("BROWSER_PATH") != HIDDEN:
        return find_browser()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("BROWSER_PATH")
        return find_browser()


CHROMIUM = _real_browser()


def hide_browser() -> None:
    """BROWSER_PATH names no executable: find_browser() and kaleido find no browser."""
    os.environ["BROWSER_PATH"] = HIDDEN


@contextlib.contextmanager
def shown_browser() -> Iterator[None]:
    """The real browser for the block (a module's study that draws its curves)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BROWSER_PATH", CHROMIUM or HIDDEN)
        yield


@dataclass
class Page:
    """One tab: CDP calls, with the error events seen so far collected in `errors`."""

    ws: websocket.WebSocket
    errors: list[str] = field(default_factory=list)
    _next_id: int = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        self.ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._note(message)

    def wait_for(self, event: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            message = json.loads(self.ws.recv())
            self._note(message)
            if message.get("method") == event:
                return message.get("params", {})
        raise TimeoutError(f"no {event} within {timeout_s} s")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _note(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(str(details.get("exception", {}).get("description") or details))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a)) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(f"{params['entry'].get('url', '')}: {params['entry']['text']}")


@contextlib.contextmanager
def headless_chromium() -> Iterator[str]:
    """Chromium on a loopback DevTools port of its choosing; yields the browser's base URL and
    stops it (and its profile directory) after."""
    browser = CHROMIUM
    if browser is None:
        raise RuntimeError(NO_BROWSER)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        # Its own TMPDIR inside the profile: Chromium's org.chromium.Chromium.* files go with it.
        scratch = Path(profile) / "tmp"
        scratch.mkdir()
        process = subprocess.Popen(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": str(scratch)},
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not (port_file.exists() and port_file.read_text().strip()):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{browser} did not open its DevTools port")
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            yield f"127.0.0.1:{port}"
        finally:
            stop_child(process, 10)


@contextlib.contextmanager
def open_page(browser: str, url: str, timeout_s: float = 60.0) -> Iterator[Page]:
    """A new tab at `url`, loaded, with errors and console errors being collected."""
    import urllib.request

    request = urllib.request.Request(f"http://{browser}/json/new?about:blank", method="PUT")
    with urllib.request.urlopen(request, timeout=10) as r:
        target = json.loads(r.read())
    ws = websocket.create_connection(
        target["webSocketDebuggerUrl"], timeout=timeout_s, suppress_origin=True
    )
    page = Page(ws)
    try:
        for domain in ("Page", "Runtime", "Log"):
            page.call(f"{domain}.enable")
        page.call("Page.navigate", url=url)
        page.wait_for("Page.loadEventFired", timeout_s)
        yield page
    finally:
        ws.close()
