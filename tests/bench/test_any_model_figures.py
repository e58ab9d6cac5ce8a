"""The any-model bench's figures: a capacity that is a lower bound says so in every ratio."""

from __future__ import annotations

from bench.any_model_bench import bounded_ratio


def capacity(rps: float, lower_bound: bool = False) -> dict:
    return {"rps": rps, "lower_bound": lower_bound}


def test_ratios_say_when_a_side_is_a_lower_bound() -> None:
    assert bounded_ratio(capacity(900.0), capacity(300.0)) == "3.00"
    assert bounded_ratio(capacity(900.0, True), capacity(300.0)) == ">= 3.00"
    assert bounded_ratio(capacity(900.0), capacity(31.1, True)) == "<= 28.94"
    assert bounded_ratio(capacity(900.0, True), capacity(31.1, True)) is None
    assert bounded_ratio(None, capacity(300.0)) is None
