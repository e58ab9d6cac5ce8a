"""tuner.toml: one file, typed sections with defaults that work for the demo; CLI overrides.

Unknown keys and wrong types are errors naming the file and the key, because a typo silently
ignored would tune the wrong thing for an hour.

Every key is documented by the string literal right below it (an attribute docstring): the
docs site's configuration reference is generated from them (tuner/commands/reference.py), and a key
without one fails the docs build and the test-suite. A new key is a field plus its docstring.
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
# recommended point (tuner/study/quick_search.py). docs/concepts/samplers.md compares them.
SAMPLERS = ("tpe", "tpe-multivariate", "random", "qmc", "grid", "quick")
LOAD_MODES = ("capacity", "closed")


@dataclass
class StudyConfig:
    """`[study]`: which study, where it is stored, and how long it runs."""

    name: str = "sentiment-batching"
    """The study's name; the same name resumes it."""
    storage: str = "sqlite:///tuning.db"
    """Any SQLAlchemy URL: a SQLite file (relative to the config file), `sqlite://` (in
    memory) or `postgresql+psycopg://user:password@host/db` to share a study between hosts."""
    n_trials: int = 12
    """The study's total number of trials, reference points included (not "this many more")."""
    timeout_s: float | None = None
    """Stop starting trials after this many seconds (per run); none = no time budget."""
    sampler: str = "tpe"
    """`tpe`, `tpe-multivariate`, `random`, `qmc` (Sobol), `grid` (expands the space; refuses
    more than 1,000 points) or `quick` (one parameter at a time from TF Serving's start); see
    [Samplers](../concepts/samplers.md)."""
    seed: int | None = 0
    """The sampler's seed (each trial's sampler is seeded with it plus the trials before it)."""
    artifact_dir: str = "artifacts"
    """Optuna's artifact store: each trial's batching file, server log, Locust CSVs and log."""
    workdir: str = "runs"
    """Per-trial working files (`runs/STUDY/trial-NNNN/`)."""
    stale_after_s: int = 60
    """A RUNNING trial whose tuner wrote no heartbeat for this long was abandoned: it fails
    `abandoned` and runs again (trials beat every quarter of it)."""
    storage_retry_s: float = 60.0
    """A database that stops answering mid-study (restart, failover, a lock) is retried with a
    growing backoff for this long before the tuner stops, its running trial left to resume."""
    worker: str = ""
    """Who measured each trial, when several tuners share the study; "" = host:pid. Give each
    tuner its own with `--worker`, not in a config file they share."""
    max_bench_faults_in_a_row: int = 3
    """A tuner whose trials fail this many times in a row for a fault of the bench (a port, a
    model server that does not start even without the trial's batching file) stops in one
    sentence, rather than fail the rest."""
    warm_start: str | None = None
    """Start from what another study found: its confirmed winner and best few trials are
    measured first. `"NAME"` is a study in this storage; `"URL#NAME"` one in another storage
    (e.g. `"sqlite:///old.db#sentiment-batching"`). Only a new study is warm-started."""


@dataclass
class ObjectiveConfig:
    """`[objective]`: the latency SLO and the error budget a configuration must meet."""

    slo_ms: float = 100.0
    """The latency SLO in milliseconds."""
    percentile: str = "p95"
    """`p50`, `p95` or `p99`: which percentile must meet the SLO."""
    max_error_rate: float = 0.01
    """The largest acceptable fraction of failed requests (0.01 = 1%)."""
    min_goodput_ratio: float = 0.95
    """Capacity mode: a step keeps up when goodput >= this share of the offered rate (and the
    generator offered at least this share of the rate asked for)."""


