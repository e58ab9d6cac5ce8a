"""`export`: the winner as TF Serving's own batching_parameters.txt, and how to use it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import optuna

from model_server.batching_parameters import load_file
from tuner.errors import TunerError
from tuner.review.backend_note import recheck_advice
from tuner.review.show import versus_references
from tuner.servers.defaults import DEFAULT_BINARY
from tuner.study.ratios import tie_text
from tuner.trial_record import CONFIG_FILE_ATTR, MODEL_PATH_ATTR, WINNER_ATTR, winning_trial


@dataclass(frozen=True)
class Export:
    trial: int
    path: Path
    server_command: str  # the real tensorflow_model_server
    embedded_command: str  # the same flags for this project's embedded server
    confirmed: bool
    rps: float
    capacity: bool = False  # rps is a capacity (req/s within the SLO), not closed-loop req/s
    versus: str = ""  # against the reference points, e.g. "1.59x no batching (trial 0: ...), ..."
    backend_note: str = ""  # which server measured it; for the stand-in, how to re-measure
    tie: str = ""  # "tied within the measurement's precision with trial 4 (...)", when it is


def export(
    study: optuna.Study,
    out: Path,
    *,
    model_name: str,
    model_base_path: str | Path = "/models/sentiment",
    percentile: str = "p95",
    config: Path | None = None,
    storage: str | None = None,
) -> Export:
    """Write the winner to `out` (atomically, after parsing it back with the server's own
    parser) and build the command lines that serve the model with it: the model the study
    measured, where it recorded one (`model_base_path` stands in for older studies), so the
    command does not depend on the directory `export` runs in; `config`, the study's config
    file (else the one the study recorded, if it is still there), goes into the re-check
    command for the same reason, with `storage` when the command line gave the study's
    storage (the config alone would name another database)."""
    model_base_path = study.user_attrs.get(MODEL_PATH_ATTR) or model_base_path
    config = config if config is not None else _recorded_config(study)
    trial, confirmed = winning_trial(study)
    text = trial.user_attrs.get("batching_file")
    if not text:
        raise TunerError(
            f"the winner, trial {trial.number}, is the no-batching reference: batching did "
            "not beat it under this SLO, so there is no batching file to export; run TF "
            "Serving without --enable_batching, or widen the search space"
        )
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise TunerError(
            f"cannot write {out}: {exc.strerror or exc}; pass --out with a path you can write"
        ) from None
    try:
        load_file(tmp)  # what we export must parse with the server's own parser
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    try:
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TunerError(
            f"cannot write {out}: {exc.strerror or exc}; pass --out with a path you can write"
        ) from None
    flags = [
        "--port=8500",
        "--rest_api_port=8501",
        f"--model_name={model_name}",
        f"--model_base_path={model_base_path}",
        "--enable_batching",
        f"--batching_parameters_file={out.resolve()}",
        *(f"--{k}={v}" for k, v in (trial.user_attrs.get("server_flags") or {}).items()),
    ]
    winner = study.user_attrs.get(WINNER_ATTR) or {}
    value = winner.get("median_rps") if confirmed else trial.value
    value = value if value is not None else trial.user_attrs.get("rps", 0.0)
    return Export(
        trial=trial.number,
        path=out,
        server_command=shlex.join([DEFAULT_BINARY, *flags]),
        embedded_command=shlex.join(["python", "-m", "model_server", *flags]),
        confirmed=confirmed,
        rps=float(value),
        capacity="capacity_rps" in trial.user_attrs,
        versus=versus_references(study, float(value), percentile, trial.number),
        backend_note=recheck_advice(trial, out, study.study_name, config, storage),
        tie=tie_text(study, winner).removeprefix("; "),
    )


def _recorded_config(study: optuna.Study) -> Path | None:
    recorded = study.user_attrs.get(CONFIG_FILE_ATTR)
    return Path(recorded) if recorded and Path(recorded).is_file() else None
