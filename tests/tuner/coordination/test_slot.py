"""Slots and ports of tuners on one host: unique per study and host, whatever their workdir."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.support.studies import config_for
from tuner.coordination.runtime_dir import RUNTIME_ENV
from tuner.coordination.slot import study_key, take_slot
from tuner.errors import TunerError
from tuner.servers.reservations import PortReservations
from tuner.servers.study_ports import PORTS_ATTR, study_ports
from tuner.study.run import load_search_space, open_study

NEVER_BOUND = {"in_use": lambda port: False, "host": "h"}


def test_tuners_of_one_study_take_their_own_slots_and_ports_whatever_their_workdir(
    tmp_path: Path, runtime_dir: Path
) -> None:
    """The issue's three tuners: one study, a config and a workdir each."""
    config = config_for(tmp_path)
    study = open_study(config, load_search_space(config))
    key = study_key(config.study.storage, "s")
    ports = iter([5001, 5002, 5001, 5002, 5003, 5004])  # the kernel may hand out a port again
    with (
        take_slot(tmp_path / "runs0" / "s", key) as first,
        take_slot(tmp_path / "runs1" / "s", key) as second,
        PortReservations(first.owner) as first_ports,
        PortReservations(second.owner) as second_ports,
    ):
        assert (first.index, second.index) == (0, 1)
        assert first.workdir == tmp_path / "runs0" / "s"
        assert second.workdir == tmp_path / "runs1" / "s" / "tuner-1"
        assert (runtime_dir / "slots" / key / "slot-1.lock").exists()  # not in either workdir

        def free_port() -> int:
            return next(ports)

        mine = study_ports(study, 0, 0, free_port, reservations=first_ports, **NEVER_BOUND)
        theirs = study_ports(
            study, 0, 0, free_port, slot=second.index, reservations=second_ports, **NEVER_BOUND
        )
    assert mine == (5001, 5002) and theirs == (5003, 5004)
    assert study.user_attrs[PORTS_ATTR] == {
        "h": {"grpc": 5001, "rest": 5002},
        "h#1": {"grpc": 5003, "rest": 5004},
    }
    with take_slot(tmp_path / "runs1" / "s", key) as again:  # both tuners ended: slot 0 is free
        assert again.index == 0


def test_another_study_has_slots_of_its_own(tmp_path: Path) -> None:
    with (
        take_slot(tmp_path / "runs" / "a", study_key("sqlite:///x.db", "a")) as a,
        take_slot(tmp_path / "runs" / "b", study_key("sqlite:///x.db", "b")) as b,
    ):
        assert (a.index, b.index) == (0, 0)
        assert a.owner != b.owner


def test_a_tuner_of_another_study_never_takes_this_studys_ports(tmp_path: Path) -> None:
    """Reserved while this study's tuner runs (between its trials too), and kept for it when
    it stops: another study's tuner is offered them by the kernel and passes them by."""
    config_a = config_for(tmp_path / "a")
    config_b = config_for(tmp_path / "b")
    study_a = open_study(config_a, load_search_space(config_a))
    study_b = open_study(config_b, load_search_space(config_b))
    offered = itertools.count(6001)
    with PortReservations("a#0") as a:
        ports_a = study_ports(study_a, 0, 0, lambda: next(offered), reservations=a, **NEVER_BOUND)
        again = iter([*ports_a, 6003, 6004])
        with PortReservations("b#0") as b:
            running = study_ports(study_b, 0, 0, lambda: next(again), reservations=b, **NEVER_BOUND)
    assert ports_a == (6001, 6002) and running == (6003, 6004)

    study_b.set_user_attr(PORTS_ATTR, {})  # study b starts afresh while study a is stopped
    again = iter([*ports_a, 6005, 6006])
    with PortReservations("b#0") as b:
        stopped = study_ports(study_b, 0, 0, lambda: next(again), reservations=b, **NEVER_BOUND)
    assert stopped == (6005, 6006)
    with PortReservations("a#0") as a:  # study a's next run finds its ports where it left them
        assert study_ports(study_a, 0, 0, lambda: 1 / 0, reservations=a, **NEVER_BOUND) == ports_a


def test_a_runtime_directory_that_cannot_be_made_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(RUNTIME_ENV, str(tmp_path / "a-file"))
    with pytest.raises(TunerError, match=f"set {RUNTIME_ENV} to a directory you can write"):
        take_slot(tmp_path / "runs" / "s", study_key("sqlite:///x.db", "s"))
