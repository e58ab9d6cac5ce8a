"""From the config to what a trial runs: the load profile, the search's settings and step
criteria, and the objective in one sentence (stored with the study, printed at start)."""

from __future__ import annotations

from tuner.capacity.search import SearchSettings
from tuner.capacity.step import StepCriteria
from tuner.config import TunerConfig
from tuner.errors import ConfigError
from tuner.load import LoadProfile, LoadProfileError


def load_profile(config: TunerConfig) -> LoadProfile:
    """The closed-loop profile, or in capacity mode the open-loop one each step runs."""
    c = config.load
    try:
        if c.mode == "capacity":
            return LoadProfile(
                arrival="poisson",
                max_in_flight=c.max_in_flight,
                warmup_s=c.step_warmup_s,
                measure_s=c.step_measure_s,
                interval_s=c.interval_s,
                locustfile=config.path(c.locustfile) if c.locustfile else None,
                processes=c.processes,
                request_timeout_s=c.request_timeout_s,
                texts_per_request=c.texts_per_request,
                workers=c.workers,
                master_bind_host=c.master_bind_host,
                master_bind_port=c.master_bind_port,
                worker_timeout_s=c.worker_timeout_s,
            )
        return LoadProfile(
            users=c.users,
            spawn_rate=c.spawn_rate,
            warmup_s=c.warmup_s,
            measure_s=c.measure_s,
            interval_s=c.interval_s,
            locustfile=config.path(c.locustfile) if c.locustfile else None,
            processes=c.processes,
            request_timeout_s=c.request_timeout_s,
            texts_per_request=c.texts_per_request,
        )
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
