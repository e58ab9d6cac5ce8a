"""Load from several machines: a trial's Locust master on loopback and workers started
separately with `python -m tuner load-worker`, as they would be on other hosts.

Real processes throughout (the tuner's master, the load-worker commands and their Locust
workers, a stub service); each test is bounded by a few seconds of load at tens of req/s.
Assertions are on counts: the arrival schedule is reproducible (tuner.load.arrivals).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.arrivals import arrival_counts
from tests.support.stub_target import stub_target
from tests.tuner.load.test_load_runner import locust_processes
from tuner.capacity.settings import load_profile
from tuner.commands.cli import main
from tuner.config import load_config
from tuner.errors import ConfigError
from tuner.load import LoadGeneratorError, LoadProfile
from tuner.load.generator import OpenLoopGenerator
from tuner.process import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]


def write_config(tmp_path: Path, port: int, **load: object) -> Path:
    settings: dict[str, object] = dict(
        mode="capacity",
        workers=2,
        master_bind_port=port,
        step_warmup_s=0.5,
        step_measure_s=2.0,
        interval_s=0.5,
        max_in_flight=64,
        worker_timeout_s=30.0,
    )
    settings.update(load)
    lines = ["[load]"] + [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    path = tmp_path / "tuner.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def profile_of(config: Path) -> LoadProfile:
    return load_profile(load_config(config))


@contextlib.contextmanager
def load_worker(config: Path, port: int, name: str, workdir: Path) -> Iterator[subprocess.Popen]:
    """`python -m tuner load-worker` in a session of its own, like a command on another host."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "tuner", "load-worker", "--master", f"127.0.0.1:{port}"]
    cmd += ["--config", str(config), "--worker", name, "--log", str(workdir / "locust.log")]
    with (workdir / "out.log").open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def schedule(profile: LoadProfile, rate: float) -> list[int]:
    intervals = profile.warmup_intervals + profile.measure_intervals
    return arrival_counts(
        rate, profile.workers, profile.interval_s, intervals, profile.warmup_s, profile.measure_s
    )


def lines(workdir: Path) -> list[dict]:
    text = (workdir / "intervals.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_two_remote_workers_offer_the_target_rate_across_trials(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    profile = profile_of(config)
    with (
        stub_target("--delay-s=0.004") as stub,
        load_worker(config, port, "host-a", tmp_path / "a"),
        load_worker(config, port, "host-b", tmp_path / "b"),
    ):
        first = tmp_path / "trial-1"
        with OpenLoopGenerator(profile, stub.url, first) as gen:
            low = gen.step(40.0)
            high = gen.step(80.0)
        # The next trial's master on the same address: the load-workers start again for it.
        second = tmp_path / "trial-2"
        with OpenLoopGenerator(profile, stub.url, second) as gen:
            again = gen.step(60.0)
        assert locust_processes(first) == [] and locust_processes(second) == []

    for result, rate in ((low, 40.0), (high, 80.0), (again, 60.0)):
        # The two workers' shares add up to exactly the target over the window.
        assert result.arrivals == rate * profile.measure_s
        assert result.offered_rps_achieved == rate
        assert [s.arrivals for s in result.samples] == schedule(profile, rate)
        assert result.requests > 0 and result.failures == 0
    for workdir in (first, second):
        stream = lines(workdir)
        ready = {line["worker"] for line in stream if line.get("ready")}
        assert ready == {"host-a", "host-b"}
        sources = {line["source"] for line in stream if "index" in line}
        assert len(sources) == 2  # each interval merged from both workers' lines
    # Every interval of the window holds both workers' requests.
    step_lines = [line for line in lines(first) if line.get("step") == 1 and "index" in line]
    assert sum(line["requests"] for line in step_lines) >= high.requests


def test_a_worker_that_never_connects_fails_with_a_sentence(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port, worker_timeout_s=12.0)
    profile = profile_of(config)
    with (
        stub_target() as stub,
        load_worker(config, port, "host-a", tmp_path / "a"),
        pytest.raises(LoadGeneratorError) as caught,
    ):
        OpenLoopGenerator(profile, stub.url, tmp_path / "trial").start()
    assert caught.value.reason == "load_generator_failed"
    message = str(caught.value)
    assert message.startswith(
        f"expected 2 Locust workers at 127.0.0.1:{port}, 1 connected after 12 s: start "
        f"`python -m tuner load-worker --master 127.0.0.1:{port} --config tuner.toml`"
    )
    assert locust_processes(tmp_path / "trial") == []


def test_a_worker_killed_mid_window_fails_the_step_naming_it(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port, step_measure_s=8.0)
    profile = profile_of(config)
    seen: list[int] = []
    with (
        stub_target("--delay-s=0.004") as stub,
        load_worker(config, port, "host-a", tmp_path / "a"),
        load_worker(config, port, "host-b", tmp_path / "b") as doomed,
        OpenLoopGenerator(profile, stub.url, tmp_path / "trial") as gen,
    ):

        def kill_b_in_the_window(sample) -> bool:
            seen.append(sample.index)
            if not sample.in_warmup and len(seen) == profile.warmup_intervals + 1:
                os.killpg(doomed.pid, signal.SIGKILL)
            return True

        with pytest.raises(LoadGeneratorError) as caught:
            gen.step(40.0, on_interval=kill_b_in_the_window)
    assert caught.value.reason == "load_generator_failed"
    message = str(caught.value)
    assert message.startswith("Locust worker host-b stopped sending heartbeats")
    assert "during step 0 at 40 req/s; 1 of 2 workers remain" in message
    # The window never completed: fewer intervals than warm-up + window were delivered.
    assert len(seen) < profile.warmup_intervals + profile.measure_intervals


@pytest.mark.parametrize(
    ("load", "message"),
    [
        ({"workers": -1}, "load.workers must be 0 (no remote workers) or more, not -1"),
        ({"workers": 2, "mode": "closed"}, 'load.workers (2) needs load.mode = "capacity"'),
        ({"workers": 2, "processes": 2}, "load.workers (2) and load.processes (2) exclude"),
        ({"master_bind_port": 70000}, "load.master_bind_port must be a TCP port from 1 to"),
        ({"master_bind_host": "http://x"}, "load.master_bind_host must be an address"),
        ({"worker_timeout_s": 0}, "load.worker_timeout_s must be a positive number"),
        ({"workers": 8, "max_in_flight": 4}, "load.max_in_flight (4) must be at least 1 per"),
        ({"workers": "two"}, "load.workers must be a whole number, not 'two'"),
    ],
)
def test_bad_worker_settings_are_one_sentence(tmp_path: Path, load: dict, message: str) -> None:
    config = write_config(tmp_path, 5557, **load)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("master", "workers", "message"),
    [
        ("10.0.0.5", 2, "--master must be the tuner host's HOST:PORT"),
        ("10.0.0.5:0", 2, "--master must be the tuner host's HOST:PORT"),
        ("10.0.0.5:5557", 0, "load.workers is 0 in this config"),
    ],
)
def test_load_worker_refuses_bad_input_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, master: str, workers: int, message: str
) -> None:
    config = write_config(tmp_path, 5557, workers=workers)
    code = main(["load-worker", "--master", master, "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
