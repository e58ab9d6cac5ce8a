"""Which model server measured a winner, and how to re-measure it on TF Serving itself.

The embedded server follows TF Serving 2.19's scheduler and rules, but it runs the model
through TensorFlow's Python API with Python between the sockets and the batch threads, so
absolute throughput and latency differ from `tensorflow_model_server`'s
(docs/reference/model-server.md, "Differences from the real binary"). A winner measured there
is a good candidate, not a verdict: `export` and the study summary say so, and `export`
writes a search space that fixes every value of the exported file, so one short study on the
binary or in Docker re-measures exactly it, next to the study's no-batching and TF-default
reference trials.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import optuna

from model_server.batching_parameters import BatchingParameters, parse_text
from search_spaces.strategies import LINEAR_MAX, LINEAR_MIN, allowed_batch_sizes
from tuner.storage import has_password, safe_url

__all__ = ["BACKEND_ATTR", "measured_on", "recheck_advice", "recheck_space_text", "summary_tag"]

BACKEND_ATTR = "backend"  # set on every measured trial by the objective
_NAMES = {
    "embedded": "the embedded stand-in (python -m model_server), not TF Serving itself",
    "binary": "tensorflow_model_server (the real binary)",
    "docker": "TF Serving in Docker (the tensorflow/serving image)",
}
REAL_BACKENDS = ("binary", "docker")


def measured_on(trial: optuna.trial.FrozenTrial) -> str:
    backend = trial.user_attrs.get(BACKEND_ATTR)
    if backend is None:  # a trial of another tool, or enqueued and told by hand
        return "a model server this trial did not record"
    return _NAMES.get(str(backend), f"an unknown backend ({backend!r})")


def summary_tag(trial: optuna.trial.FrozenTrial) -> str:
    """Appended to the winner line: `[measured on ...]`."""
    return f" [measured on {measured_on(trial)}]"


def _strategy(sizes: tuple[int, ...], max_batch_size: int) -> str | None:
    """The search-space strategy that yields `sizes`, None when none does."""
    names = ["none", "powers_of_two", *(f"linear_{n}" for n in range(LINEAR_MIN, LINEAR_MAX + 1))]
    for name in names:
        if allowed_batch_sizes(name, max_batch_size) == sizes:
            return name
    return None


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def recheck_space_text(trial: optuna.trial.FrozenTrial) -> str | None:
    """A search space fixing every value of the trial's batching file and server flags."""
    text = trial.user_attrs.get("batching_file")
    if not text:
        return None
    params: BatchingParameters = parse_text(text, source=f"trial {trial.number}")
    fixed: dict[str, object] = {}
    for key in ("max_batch_size", "batch_timeout_micros", "num_batch_threads"):
        if getattr(params, key) is not None:
            fixed[key] = getattr(params, key)
    if params.max_enqueued_batches is not None:
        fixed["max_enqueued_batches"] = params.max_enqueued_batches
    strategy = _strategy(params.allowed_batch_sizes, params.effective_max_batch_size)
    if strategy is None:
        return None
    fixed["allowed_batch_sizes"] = strategy
    fixed["pad_variable_length_inputs"] = params.pad_variable_length_inputs
    lines = [
        f'description = "re-measure trial {trial.number}: every value fixed"',
        "",
        "[batching]",
        *(f"{key} = {_toml(value)}" for key, value in fixed.items()),
    ]
    flags = trial.user_attrs.get("server_flags") or {}
    if flags:
        lines += ["", "[server_flags]"]
        lines += [f"{key} = {_toml(_int_or_text(value))}" for key, value in flags.items()]
    return "\n".join(lines) + "\n"


def _int_or_text(value: object) -> object:
    try:
        return int(str(value))
    except ValueError:
        return value


def recheck_advice(
    trial: optuna.trial.FrozenTrial,
    out: Path,
    study_name: str,
    config: Path | None = None,
    storage: str | None = None,
) -> str:
    """What export prints about the measuring backend; for the stand-in, how to re-measure
    (and the space file that makes it one command, written next to `out`), with the study's
    `config` file, absolute, so the command works from any directory, and the `storage` the
    study was read from when the command line gave it, so the re-check lands beside the study
    (its password hidden: export never prints one)."""
    backend = str(trial.user_attrs.get(BACKEND_ATTR))
    if backend in REAL_BACKENDS:
        return f"measured on {measured_on(trial)}"
    head = f"measured on {measured_on(trial)}: re-measure it on TF Serving before production"
    space = recheck_space_text(trial)
    if space is None:
        return (
            f"{head}, e.g. serve this file with tensorflow_model_server and load it the way "
            "the study did"
        )
    space_path = out.with_name(out.stem + ".recheck.toml")
    space_path.write_text(space, encoding="utf-8")
    command = [
        "python",
        "-m",
        "tuner",
        "optimize",
        *(["--config", str(config.resolve())] if config is not None else []),
        *(["--storage", safe_url(storage)] if storage is not None else []),
        "--backend",
        "docker",
        "--search-space",
        str(space_path.resolve()),
        "--study-name",
        f"{study_name}-recheck",
        "--n-trials",
        "3",
    ]
    hidden = " and put the database's password back in --storage" if has_password(storage) else ""
    return (
        f"{head}:\n  {shlex.join(command)}\n"
        f"  ({space_path.name} fixes every value of {out.name}; use --backend binary with "
        f"tensorflow_model_server on PATH{hidden}; the no-batching and TF-default reference "
        "trials run beside it)"
    )
