"""tuner.toml: one file, typed sections with defaults that work for the demo; CLI overrides.

Every field is documented in the README. Unknown keys and wrong types are errors naming the
file and the key, because a typo silently ignored would tune the wrong thing for an hour.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.errors import ConfigError
from tuner.servers.flags import unknown_flag_message

PERCENTILES = ("p50", "p95", "p99")
SAMPLERS = ("tpe", "random", "grid")
BACKENDS = ("auto", "embedded", "binary", "docker")


@dataclass
class StudyConfig:
    name: str = "sentiment-batching"
    storage: str = "sqlite:///tuning.db"
    n_trials: int = 12  # the study's total, not "this many more"
    timeout_s: float | None = None
    sampler: str = "tpe"
    seed: int | None = 0
    artifact_dir: str = "artifacts"
    workdir: str = "runs"
    # A RUNNING trial whose tuner wrote no heartbeat for this long was abandoned: run it again.
    stale_after_s: int = 60


@dataclass
class ObjectiveConfig:
    slo_ms: float = 100.0
    percentile: str = "p95"
    max_error_rate: float = 0.01


@dataclass
class ServerConfig:
    backend: str = "auto"
    model_name: str = "sentiment"
    model_base_path: str = "models/sentiment"
    grpc_port: int = 0  # 0 = a free port, chosen once per study
    rest_port: int = 0
    binary_path: str = "tensorflow_model_server"
    docker_image: str = "tensorflow/serving:2.19.0"
    extra_flags: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 120.0
    warmup_requests: int = 20


@dataclass
class ServiceConfig:
    url: str | None = None  # a service you run yourself; else the tuner starts one
    # None = python -m service wired to the study's model server; a list or a shell-like
    # string may use {port} {grpc_target} {model_name} {model_base_path} {workers} {python}
    command: list[str] | str | None = None
    port: int = 0
    workers: int = 1
    ready_timeout_s: float = 90.0


@dataclass
class LoadConfig:
    users: int = 32
    spawn_rate: float = 32.0
    warmup_s: float = 5.0
    measure_s: float = 20.0
    interval_s: float = 1.0
    locustfile: str | None = None
    processes: int = 1
    request_timeout_s: float = 10.0
    texts_per_request: int = 1


@dataclass
class SearchConfig:
    space: str = "cpu"


@dataclass
class ConfirmConfig:
    top_k: int = 3
    repeats: int = 2


@dataclass
class TunerConfig:
    study: StudyConfig = field(default_factory=StudyConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    load: LoadConfig = field(default_factory=LoadConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)
    source: str = "defaults"
    base_dir: Path = field(default_factory=Path.cwd)

    def path(self, value: str) -> Path:
        """A path from the config, relative to the config file's directory."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path


SECTIONS = {
    f.name: f.type for f in dataclasses.fields(TunerConfig) if f.name not in ("source", "base_dir")
}


def _section_classes() -> dict[str, type]:
    hints = typing.get_type_hints(TunerConfig)
    return {name: hints[name] for name in SECTIONS}