@dataclass
class ServerConfig:
    """`[server]`: the model server each trial restarts."""

    backend: str = "auto"
    """`auto`, `embedded`, `binary` or `docker` (see [Backends](backends.md))."""
    model_name: str = "sentiment"
    """The model's name, as clients ask for it."""
    model_base_path: str = "models/sentiment"
    """The model directory, holding numeric version subdirectories."""
    grpc_port: int = 0
    """The model server's gRPC port; 0 = a free port (below the kernel's ephemeral range, so no
    outgoing connection takes it first), chosen once per study and stored with it (user
    attribute `server_ports`, per host; chosen again only if something took it since)."""
    rest_port: int = 0
    """The model server's REST port; 0 = a free port, chosen as `grpc_port` is."""
    binary_path: str = DEFAULT_BINARY
    """The real `tensorflow_model_server`, for the `binary` backend (looked up on PATH)."""
    docker_image: str = DEFAULT_IMAGE
    """The image, for the `docker` backend."""
    extra_flags: dict[str, str] = field(default_factory=dict)
    """More TF Serving flags for every trial, e.g. `{ tensorflow_session_parallelism = 2 }`;
    each must be a flag of `tensorflow_model_server` 2.19 (a typo is a configuration error
    naming the closest flag)."""
    ready_timeout_s: float = 120.0
    """How long a server may take to be AVAILABLE before the trial fails `never_ready`."""
    warmup_requests: int = 20
    """Requests through the service after each restart, before the load."""
    cpus: str | int | None = None
    """The model server's CPU budget: a CPU list (`"0"`, `"0-1"`) it is pinned to, or a count;
    TF's thread flags are sized to it unless set (docker: `cpuset_cpus` / `nano_cpus`). None =
    every CPU of the host. See [Precision](../concepts/precision.md)."""


@dataclass
class ServiceConfig:
    """`[service]`: the prediction service the load is sent to."""

    url: str | None = None
    """A service you run yourself (then set `server.grpc_port` to the port it calls); none =
    the tuner starts `python -m service`."""
    command: list[str] | str | None = None
    """Your own command to start the service, a list or a shell-like string; it may use
    `{host} {port} {grpc_target} {model_name} {model_base_path} {workers} {python}`. None =
    `python -m service` wired to the study's model server."""
    host: str = "127.0.0.1"
    """Where the tuner's service listens and Locust sends requests: this host's address that
    load hosts reach when `load.workers` run elsewhere, else loopback (not a wildcard: it is
    also the URL)."""
    port: int = 0
    """The service's port; 0 = a free one."""
    workers: int = 1
    """Uvicorn worker processes of the service the tuner starts."""
    ready_timeout_s: float = 90.0
    """How long the service may take to answer `/healthz`."""


