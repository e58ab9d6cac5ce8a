"""From the config to what a trial runs: the load profile, the search's settings and step
criteria, and the objective in one sentence (stored with the study, printed at start)."""

from __future__ import annotations

from dataclasses import fields

from tuner.capacity.search import SearchSettings
from tuner.capacity.step import StepCriteria
from tuner.config import TunerConfig
from tuner.errors import ConfigError
from tuner.load import LoadProfile, LoadProfileError


def load_profile(config: TunerConfig) -> LoadProfile:
    """The closed-loop profile, or in capacity mode the open-loop one each step runs. The
    [load] fields a LoadProfile has are taken by name, so a field added to both needs no
    copying here; capacity mode runs each step with its own warm-up and window, no users."""
    c = config.load
    same = {f.name: getattr(c, f.name) for f in fields(LoadProfile) if hasattr(c, f.name)}
    same["locustfile"] = config.path(c.locustfile) if c.locustfile else None
    if c.mode == "capacity":
        del same["users"], same["spawn_rate"]
        same.update(arrival="poisson", warmup_s=c.step_warmup_s, measure_s=c.step_measure_s)
    try:
        return LoadProfile(**same)
    except LoadProfileError as exc:
        raise ConfigError(f"{config.source}: {exc}") from None


def search_settings(config: TunerConfig) -> SearchSettings:
    c = config.load
    return SearchSettings(
        min_rps=c.min_rps,
        max_rps=c.max_rps,
        resolution=c.resolution,
        max_steps=c.max_steps,
        max_trial_s=c.max_trial_s,
        step_s=c.step_warmup_s + c.step_measure_s,
        growth=c.growth,
        low_check_fraction=c.low_check_fraction,
        step_extra_s=2 * c.step_measure_s if c.step_extra_s is None else c.step_extra_s,
        precision=c.precision,
    )


def step_criteria(config: TunerConfig) -> StepCriteria:
    o = config.objective
    return StepCriteria(
        percentile=o.percentile,
        slo_ms=o.slo_ms,
        max_error_rate=o.max_error_rate,
        min_goodput_ratio=o.min_goodput_ratio,
    )


def objective_text(config: TunerConfig) -> str:
    o = config.objective
    if config.load.mode == "capacity":
        return (
            f"maximise capacity: the highest Poisson arrival rate served with {o.percentile} "
            f"<= {o.slo_ms:g} ms, error rate <= {o.max_error_rate:.2%} and goodput >= "
            f"{o.min_goodput_ratio:.0%} of the offered rate"
        )
    return (
        f"maximise successful req/s subject to {o.percentile} <= {o.slo_ms:g} ms and "
        f"error rate <= {o.max_error_rate:.2%}"
    )
