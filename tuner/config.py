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
from tuner.load.spec import LoadProfile
from tuner.servers.base import ServerConfigError
from tuner.servers.cpus import parse_cpus
from tuner.servers.defaults import BACKENDS, DEFAULT_BINARY, DEFAULT_IMAGE
from tuner.servers.flags import unknown_flag_message

PERCENTILES = ("p50", "p95", "p99")
# tpe: Optuna's TPE, each parameter on its own; tpe-multivariate: TPE modelling the parameters
# together; random; qmc: quasi-random (a scrambled Sobol sequence); grid: every point of the
# space; quick: Model Analyzer's quick search, one parameter at a time from TF Serving's
# recommended point (tuner/quick_search.py). docs/concepts/samplers.md compares them.
SAMPLERS = ("tpe", "tpe-multivariate", "random", "qmc", "grid", "quick")
LOAD_MODES = ("capacity", "closed")


@dataclass
class StudyConfig:
    name: str = "sentiment-batching"
    storage: str = "sqlite:///tuning.db"
    n_trials: int = 12  # the study's total, not "this many more"
    timeout_s: float | None = None
    # one of SAMPLERS; which finds the best soonest is replayed in docs/concepts/samplers.md
    sampler: str = "tpe"
    seed: int | None = 0
    artifact_dir: str = "artifacts"
    workdir: str = "runs"
    # A RUNNING trial whose tuner wrote no heartbeat for this long was abandoned: run it again.
    stale_after_s: int = 60
    # Who measured each trial, when several tuners share the study; "" = host:pid. Give each
    # tuner its own with `--worker`, not in a config file they share.
    worker: str = ""
    # Start from what another study found: its confirmed winner and best few trials are
    # measured first. "NAME" is a study in this storage; "URL#NAME" one in another storage
    # (e.g. "sqlite:///old.db#sentiment-batching"). Only a new study is warm-started.
    warm_start: str | None = None


@dataclass
class ObjectiveConfig:
    slo_ms: float = 100.0
    percentile: str = "p95"
    max_error_rate: float = 0.01
    # capacity mode: a step keeps up when goodput >= this share of the offered rate (and the
    # generator offered at least this share of the rate asked for)
    min_goodput_ratio: float = 0.95


@dataclass
class ServerConfig:
    backend: str = "auto"
    model_name: str = "sentiment"
    model_base_path: str = "models/sentiment"
    grpc_port: int = 0  # 0 = a free port, chosen once per study
    rest_port: int = 0
    binary_path: str = DEFAULT_BINARY
    docker_image: str = DEFAULT_IMAGE
    extra_flags: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 120.0
    warmup_requests: int = 20
    # the model server's CPU budget: a CPU list ("0", "0-1") it is pinned to, or a count;
    # TF's thread flags are sized to it unless set (docker: cpuset_cpus / nano_cpus)
    cpus: str | int | None = None


@dataclass
class ServiceConfig:
    url: str | None = None  # a service you run yourself; else the tuner starts one
    # None = python -m service wired to the study's model server; a list or a shell-like
    # string may use {host} {port} {grpc_target} {model_name} {model_base_path} {workers}
    # {python}
    command: list[str] | str | None = None
    # Where the tuner's service listens and Locust sends requests: this host's address that
    # load hosts reach when load.workers run elsewhere, else loopback.
    host: str = "127.0.0.1"
    port: int = 0
    workers: int = 1
    ready_timeout_s: float = 90.0


