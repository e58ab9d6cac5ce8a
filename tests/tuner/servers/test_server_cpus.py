"""`server.cpus`: the model server's CPU budget, parsed in one sentence when wrong, applied to
the embedded server's process (affinity, TF's thread flags) and to a container's kwargs."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from tests.tuner.servers.test_embedded_backend import BATCHING, spec_for
from tuner.commands.cli import main
from tuner.servers import ServerConfigError, ServerSpec, create_backend
from tuner.servers.cpus import available_cpus, format_list, parse_cpus
from tuner.servers.docker_backend import container_spec

MACHINE = (0, 1, 2, 3)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "server.cpus is empty"),
        ("  ", "server.cpus is empty"),
        ("a-b", "is not a CPU list"),
        ("0;1", "is not a CPU list"),
        ("3-1", "which holds no CPU"),
        ("4", "names CPU(s) 4 this machine does not let the tuner use; choose among 0-3"),
        ("0,6-7", "names CPU(s) 6-7"),
        (0, "must be a count from 1 to 4"),
        (5, "must be a count from 1 to 4"),
        (1.5, "must be a CPU list"),
    ],
)
def test_a_bad_cpu_budget_is_one_sentence(value, message: str) -> None:
    with pytest.raises(ServerConfigError) as info:
        parse_cpus(value, MACHINE)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_lists_and_counts() -> None:
    assert parse_cpus(None, MACHINE) is None
    pinned = parse_cpus("0,2-3", MACHINE)
    assert pinned.cpus == (0, 2, 3) and pinned.describe() == "0,2-3"
    assert pinned.docker_kwargs() == {"cpuset_cpus": "0,2,3"}
    counted = parse_cpus(2, MACHINE)
    assert counted.cpus == (0, 1) and counted.describe() == "2 CPUs"
    assert counted.docker_kwargs() == {"nano_cpus": 2_000_000_000}
    assert format_list((0, 1, 2, 5, 7, 8)) == "0-2,5,7-8"


def test_thread_flags_are_sized_to_the_budget_unless_set(tmp_path: Path) -> None:
    spec = ServerSpec(
        "m",
        tmp_path,
        8500,
        8501,
        extra_flags={"tensorflow_inter_op_parallelism": "4"},
        cpus=parse_cpus("0-1", MACHINE),
    )
    assert spec.with_cpu_flags({}) == {"tensorflow_intra_op_parallelism": "2"}
    assert spec.with_cpu_flags({"tensorflow_intra_op_parallelism": "0"}) == {
        "tensorflow_intra_op_parallelism": "0"  # the search space's own choice stands
    }
    kwargs = container_spec(
        spec, image="i", batching_file=None, monitoring_file=tmp_path / "m", server_flags={}
    )
    assert kwargs["cpuset_cpus"] == "0,1"
    assert "--tensorflow_intra_op_parallelism=2" in kwargs["command"]


def test_the_cli_refuses_an_unknown_cpu_in_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "tuner.toml"
    path.write_text('[server]\ncpus = "99"\n', encoding="utf-8")
    assert main(["optimize", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "server.cpus" in err and "Traceback" not in err


@pytest.mark.slow
def test_the_embedded_server_runs_on_its_budget(demo_model_dir: Path, tmp_path: Path) -> None:
    cpu = available_cpus()[-1]
    spec = spec_for(demo_model_dir, cpus=parse_cpus(str(cpu)))
    backend, _ = create_backend("embedded", spec)
    try:
        backend.start(BATCHING, {}, tmp_path / "t0")
        process = psutil.Process(backend.pids[0])
        assert process.cpu_affinity() == [cpu]
        # every thread TensorFlow started inherited it
        assert {frozenset(os.sched_getaffinity(t.id)) for t in process.threads()} == {
            frozenset({cpu})
        }
        assert "--tensorflow_intra_op_parallelism=1" in " ".join(process.cmdline())
        assert "--tensorflow_inter_op_parallelism=1" in " ".join(process.cmdline())
    finally:
        backend.stop()
