"""Ports chosen once per study: stored with it, reused by every later run on the same host."""

from __future__ import annotations

import itertools
from pathlib import Path

from tests.support.studies import config_for, new_study
from tuner.servers.reservations import PortReservations
from tuner.servers.study_ports import PORTS_ATTR, ports_again, study_ports
from tuner.study.run import load_existing_study

NEVER_BOUND = {"in_use": lambda port: False, "host": "h"}


def test_free_ports_are_picked_once_and_reused(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    study = new_study(config)
    picks = itertools.count(41000)
    first = study_ports(study, 0, 0, lambda: next(picks), host="h1", in_use=lambda _: False)
    assert first == (41000, 41001)
    # A later run (a fresh Study object on the same storage) gets the same ports back.
    again = study_ports(
        load_existing_study(config), 0, 0, lambda: next(picks), host="h1", in_use=lambda _: False
    )
    assert again == first
    assert load_existing_study(config).user_attrs[PORTS_ATTR] == {
        "h1": {"grpc": 41000, "rest": 41001}
    }
    # Another host sharing the study has its own free ports.
    other = study_ports(
        load_existing_study(config), 0, 0, lambda: next(picks), host="h2", in_use=lambda _: False
    )
    assert other == (41002, 41003)
    assert set(load_existing_study(config).user_attrs[PORTS_ATTR]) == {"h1", "h2"}


def test_configured_ports_win_and_are_not_stored(tmp_path: Path) -> None:
    study = new_study(config_for(tmp_path))
    assert study_ports(study, 8500, 8501, lambda: 1 / 0, host="h1") == (8500, 8501)
    assert PORTS_ATTR not in study.user_attrs


def test_a_free_rest_port_never_equals_the_grpc_port(tmp_path: Path) -> None:
    study = new_study(config_for(tmp_path))
    picks = iter([9000, 9000, 9001])
    assert study_ports(study, 9000, 0, lambda: next(picks), host="h1") == (9000, 9001)


def test_a_stored_port_taken_since_is_chosen_again(tmp_path: Path, caplog) -> None:
    config = config_for(tmp_path)
    picks = itertools.count(42000)
    study_ports(new_study(config), 0, 0, lambda: next(picks), host="h1", in_use=lambda _: False)
    taken = {42000}
    again = study_ports(
        load_existing_study(config), 0, 0, lambda: next(picks), host="h1", in_use=taken.__contains__
    )
    assert again == (42002, 42001)
    moved = [r.getMessage() for r in caplog.records if "stored_port_moved" in r.getMessage()]
    assert len(moved) == 1 and "port=42000 name=grpc chosen=42002" in moved[0]
    assert load_existing_study(config).user_attrs[PORTS_ATTR]["h1"] == {
        "grpc": 42002,
        "rest": 42001,
    }


def test_a_chosen_port_taken_since_is_chosen_again_a_configured_one_is_not(
    tmp_path: Path,
) -> None:
    config = config_for(tmp_path)
    study = new_study(config)
    picks = itertools.count(43000)
    with PortReservations("s#0") as mine:
        ports = study_ports(study, 0, 0, lambda: next(picks), reservations=mine, **NEVER_BOUND)
        assert ports == (43000, 43001)
        moved = ports_again(
            study, 0, 0, lambda: next(picks), 43000, reservations=mine, **NEVER_BOUND
        )
        assert moved == (43002, 43001)
        assert study.user_attrs[PORTS_ATTR]["h"] == {"grpc": 43002, "rest": 43001}
        assert ports_again(study, 43002, 0, lambda: 1 / 0, 43002, **NEVER_BOUND) is None
    with PortReservations("t#0") as another_study:
        assert another_study.reserve(43000)  # moved off: no longer kept for study s
        assert not another_study.reserve(43001)
