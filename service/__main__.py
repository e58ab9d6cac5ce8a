"""`python -m service`: run the prediction service under uvicorn.

Checks what a user can get wrong (settings, vocabulary, port) before uvicorn starts, so each
mistake ends in one sentence instead of a worker traceback. Settings reach the workers through
SERVICE_* variables and the `service.app:create_app_from_env` factory, which is what uvicorn's
multi-process mode (`--workers N`) requires.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from model_server.preflight import servable_versions
from service.config import ConfigError, Settings, parse_settings


def _check_port(host: str, port: int) -> str | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return (
                f"cannot listen on {host}:{port} ({exc.strerror}); "
                "pick another --port or stop what is using it."
            )
    return None


def _check_vocabulary(settings: Settings) -> str | None:
    """A model directory is required; the demo's vocabulary only when it is there (a model
    without one is served by /v1/models/NAME:predict alone)."""
    from service.text import VOCAB_ASSET, Vocabulary

    versions = servable_versions(Path(settings.model_base_path))
    if (
        versions
        and not (
            Path(settings.model_base_path) / str(versions[0]) / "assets" / VOCAB_ASSET
        ).exists()
    ):
        return None
    try:
        Vocabulary.from_model_dir(settings.model_base_path)
    except (OSError, ValueError) as exc:
        return (
            f"cannot load the vocabulary from {settings.model_base_path} ({exc}); "
            "point --model-base-path at the model directory (build the demo model with "
            "`python -m scripts.build_demo_model`)."
        )
    return None


def _check_implementations(settings: Settings) -> str | None:
    import importlib.util

    for option, module in (("--http", settings.http), ("--loop", settings.loop)):
        if module in ("httptools", "uvloop") and importlib.util.find_spec(module) is None:
            return f"{option} {module} needs the {module} package; pip install {module}."
    return None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = parse_settings(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = (
        _check_implementations(settings)
        or _check_vocabulary(settings)
        or _check_port(settings.host, settings.port)
    )
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1

    import uvicorn

    from service.logs import log_config

    # Keep stderr to our JSON lines: TensorFlow (pulled in by the TF Serving protos) and gRPC
    # core would otherwise log C++ chatter, e.g. an INFO line each time the model server restarts.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.update(settings.to_env())
    uvicorn.run(
        "service.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http=settings.http,
        loop=settings.loop,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        access_log=False,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
