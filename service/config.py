"""The service's settings: every flag also comes from a SERVICE_* environment variable.

Precedence is flag > environment > default. The environment form exists because uvicorn's
multi-worker mode starts fresh processes that rebuild the settings from the environment
(`Settings.to_env`), and because containers configure services that way.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
CHOICES = {
    "log_level": LOG_LEVELS,
    # uvicorn's "auto" picks httptools and uvloop when installed (the fast path), else h11/asyncio.
    "http": ("auto", "httptools", "h11"),
    "loop": ("auto", "uvloop", "asyncio"),
}


class ConfigError(ValueError):
    """A setting the user gave is unusable; the message is one sentence with the fix."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    model_server: str = "127.0.0.1:8500"
    model_name: str = "sentiment"
    model_base_path: Path = Path("models/sentiment")
    signature_name: str = "serving_default"
    workers: int = 1
    deadline_ms: int = 5000
    max_texts: int = 32
    max_body_bytes: int = 65536
    log_level: str = "info"
    access_log: str = "-"
    http: str = "auto"
    loop: str = "auto"

    def http_implementation(self) -> str:
        """The HTTP parser uvicorn really uses: "auto" is httptools when installed, else h11."""
        if self.http != "auto":
            return self.http
        import importlib.util

        return "httptools" if importlib.util.find_spec("httptools") else "h11"

    def __post_init__(self) -> None:
        for name, low, high in (
            ("port", 1, 65535),
            ("workers", 1, 64),
            ("deadline_ms", 1, 3_600_000),
            ("max_texts", 1, 100_000),
            ("max_body_bytes", 64, 1 << 30),
        ):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(
                    f"{_OPTION_NAMES[name]} is {value}; set it to a whole number "
                    f"from {low} to {high}."
                )
        for name in ("host", "model_server", "model_name", "signature_name", "access_log"):
            value = getattr(self, name)
            if not value or value != value.strip() or any(c.isspace() for c in value):
                raise ConfigError(
                    f"{_OPTION_NAMES[name]} is {value!r}; give a non-empty value without spaces."
                )
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ConfigError(
                    f"{_OPTION_NAMES[name]} is {getattr(self, name)!r}; use one of "
                    f"{', '.join(choices)}."
                )

    @property
    def deadline_s(self) -> float:
        return self.deadline_ms / 1000.0

    @property
    def access_log_enabled(self) -> bool:
        return self.access_log != "off"

    def to_env(self) -> dict[str, str]:
        """The SERVICE_* variables that rebuild these settings in a worker process."""
        return {_OPTIONS[f.name].env: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return parse_settings([], environ)


@dataclass(frozen=True)
class _Option:
    flag: str
    env: str
    convert: Callable[[str], object]
    help: str


def _whole_number(text: str) -> int:
    return int(text.strip())


_OPTIONS: dict[str, _Option] = {
    "host": _Option("--host", "SERVICE_HOST", str, "address to bind; 0.0.0.0 exposes it"),
    "port": _Option("--port", "SERVICE_PORT", _whole_number, "HTTP port"),
    "model_server": _Option(
        "--model-server", "SERVICE_MODEL_SERVER", str, "gRPC address of TF Serving (host:port)"
    ),
    "model_name": _Option("--model-name", "SERVICE_MODEL_NAME", str, "model name to call"),
    "model_base_path": _Option(
        "--model-base-path",
        "SERVICE_MODEL_BASE_PATH",
        Path,
        "model directory; its newest version's assets/vocab.txt, when there, enables /predict",
    ),
    "signature_name": _Option(
        "--signature-name", "SERVICE_SIGNATURE_NAME", str, "SavedModel signature to call"
    ),
    "workers": _Option(
        "--workers", "SERVICE_WORKERS", _whole_number, "uvicorn worker processes (each ~0.5 GB)"
    ),
    "deadline_ms": _Option(
        "--deadline-ms",
        "SERVICE_DEADLINE_MS",
        _whole_number,
        "deadline of each gRPC call to the model server; past it the request gets a 504",
    ),
    "max_texts": _Option(
        "--max-texts", "SERVICE_MAX_TEXTS", _whole_number, "most texts in one request"
    ),
    "max_body_bytes": _Option(
        "--max-body-bytes",
        "SERVICE_MAX_BODY_BYTES",
        _whole_number,
        "largest request body; larger ones get a 413 without being read",
    ),
    "log_level": _Option("--log-level", "SERVICE_LOG_LEVEL", str.lower, "service log level"),
    "access_log": _Option(
        "--access-log",
        "SERVICE_ACCESS_LOG",
        str,
        "where the per-request JSON timing lines go: '-' (stderr), a file path, or 'off'",
    ),
    "http": _Option(
        "--http", "SERVICE_HTTP", str.lower, "uvicorn HTTP parser: auto, httptools or h11"
    ),
    "loop": _Option("--loop", "SERVICE_LOOP", str.lower, "event loop: auto, uvloop or asyncio"),
}
_OPTION_NAMES = {name: f"{opt.flag} (${opt.env})" for name, opt in _OPTIONS.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description=(
            "The sentiment prediction service: POST /predict, GET /healthz, GET /readyz. "
            "Every flag can also be set through the environment variable shown in brackets; "
            "a flag wins over its variable."
        ),
    )
    defaults = Settings()
    for name, opt in _OPTIONS.items():
        parser.add_argument(
            opt.flag,
            dest=name,
            default=None,
            metavar=opt.env.removeprefix("SERVICE_"),
            help=f"{opt.help} [{opt.env}] (default: {getattr(defaults, name)})",
        )
    return parser


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Flags over environment over defaults; raises ConfigError with one sentence."""
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    values: dict[str, object] = {}
    for name, opt in _OPTIONS.items():
        raw = getattr(args, name)
        source = opt.flag
        if raw is None and opt.env in environ:
            raw, source = environ[opt.env], f"${opt.env}"
        if raw is None:
            continue
        try:
            values[name] = opt.convert(raw)
        except ValueError:
            raise ConfigError(f"{source} is {raw!r}; it must be a whole number.") from None
    return Settings(**values)  # type: ignore[arg-type]
