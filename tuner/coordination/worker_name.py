"""Who measured a trial: each tuner sharing a study has a worker name, recorded on its trials
and on every samples row it writes, so `show` can say which host (and which tuner on it)
produced a figure — the first question when one host's numbers look odd."""

from __future__ import annotations

import os
import socket

WORKER_ATTR = "worker"


def worker_name(configured: str = "") -> str:
    """The configured name, else `host:pid` (unique among running tuners, readable)."""
    return configured.strip() or f"{socket.gethostname()}:{os.getpid()}"