def _check_value(value: Any, hint: Any, where: str) -> Any:
    """`value` converted to `hint`, or ConfigError naming `where`."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        real = [option for option in options if option is not type(None)]
        errors = []
        for option in real:
            try:
                return _check_value(value, option, where)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(
            f"{where} must be {' or '.join(_type_name(o) for o in real)}, not {value!r}"
        )
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, not {type(value).__name__}")
        return [_check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, not {type(value).__name__}")
        return {str(k): _check_value(v, item, f"{where}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    # Server flags are strings on a command line; `intra_op = 2` in TOML means "2".
    if hint is str and isinstance(value, int | float | bool) and ".extra_flags." in where:
        return str(value).lower() if isinstance(value, bool) else str(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{where} must be {_type_name(hint)}, not {value!r}")
    return value


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is list:
        return f"a list of {_type_name(typing.get_args(hint)[0]).removeprefix('a ')}s"
    names = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}
    return names.get(hint, str(hint))


def apply(config: TunerConfig, data: dict[str, Any], source: str) -> None:
    """Merge a parsed TOML document (or overrides shaped like one) into `config`."""
    classes = _section_classes()
    for section, values in data.items():
        if section not in classes:
            raise ConfigError(
                f"{source}: unknown section [{section}]; expected one of "
                f"{', '.join(f'[{s}]' for s in classes)}"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: {section} must be a table ([{section}])")
        target = getattr(config, section)
        hints = typing.get_type_hints(classes[section])
        for key, value in values.items():
            if key not in hints:
                raise ConfigError(
                    f"{source}: unknown key {section}.{key}; expected one of {', '.join(hints)}"
                )
            setattr(target, key, _check_value(value, hints[key], f"{source}: {section}.{key}"))


def validate(config: TunerConfig) -> None:
    """Ranges and choices, each as one sentence naming the key."""
    src = config.source
    checks = [
        (config.study.n_trials >= 1, "study.n_trials must be at least 1"),
        (config.study.stale_after_s >= 2, "study.stale_after_s must be at least 2"),
        (
            config.study.timeout_s is None or config.study.timeout_s > 0,
            "study.timeout_s must be positive",
        ),
        (config.study.sampler in SAMPLERS, f"study.sampler must be one of {', '.join(SAMPLERS)}"),
        (bool(config.study.name.strip()), "study.name must not be empty"),
        (config.objective.slo_ms > 0, "objective.slo_ms must be positive"),
        (
            config.objective.percentile in PERCENTILES,
            f"objective.percentile must be one of {', '.join(PERCENTILES)}",
        ),
        (
            0 <= config.objective.max_error_rate < 1,
            "objective.max_error_rate must be a fraction between 0 and 1 (0.01 = 1%)",
        ),
        (config.server.backend in BACKENDS, f"server.backend must be one of {', '.join(BACKENDS)}"),
        (config.server.ready_timeout_s > 0, "server.ready_timeout_s must be positive"),
        (config.server.warmup_requests >= 0, "server.warmup_requests must be >= 0"),
        (config.service.workers >= 1, "service.workers must be at least 1"),
        (config.service.ready_timeout_s > 0, "service.ready_timeout_s must be positive"),
        (
            config.service.url is None or config.service.command is None,
            "give service.url (a service you run) or service.command, not both",
        ),
        (
            config.service.url is None or config.server.grpc_port != 0,
            "service.url needs server.grpc_port: the port your service's model-server "
            "address points at, where the tuner will start each model server",
        ),
        (config.confirm.top_k >= 0, "confirm.top_k must be >= 0 (0 = no confirmation pass)"),
        (config.confirm.repeats >= 1, "confirm.repeats must be at least 1"),
    ]
    for port_key in ("server.grpc_port", "server.rest_port", "service.port"):
        section, key = port_key.split(".")
        port = getattr(getattr(config, section), key)
        checks.append(
            (0 <= port <= 65535, f"{port_key} must be a port (1-65535) or 0 for a free one")
        )
    bad_flag = unknown_flag_message(config.server.extra_flags, "server.extra_flags")
    checks.append((bad_flag is None, bad_flag or ""))
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{src}: {message}")


def load_config(
    path: str | Path | None, overrides: dict[str, dict[str, Any]] | None = None
) -> TunerConfig:
    """Defaults, then the file (when given), then CLI overrides; validated as a whole."""
    config = TunerConfig()
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"config file {path} does not exist; pass --config with the path of your tuner.toml"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        config.source = str(path)
        config.base_dir = path.resolve().parent
        apply(config, data, str(path))
    # Like every path in the file, a relative SQLite file is relative to the config file, so
    # the study is the same whichever directory the tuner runs from; on the command line it
    # is relative to the current directory, as paths on command lines are.
    config.study.storage = absolute_sqlite_url(config.study.storage, config.base_dir)
    if overrides:
        apply(config, overrides, "command line")
        if "storage" in overrides.get("study", {}):
            config.study.storage = absolute_sqlite_url(config.study.storage, Path.cwd())
    validate(config)
    return config


def absolute_sqlite_url(url: str, base: Path) -> str:
    """`sqlite:///rel.db` -> `sqlite:////abs/rel.db`; other URLs unchanged."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/"):
        return url
    path, sep, query = url[len(prefix) :].partition("?")
    if not path or path.startswith(":"):  # in-memory
        return url
    return f"{prefix}{(base / path).resolve()}{sep}{query}"