@dataclass
class LoadConfig:
    """`[load]`: the capacity search's open-loop steps, or the closed-loop profile."""

    mode: str = "capacity"
    """`capacity`: each trial searches the highest open-loop (Poisson) rate within the SLO;
    `closed`: the fixed closed-loop profile (`load.users` users with no think time)."""
    start_rps: float = 100.0
    """The first step's rate while the study has no feasible capacity yet (req/s)."""
    min_rps: float = 5.0
    """The search never goes below this rate (req/s)."""
    max_rps: float = 5000.0
    """The search never goes above this rate (req/s)."""
    resolution: float = 0.05
    """A search's first step runs this far below the best capacity so far (near the knee of a
    configuration that ties it); pruning waits for a decided failure below the best one's 95%
    interval, and the bisection itself stops at `load.precision`."""
    growth: float = 2.0
    """Bracketing: the rate is multiplied (or divided) by this per step until a step fails
    (passes)."""
    max_steps: int = 8
    """The most steps one search takes."""
    max_trial_s: float = 120.0
    """No step starts that would end after this many seconds of search (twice this while no
    step has passed: a search with no passing step has no capacity at all)."""
    step_warmup_s: float = 2.0
    """Each capacity step's warm-up at its rate, not measured (a whole number of intervals)."""
    step_measure_s: float = 6.0
    """Each capacity step's measurement window (a whole number of intervals, at least one)."""
    max_in_flight: int = LoadProfile.max_in_flight
    """The open-loop generator's ceiling on outstanding requests; a step that hits it is not
    achieved and fails."""
    low_check_fraction: float = 0.25
    """One more step at this share of the capacity's rate, unless a step that low was measured
    (0 = none)."""
    precision: float = 0.05
    """Stop a search once its capacity's 95% interval is within +-this share of the capacity
    (in (0, 1))."""
    step_extra_s: float | None = None
    """A step whose SLO percentile's 95% interval holds the SLO is measured up to this many
    seconds longer before its verdict stands (none = twice `step_measure_s`, 0 = never)."""
    # The fields a LoadProfile has keep its defaults (tuner/capacity/settings.py copies them
    # over by name).
    users: int = LoadProfile.users
    """Closed mode: concurrent Locust users."""
    spawn_rate: float = LoadProfile.spawn_rate
    """Closed mode: users started per second."""
    warmup_s: float = LoadProfile.warmup_s
    """Closed mode: seconds of load excluded from the figures."""
    measure_s: float = LoadProfile.measure_s
    """Closed mode: the measurement window in seconds."""
    interval_s: float = LoadProfile.interval_s
    """The interval of the streamed figures, in seconds."""
    locustfile: str | None = None
    """Your own locustfile; none = ours (for capacity mode it subclasses `OpenLoopUser`)."""
    processes: int = LoadProfile.processes
    """Locust processes on this host (more when the generator saturates)."""
    request_timeout_s: float = LoadProfile.request_timeout_s
    """The client timeout of one request (timed-out requests fail with code `timeout`)."""
    texts_per_request: int = LoadProfile.texts_per_request
    """1 posts `{"text": ...}`; more posts `{"texts": [...]}`."""
    requests: str | None = None
    """A JSON-lines file of TF Serving REST bodies to send to `/v1/models/NAME:predict`, or
    `"model-warmup"` for the SavedModel's own `assets.extra/tf_serving_warmup_requests`; unset
    (and `generate_rows` 0) = the demo's texts to `/predict`. Read on the tuner's host only:
    `load.workers` get the bodies from the trial's Locust master."""
    requests_order: str = LoadProfile.requests_order
    """The order the bodies are sent in: `cycle` (file order, round and round) or `random`."""
    generate_rows: int = 0
    """> 0: bodies generated from the model's signature, this many rows each."""
    target: str = LoadProfile.target
    """Who receives the load: `service` (the prediction service), or straight to the model
    server: `rest` (its REST API) or `grpc` (PredictionService/Predict); the last two need
    `requests` or `generate_rows`."""
    workers: int = LoadProfile.workers
    """Load from several machines: > 0 makes each trial's Locust a master that waits for this
    many `tuner load-worker --master HOST:PORT` processes; excludes `load.processes > 1`."""
    master_bind_host: str = LoadProfile.master_bind_host
    """The address the trial's Locust master listens on for workers (`0.0.0.0` or the tuner
    host's LAN address for other hosts)."""
    master_bind_port: int = LoadProfile.master_bind_port
    """The Locust master's TCP port (Locust's default)."""
    worker_timeout_s: float = LoadProfile.worker_timeout_s
    """Every load worker connected and ready within this many seconds, or the trial fails
    `load_generator_failed`."""


@dataclass
class SearchConfig:
    """`[search]`: what the study tunes."""

    space: str = "cpu"
    """`cpu`, `gpu`, `quick` or the path of your own search-space file."""


@dataclass
class ConfirmConfig:
    """`[confirm]`: the confirmation pass that ends a study."""

    top_k: int = 3
    """How many of the best feasible trials are re-measured, one per configuration (0 = no
    confirmation pass)."""
    repeats: int = 2
    """Extra measurements of each."""
    references: bool = True
    """Re-measure both reference points too, so the quoted ratios are of medians."""


DEFAULTS_SOURCE = "defaults"  # `source` when no file was read


@dataclass
class TunerConfig:
    study: StudyConfig = field(default_factory=StudyConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    load: LoadConfig = field(default_factory=LoadConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)
    source: str = DEFAULTS_SOURCE
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def file(self) -> Path | None:
        """The TOML file this config was read from; None for the built-in defaults."""
        return None if self.source == DEFAULTS_SOURCE else Path(self.source)

    def path(self, value: str) -> Path:
        """A path from the config, relative to the config file's directory."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def model_dir(self) -> Path:
        """`server.model_base_path` as a path (relative to the config file's directory)."""
        return self.path(self.server.model_base_path)


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
        (config.study.storage_retry_s >= 0, "study.storage_retry_s must be 0 or more"),
        (
            config.study.max_bench_faults_in_a_row >= 1,
            "study.max_bench_faults_in_a_row must be at least 1",
        ),
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
                f"config file {path} does not exist; give the path of an existing tuner.toml "
                "(without --config, ./tuner.toml or else the built-in defaults apply)"
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
