"""Plots as PNG files, for pasting into a ticket: kaleido 1.x drives a Chrome or Chromium
(Debian's `chromium`), found on PATH or through BROWSER_PATH as choreographer finds it."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from tuner.errors import TunerError

log = logging.getLogger("tuner")
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
NO_BROWSER = (
    "writing PNG files needs Chrome or Chromium and none was found; install it "
    "(`apt-get install chromium` on Debian) or set BROWSER_PATH to its executable"
)

NO_PLOTTING = (
    "plots need Plotly and kaleido, which the base install leaves out: "
    "pip install 'tfserving-batching-tuner[report]'"
)


def plotting_installed() -> bool:
    """The `[report]` extra: Plotly draws, kaleido writes PNGs."""
    return all(importlib.util.find_spec(name) is not None for name in ("plotly", "kaleido"))


def find_browser() -> str | None:
    """BROWSER_PATH when set (choreographer's override), else the first browser on PATH."""
    override = os.environ.get("BROWSER_PATH")
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


_session_open = False


def _quiet_browser_logs() -> None:
    """kaleido's and choreographer's own log lines: our sentence says what failed."""
    for name in ("choreographer", "kaleido", "logistro"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


@contextlib.contextmanager
def browser_session() -> Iterator[None]:
    """One headless browser for a whole run (kaleido's sync server), so each trial's curve
    costs a render, not a browser start: 0.1-1.3 s instead of 1.3-6.3 s per trial here. The
    browser idles between trials; without one, or if it will not start, nothing changes."""
    global _session_open
    browser = find_browser()
    if browser is None or _session_open or not plotting_installed():
        yield
        return
    import kaleido

    _quiet_browser_logs()
    try:
        kaleido.start_sync_server(path=browser, silence_warnings=True)
    except Exception as exc:  # the one-shot path still works, browser by browser
        log.info("event=browser_session_failed reason=%r", str(exc))
        yield
        return
    _session_open = True
    try:
        yield
    finally:
        _session_open = False
        with contextlib.suppress(Exception):
            kaleido.stop_sync_server(silence_warnings=True)


def _render(kaleido: object, jobs: list[dict], browser: str, attempts: int = 3) -> None:
    """Draw `jobs`, up to `attempts` times. kaleido can evaluate a render in a tab whose page
    has not defined its scripts yet ("ReferenceError: kaleido_scopes is not defined"; by its
    code, it keeps the first JavaScript context the tab reports after navigating, which on a
    busy machine may be the blank page's). 1 run in ~5 of the review tests on 3 busy workers,
    and two attempts in a row once on 4; a moment later the next attempt draws."""
    for attempt in range(attempts):
        try:
            # cancel_on_error: kaleido raises a render's error instead of returning it unread
            if _session_open:  # the session's browser: kopts belong to its start
                kaleido.write_fig_from_object_sync(jobs, cancel_on_error=True)
            else:
                kaleido.write_fig_from_object_sync(
                    jobs, kopts={"path": browser}, cancel_on_error=True
                )
            return
        except Exception as exc:
            if attempt + 1 == attempts:
                raise
            log.info("event=png_retried reason=%r", str(exc)[:200])
            time.sleep(0.5 * (attempt + 1))


def write_pngs(figures: dict[str, object], out_dir: Path, scale: float = 2.0) -> list[Path]:
    """`out_dir/<name>.png` for each figure, all drawn by one browser; a missing browser or
    an unwritable directory is a TunerError with one sentence."""
    browser = find_browser()
    if browser is None:
        raise TunerError(NO_BROWSER)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TunerError(
            f"cannot create the PNG directory {out_dir} ({exc.strerror or exc}); "
            "choose a writable directory with --png"
        ) from None
    import kaleido  # imported here: starting a report without --png never needs it

    _quiet_browser_logs()

    paths = [out_dir / f"{name}.png" for name in figures]
    jobs = [
        {"fig": fig, "path": path, "opts": {"format": "png", "scale": scale}}
        for fig, path in zip(figures.values(), paths, strict=True)
    ]
    try:
        _render(kaleido, jobs, browser)
    except Exception as exc:  # kaleido's and choreographer's errors have no common base
        log.info("event=png_failed reason=%r", str(exc))
        first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        detail = (first.splitlines() or ["no detail"])[0].rstrip(".")
        raise TunerError(
            f"the browser at {browser} could not draw the plots ({detail}); check that it "
            "starts headless (`chromium --headless --dump-dom about:blank`)"
        ) from None
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise TunerError(
            f"the browser at {browser} wrote no image for {', '.join(p.name for p in missing)}; "
            "check that it starts headless (`chromium --headless --dump-dom about:blank`)"
        )
    return paths