@dataclass
class LoadConfig:
    # capacity: each trial searches the highest open-loop (Poisson) rate within the SLO;
    # closed: the fixed closed-loop profile below (users with no think time)
    mode: str = "capacity"
    start_rps: float = 100.0  # the first probe when the study has no feasible capacity yet
    min_rps: float = 5.0
    max_rps: float = 5000.0
    resolution: float = 0.05  # bisect until the pass/fail rates are within 5% of each other
    growth: float = 2.0  # bracketing: multiply (or divide) the rate by this per step
    max_steps: int = 8
    max_trial_s: float = 120.0  # no step starts that would end after this
    step_warmup_s: float = 2.0  # each step's warm-up at its rate, not measured
    step_measure_s: float = 6.0  # each step's measurement window
    max_in_flight: int = (
        LoadProfile.max_in_flight
    )  # the generator's ceiling; hitting it fails the step
    low_check_fraction: float = 0.25  # one step at this share of the capacity (0 = none)
    # stop a search once its capacity's 95% interval is within +-this share of the capacity
    precision: float = 0.05
    # a step whose SLO percentile's 95% interval holds the SLO is measured up to this much
    # longer before its verdict stands (None = twice step_measure_s, 0 = never)
    step_extra_s: float | None = None
    # The fields a LoadProfile has keep its defaults (tuner/capacity/settings.py copies them
    # over by name).
    users: int = LoadProfile.users
    spawn_rate: float = LoadProfile.spawn_rate
    warmup_s: float = LoadProfile.warmup_s
    measure_s: float = LoadProfile.measure_s
    interval_s: float = LoadProfile.interval_s
    locustfile: str | None = None
    processes: int = LoadProfile.processes
    request_timeout_s: float = LoadProfile.request_timeout_s
    texts_per_request: int = LoadProfile.texts_per_request
    # Load from several machines: > 0 makes each trial's Locust a master that waits for this
    # many `python -m tuner load-worker --master HOST:PORT` processes (README, "Load from
    # several machines").
    workers: int = LoadProfile.workers
    master_bind_host: str = LoadProfile.master_bind_host
    master_bind_port: int = LoadProfile.master_bind_port
    worker_timeout_s: float = LoadProfile.worker_timeout_s


@dataclass
class SearchConfig:
    space: str = "cpu"


@dataclass
class ConfirmConfig:
    top_k: int = 3
    repeats: int = 2
    references: bool = True  # re-measure the two reference points too: ratios of medians


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
        (
            config.service.host not in ("", "0.0.0.0", "::", "*"),
            "service.host is also the address Locust sends requests to: give this host's "
            "address that the load hosts reach (e.g. 10.0.0.5), not a wildcard",
        ),
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
        *_load_checks(config),
        (config.confirm.top_k >= 0, "confirm.top_k must be >= 0 (0 = no confirmation pass)"),
        (config.confirm.repeats >= 1, "confirm.repeats must be at least 1"),
    ]
    for port_key in ("server.grpc_port", "server.rest_port", "service.port"):
        section, key = port_key.split(".")
        port = getattr(getattr(config, section), key)
        checks.append(
            (0 <= port <= 65535, f"{port_key} must be a port (1-65535) or 0 for a free one")
        )
    try:
        parse_cpus(config.server.cpus)
    except ServerConfigError as exc:
        checks.append((False, str(exc)))
    bad_flag = unknown_flag_message(config.server.extra_flags, "server.extra_flags")
    checks.append((bad_flag is None, bad_flag or ""))
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{src}: {message}")


