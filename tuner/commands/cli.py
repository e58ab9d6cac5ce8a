"""`tuner init | optimize | show | export | report | load-worker` (also `python -m tuner`): parsing
and
printing only.

Every command is one call into the library. User errors print one sentence and exit 2
(configuration) or 1 (runtime); Ctrl-C and SIGTERM stop the study cleanly with exit 130.
Renamed flags keep their old spelling as an alias that prints one deprecation line.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

import optuna

from tuner.config import BACKENDS, SAMPLERS, TunerConfig, load_config
from tuner.errors import TunerError
from tuner.interrupts import interrupts_raised
from tuner.storage import safe_url

DEFAULT_CONFIG = "tuner.toml"
DISTRIBUTION = "tfserving-batching-tuner"


def version() -> str:
    """The installed distribution's version (a checkout run without installing says so)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed)"


class _DeprecatedAlias(argparse.Action):
    """An old flag name: stores into the new one's dest and says once what to use instead."""

    def __init__(self, *args: Any, new: str, **kwargs: Any) -> None:
        self.new = new
        super().__init__(*args, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(f"note: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    mapping = {
        "study_name": ("study", "name"),
        "storage": ("study", "storage"),
        "n_trials": ("study", "n_trials"),
        "timeout_s": ("study", "timeout_s"),
        "sampler": ("study", "sampler"),
        "seed": ("study", "seed"),
        "backend": ("server", "backend"),
        "search_space": ("search", "space"),
        "slo_ms": ("objective", "slo_ms"),
        "service_url": ("service", "url"),
        "worker": ("study", "worker"),
        "warm_start": ("study", "warm_start"),
    }
    overrides: dict[str, dict[str, Any]] = {}
    for attr, (section, key) in mapping.items():
        value = getattr(args, attr, None)
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    return overrides


def _config(args: argparse.Namespace) -> TunerConfig:
    path = args.config
    if path is None and Path(DEFAULT_CONFIG).exists():
        path = DEFAULT_CONFIG
    config = load_config(path, _overrides(args))
    if path is None and args.command == "optimize":
        # Not silent: the built-in defaults name another study than the user's config would.
        print(
            f"note: no --config and no ./{DEFAULT_CONFIG} here, so the built-in defaults apply "
            f"(study {config.study.name!r} in {safe_url(config.study.storage)})",
            file=sys.stderr,
        )
    return config


def cmd_optimize(args: argparse.Namespace) -> int:
    from tuner.study.run import optimize
    from tuner.trial_record import winning_trial

    config = _config(args)
    optimize(config, say=lambda line: print(line, flush=True))
    print()
    study = _print_report(config)
    with contextlib.suppress(TunerError):  # nothing feasible: the report said so
        if winning_trial(study)[0].params:
            print("export it with: tuner export --out batching_parameters.txt")
    print(f"review every trial: {_dashboard_command(config)}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from tuner.commands.init_config import suggested_slo_ms, write_config

    print(f"inspecting {args.model} and timing requests on the warm embedded model server ...")
    out, summary, timing = write_config(Path(args.model), Path(args.out), args.force)
    latency_ms = timing.median_ms
    for line in summary.describe():
        print(f"  {line}")
    source = "its warm-up file" if summary.has_warmup_file else "requests from its signature"
    print(
        f"one request: {latency_ms:.1f} ms; suggested SLO p95 <= "
        f"{suggested_slo_ms(latency_ms):g} ms; load: {source}"
    )
    print(f"  ({timing.describe()})")
    print(f"wrote {out}; run: python -m tuner optimize --config {out}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    _print_report(_config(args))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tuner.commands.export import export
    from tuner.study.run import load_existing_study

    config = _config(args)
    study = load_existing_study(config)
    result = export(
        study,
        Path(args.out),
        model_name=config.server.model_name,
        model_base_path=config.model_dir,
        percentile=config.objective.percentile,
        config=config.file,
        storage=config.study.storage if args.storage is not None else None,
    )
    how = "confirmed winner" if result.confirmed else "best feasible trial (not re-measured)"
    value = f"capacity {result.rps:.1f} req/s" if result.capacity else f"{result.rps:.1f} req/s"
    print(f"wrote {result.path} from trial {result.trial}, the {how}, {value}")
    if result.versus:
        print(f"against the reference points: {result.versus}")
    if result.tie:
        print(f"note: the winner is {result.tie}; either serves as well on this measurement")
    print(f"serve it with TensorFlow Serving:\n  {result.server_command}")
    print(f"or with the embedded server:\n  {result.embedded_command}")
    if result.backend_note:
        print(result.backend_note)
    return 0


def cmd_load_worker(args: argparse.Namespace) -> int:
    from tuner.capacity.settings import load_profile
    from tuner.errors import ConfigError
    from tuner.load import LoadGeneratorError, LoadProfileError
    from tuner.load.worker import serve

    config = _config(args)
    try:
        serve(
            load_profile(config),
            args.master,
            name=args.worker,
            log_path=Path(args.log),
            say=lambda line: print(line, flush=True),
        )
    except LoadProfileError as exc:
        raise ConfigError(f"{config.source}: {exc}") from None
    except LoadGeneratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("load-worker stopped; its Locust worker was stopped too", file=sys.stderr)
        return 130
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from tuner.review.images import NO_PLOTTING, plotting_installed

    if not plotting_installed():
        raise TunerError(f"tuner report {NO_PLOTTING}")
    from tuner.review.report import write_report

    config = _config(args)
    written = write_report(config, Path(args.out), Path(args.png) if args.png else None)
    print(f"wrote {written.path} (opens offline in any browser)")
    for path in written.pngs:
        print(f"wrote {path}")
    return 0


def _print_report(config: TunerConfig) -> optuna.Study:
    """The table of trials, then the winner against the no-batching reference."""
    from tuner.review.show import show, winner_summary
    from tuner.study.run import load_existing_study

    study = load_existing_study(config)
    print(show(study))
    print()
    print(winner_summary(study, config.objective.percentile))
    return study


def _dashboard_command(config: TunerConfig) -> str:
    artifacts = config.path(config.study.artifact_dir)
    return f"optuna-dashboard {safe_url(config.study.storage)} --artifact-dir {artifacts}"


def build_parser(prog: str = "tuner") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Tune TensorFlow Serving's batching parameters: an Optuna study restarts the model "
            "server with each candidate, searches the highest open-loop request rate the "
            "prediction service sustains within the latency SLO (its capacity), and "
            "maximises that capacity."
        ),
        epilog=(
            "typical use: `tuner optimize --config tuner.toml`, then "
            "`optuna-dashboard sqlite:///tuning.db --artifact-dir artifacts` to review, "
            "`tuner show`, and `tuner export --out batching_parameters.txt` "
            "(`python -m tuner` is the same command). "
            "Exit codes: 0 ok, 1 runtime problem, 2 configuration problem, 130 interrupted."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config",
            help=f"the tuner's TOML config (default: ./{DEFAULT_CONFIG} if present, else "
            "built-in defaults)",
        )
        p.add_argument("--study-name", help="override study.name")
        p.add_argument("--storage", help="override study.storage (any SQLAlchemy URL)")
        p.add_argument("-v", "--verbose", action="store_true", help="log every event")

    p = sub.add_parser(
        "optimize",
        help="run (or resume) the study",
        description="Run the study, or resume it: --n-trials is the study's total, so running "
        "the same command again after an interruption only runs the missing trials.",
    )
    common(p)
    p.add_argument("--n-trials", type=int, help="override study.n_trials (the study's total)")
    p.add_argument(
        "--timeout-s",
        type=float,
        metavar="SECONDS",
        help="override study.timeout_s: a time budget in seconds; no new trial starts after it",
    )
    p.add_argument(
        "--timeout",
        type=float,
        dest="timeout_s",
        action=_DeprecatedAlias,
        new="--timeout-s",
        help="deprecated spelling of --timeout-s",
    )
    p.add_argument("--sampler", choices=SAMPLERS, help="override study.sampler")
    p.add_argument(
        "--warm-start",
        metavar="STUDY",
        help="override study.warm_start: measure this study's winner and best first "
        "(NAME in this storage, or URL#NAME)",
    )
    p.add_argument("--seed", type=int, help="override study.seed")
    p.add_argument("--backend", choices=BACKENDS, help="override server.backend")
    p.add_argument("--search-space", help="override search.space (cpu, gpu, quick or a path)")
    p.add_argument("--slo-ms", type=float, help="override objective.slo_ms")
    p.add_argument("--service-url", help="use a service you run instead of starting one")
    p.add_argument(
        "--worker",
        metavar="NAME",
        help="this tuner's name, recorded on each trial it measures (default host:pid); "
        "for several tuners sharing one study",
    )
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser(
        "init",
        help="write a tuner.toml for your SavedModel",
        description="Inspect a SavedModel (BASE/<N>/saved_model.pb, its serving_default "
        "signature), time one request on the embedded model server and write a commented "
        "tuner.toml: the requests (the model's warm-up file, or generated from the "
        "signature), an SLO suggested from the measured latency, the space and the backend. "
        "`python -m tuner optimize --config FILE` then runs it as it is.",
    )
    p.add_argument("--model", required=True, metavar="DIR", help="the model's base path")
    p.add_argument("--out", default=DEFAULT_CONFIG, help="file to write (default tuner.toml)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("-v", "--verbose", action="store_true", help="log every event")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "show",
        help="print every trial as a table",
        description="Print every trial of the study (params, capacity or req/s, p50/p95/p99 "
        "in ms at capacity, error rate, mean executed batch size, search steps, feasibility, "
        "flags, pruned/fail reason) and the winner against the reference points.",
    )
    common(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "export",
        help="write the winner as batching_parameters.txt",
        description="Write the winning configuration in TF Serving's text format and print "
        "the tensorflow_model_server command that uses it. Refuses when no trial is feasible.",
    )
    common(p)
    p.add_argument("--out", default="batching_parameters.txt", help="file to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "load-worker",
        help="generate a study's load from this host (a Locust worker for load.workers)",
        description="Run a Locust worker for the tuner's trials on this load host: it "
        "connects to the trial's Locust master at --master, sends its share of the "
        "open-loop arrivals with the config's locustfile, and starts again for the next "
        "trial's master, until stopped with Ctrl-C. Use the same tuner.toml (and "
        "locustfile) as the tuner; load.workers there counts these processes.",
    )
    p.add_argument("--config", help=f"the tuner's TOML config (default: ./{DEFAULT_CONFIG})")
    p.add_argument(
        "--master",
        required=True,
        help="HOST:PORT of the tuner's Locust master (load.master_bind_port, default 5557)",
    )
    p.add_argument(
        "--worker",
        metavar="NAME",
        help="this load worker's name in the tuner's errors (default: HOST:PID)",
    )
    p.add_argument(
        "--name",
        dest="worker",
        action=_DeprecatedAlias,
        new="--worker",
        help="deprecated spelling of --worker",
    )
    p.add_argument(
        "--log", default="load-worker.log", help="Locust's log file (default: load-worker.log)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every event")
    p.set_defaults(func=cmd_load_worker)

    p = sub.add_parser(
        "report",
        help="write the study as one HTML page with plots",
        description="Write one self-contained HTML file (it opens offline): the winner against "
        "both reference points, each trial's latency against offered load with the SLO line, "
        "throughput against latency, the parameters' importances, every trial with its fail or "
        "prune reason, and the winner's batching file.",
    )
    common(p)
    p.add_argument("--out", default="report.html", help="the HTML file to write")
    p.add_argument(
        "--png",
        metavar="DIR",
        help="also write each plot as DIR/<name>.png (needs Chrome or Chromium)",
    )
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None, prog: str = "tuner") -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="ts=%(asctime)s level=%(levelname)s %(message)s",
    )
    # Our progress lines say what Optuna's would, without tracebacks for failed trials.
    optuna.logging.set_verbosity(optuna.logging.INFO if args.verbose else optuna.logging.ERROR)
    with interrupts_raised():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except TunerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a file the library did not expect to miss: still one sentence
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.command == "optimize":  # the one command that runs trials
            print(
                "interrupted: any running trial is marked failed (interrupted), every process "
                "the tuner started was stopped and the study is intact; run the same command "
                "to resume",
                file=sys.stderr,
            )
        else:
            print(f"interrupted: {args.command} stopped; the study is unchanged", file=sys.stderr)
        return 130
