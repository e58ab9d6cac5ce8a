"""Warm start (`study.warm_start`): a new study measures first what another study found, its
confirmed winner and its best few trials, so re-tuning after a change of model or hardware
starts from what was known instead of from nothing.

`"NAME"` names a study in this study's storage, `"URL#NAME"` one in another storage (the last
`#` separates them; a relative SQLite path is relative to the config file, as study.storage
is). Parameters the current space does not hold are left for the sampler to choose.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna

from search_spaces.loader import SearchSpace
from tuner.config import TunerConfig, absolute_sqlite_url
from tuner.errors import ConfigError
from tuner.storage import StorageError, open_storage
from tuner.trial_record import WINNER_ATTR, best_feasible, params_key

WARM_START_ATTR = "warm_start"  # trial user attr: where its parameters came from
BEST_FEW = 3  # besides the winner


@dataclass(frozen=True)
class WarmPoint:
    params: dict[str, object]
    source: str  # "STUDY#N": the other study's trial


def split_warm_start(config: TunerConfig) -> tuple[str, str]:
    """(storage URL, study name) of `study.warm_start`."""
    value = config.study.warm_start or ""
    url, _, name = value.rpartition("#")
    url = absolute_sqlite_url(url, config.base_dir) if url else config.study.storage
    return url, name.strip()


def warm_points(config: TunerConfig, space: SearchSpace) -> list[WarmPoint]:
    """The other study's confirmed winner, then its best feasible trials, each once and
    snapped into `space`; [] without a warm start. A study that is not there is the
    config's fault: ConfigError, one sentence."""
    if not config.study.warm_start:
        return []
    url, name = split_warm_start(config)
    where = f"{config.source}: study.warm_start = {config.study.warm_start!r}"
    if not name:
        raise ConfigError(f"{where} names no study; give NAME or URL#NAME")
    if name == config.study.name and url == config.study.storage:
        raise ConfigError(f"{where} is this study itself; name the study to start from")
    other = _load(url, name, where)
    winner = (other.user_attrs.get(WINNER_ATTR) or {}).get("trial")
    trials = {t.number: t for t in other.get_trials(deepcopy=False)}
    ordered = [trials[winner]] if winner in trials else []
    ordered += best_feasible(other, BEST_FEW + 1)
    points: list[WarmPoint] = []
    seen: set[tuple] = set()
    for trial in ordered:
        params = _in_space(trial.params, space)
        key = params_key(params)
        if not params or key in seen:  # no batching is a reference of every study anyway
            continue
        seen.add(key)
        points.append(WarmPoint(params, f"{name}#{trial.number}"))
        if len(points) > BEST_FEW:
            break
    return points


def _load(url: str, name: str, where: str) -> optuna.Study:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:"):
        db = Path(url.removeprefix("sqlite:///").partition("?")[0])
        if not db.exists():
            raise ConfigError(
                f"{where}: there is no database at {db}; give the storage of the study to "
                "start from as URL#NAME, or remove study.warm_start"
            )
    try:
        storage = open_storage(url)
    except StorageError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise ConfigError(
            f"{where}: there is no study named {name!r} in {url}"
            + (f" (it holds: {', '.join(names)})" if names else " (it holds no study)")
            + "; name a study that was run, or remove study.warm_start"
        ) from None


def _in_space(params: dict[str, object], space: SearchSpace) -> dict[str, object]:
    """The parameters `space` tunes and holds the value of."""
    return {k: v for k, v in params.items() if space.holds(k, v)}


def enqueue_warm_points(study: optuna.Study, points: list[WarmPoint]) -> None:
    for point in points:
        study.enqueue_trial(point.params, user_attrs={WARM_START_ATTR: point.source})