def _load_checks(config: TunerConfig) -> list[tuple[bool, str]]:
    """The capacity search's settings: rates, their order, and step windows that fit."""
    c = config.load
    rates = [
        (c.start_rps > 0, f"load.start_rps must be a positive rate in req/s, not {c.start_rps:g}"),
        (c.min_rps > 0, f"load.min_rps must be a positive rate in req/s, not {c.min_rps:g}"),
        (c.max_rps > 0, f"load.max_rps must be a positive rate in req/s, not {c.max_rps:g}"),
    ]
    first_bad = next((check for check in rates if not check[0]), None)
    if first_bad:
        return [first_bad]
    return [
        (c.mode in LOAD_MODES, f"load.mode must be one of {', '.join(LOAD_MODES)}"),
        (
            c.min_rps <= c.max_rps,
            f"load.min_rps ({c.min_rps:g}) must not exceed load.max_rps ({c.max_rps:g})",
        ),
        (
            c.min_rps <= c.start_rps <= c.max_rps,
            f"load.start_rps ({c.start_rps:g}) must lie between load.min_rps ({c.min_rps:g}) "
            f"and load.max_rps ({c.max_rps:g})",
        ),
        (
            0 < c.resolution < 1,
            f"load.resolution must be a fraction between 0 and 1 (0.05 = 5%), not {c.resolution:g}",
        ),
        (c.growth > 1, f"load.growth must be above 1 (2 = double the rate), not {c.growth:g}"),
        (c.max_steps >= 1, f"load.max_steps must be at least 1, not {c.max_steps}"),
        (c.interval_s > 0, f"load.interval_s must be positive, not {c.interval_s:g}"),
        (
            c.step_measure_s >= c.interval_s,
            f"load.step_measure_s ({c.step_measure_s:g}) must be at least one interval "
            f"(load.interval_s = {c.interval_s:g})",
        ),
        (
            _whole(c.step_measure_s, c.interval_s) and _whole(c.step_warmup_s, c.interval_s),
            f"load.step_warmup_s ({c.step_warmup_s:g}) and load.step_measure_s "
            f"({c.step_measure_s:g}) must be whole multiples of load.interval_s "
            f"({c.interval_s:g})",
        ),
        (c.step_warmup_s >= 0, "load.step_warmup_s must be >= 0"),
        (
            c.max_trial_s >= c.step_warmup_s + c.step_measure_s,
            f"load.max_trial_s ({c.max_trial_s:g}) must allow one step "
            f"(load.step_warmup_s + load.step_measure_s = {c.step_warmup_s + c.step_measure_s:g})",
        ),
        (c.max_in_flight >= 1, f"load.max_in_flight must be at least 1, not {c.max_in_flight}"),
        (
            0 < c.precision < 1,
            f"load.precision must be a fraction between 0 and 1 (0.05 = +-5%), not {c.precision:g}",
        ),
        (
            c.step_extra_s is None
            or (c.step_extra_s >= 0 and _whole(c.step_extra_s, c.interval_s)),
            f"load.step_extra_s ({c.step_extra_s}) must be 0 or a whole multiple of "
            f"load.interval_s ({c.interval_s:g})",
        ),
        (
            0 <= c.low_check_fraction < 1,
            "load.low_check_fraction must be a fraction from 0 (no low-rate check) to below 1",
        ),
        *_worker_checks(c),
        (
            0 < config.objective.min_goodput_ratio <= 1,
            "objective.min_goodput_ratio must be a fraction above 0 and at most 1 (0.95 = 95%)",
        ),
    ]


def _worker_checks(c: LoadConfig) -> list[tuple[bool, str]]:
    """Remote Locust workers: only for the open-loop search, on a port that exists."""
    if c.workers < 0:
        return [(False, f"load.workers must be 0 (no remote workers) or more, not {c.workers}")]
    return [
        (
            c.workers == 0 or c.mode == "capacity",
            f'load.workers ({c.workers}) needs load.mode = "capacity"; the closed-loop '
            "profile runs on one host",
        ),
        (
            c.workers == 0 or c.processes == 1,
            f"load.workers ({c.workers}) and load.processes ({c.processes}) exclude each "
            "other: for more processes on a load host, start load-worker more times there "
            "and count them in load.workers",
        ),
        (
            1 <= c.master_bind_port <= 65535,
            f"load.master_bind_port must be a TCP port from 1 to 65535, not {c.master_bind_port}",
        ),
        (
            bool(c.master_bind_host) and not any(ch in c.master_bind_host for ch in " /:[]"),
            "load.master_bind_host must be an address to listen on such as 127.0.0.1 or "
            f"0.0.0.0 (no scheme, no port), not {c.master_bind_host!r}",
        ),
        (
            c.worker_timeout_s > 0,
            f"load.worker_timeout_s must be a positive number of seconds, not "
            f"{c.worker_timeout_s:g}",
        ),
        (
            c.max_in_flight >= max(1, c.workers),
            f"load.max_in_flight ({c.max_in_flight}) must be at least 1 per Locust worker "
            f"(load.workers = {c.workers})",
        ),
    ]


def _whole(value: float, step: float) -> bool:
    if step <= 0:
        return False
    ratio = value / step
    return abs(ratio - round(ratio)) < 1e-9


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
