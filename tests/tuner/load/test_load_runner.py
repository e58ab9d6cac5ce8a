"""The load runner against a real HTTP target on loopback, a few seconds of load each."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.support.stub_target import stub_target
from tuner.load import LoadGeneratorError, LoadProfile, run_load
from tuner.load.locust_process import DEFAULT_LOCUSTFILE, REPORTER, locust_command
from tuner.process import free_port


def stub_stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/stats", timeout=5) as response:
        return json.load(response)


def interval_lines(workdir: Path) -> list[dict]:
    return [json.loads(x) for x in (workdir / "intervals.jsonl").read_text().splitlines()]


def locust_processes(workdir: Path) -> list[psutil.Process]:
    """Locust processes started for `workdir` that are still alive."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "locust" in cmdline and str(workdir / "locust") in cmdline:
            found.append(proc)
    return found


PROFILE = LoadProfile(users=4, spawn_rate=100, warmup_s=1.0, measure_s=2.0, interval_s=0.5)


def test_stream_window_percentiles_and_failure_codes(tmp_path: Path) -> None:
    received: list[tuple[float, object]] = []

    def on_interval(sample) -> bool:
        received.append((time.monotonic(), sample))
        return True

    with stub_target(
        "--delay-s=0.004",
        "--overloaded-every=5",
        "--deadline-every=7",
        "--plain500-every=11",
        "--bad-body-every=13",
    ) as stub:
        result = run_load(
            PROFILE, stub.url, tmp_path, on_interval=on_interval, cpu_pids=lambda: [stub.pid]
        )
        returned_at = time.monotonic()
        sent = stub_stats(stub.url)

    # Intervals stream while Locust runs, in order, warm-up flagged.
    assert [s.index for s in result.samples] == list(range(6))
    assert [s for _, s in received] == result.samples
    assert returned_at - received[0][0] > 1.5
    assert [s.in_warmup for s in result.samples] == [True, True, False, False, False, False]
    assert [s.t_s for s in result.samples] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]

    # The window is the measured intervals only, its percentiles over all of its requests.
    measured = [s for s in result.samples if not s.in_warmup]
    assert result.requests == sum(s.requests for s in measured) > 100
    assert result.failures == sum(s.failures for s in measured)
    assert result.duration_s == 2.0 and result.rps == result.requests / 2.0
    lines = interval_lines(tmp_path)
    raw = [x for ln in lines if 2 <= ln["index"] <= 5 for x in ln["latencies_ms"]]
    assert len(raw) == result.requests
    for p, got in ((50, result.p50_ms), (95, result.p95_ms), (99, result.p99_ms)):
        assert got == float(np.percentile(raw, p, method="inverted_cdf"))
    assert result.p95_ms >= 3.9  # successes wait for the stub's 4 ms delay: real round trips

    # Failures are named by the service's error code; proportions follow the stub's schedule.
    codes = result.failures_by_code
    expected_share = {
        "model_server_overloaded": 1 / 5,
        "deadline_exceeded": 4 / 5 * 1 / 7,
        "http_500": 4 / 5 * 6 / 7 * 1 / 11,
        "invalid_response": 4 / 5 * 6 / 7 * 10 / 11 * 1 / 13,
    }
    assert set(codes) == set(expected_share)
    for code, share in expected_share.items():
        assert abs(codes[code] - share * result.requests) <= 0.02 * result.requests + 8, code
    assert result.error_rate == result.failures / result.requests
    assert sent["text"] >= result.requests + sum(s.requests for s in result.samples[:2])

    assert result.settled in (True, False) and "last 3 intervals" in result.settle_detail
    assert result.generator_cpu_percent is not None and result.generator_cpu_percent > 0
    assert set(result.cpu_percent_by_pid) == {stub.pid} and result.cpu_percent_by_pid[stub.pid] > 0
    assert not result.stopped_early
    names = {p.name for p in result.artifacts}
    assert {"locust.log", "intervals.jsonl", "locust_stats.csv"} <= names
    assert locust_processes(tmp_path) == []


def test_on_interval_false_stops_early_and_batches_texts(tmp_path: Path) -> None:
    profile = LoadProfile(
        users=2, spawn_rate=100, warmup_s=0.5, measure_s=30.0, interval_s=0.5, texts_per_request=3
    )
    started = time.monotonic()
    with stub_target("--delay-s=0.004") as stub:
        result = run_load(profile, stub.url, tmp_path, on_interval=lambda s: s.index < 2)
        sent = stub_stats(stub.url)
    assert time.monotonic() - started < 20
    assert result.stopped_early
    assert [s.index for s in result.samples] == [0, 1, 2]
    assert result.duration_s == 1.0 and result.requests > 0
    assert result.failures == 0 and sent.get("text", 0) == 0 and sent["texts=3"] > 0
    assert locust_processes(tmp_path) == []


def test_timeouts_and_refused_connections_are_named(tmp_path: Path) -> None:
    profile = LoadProfile(
        users=2, spawn_rate=100, warmup_s=0.5, measure_s=1.5, interval_s=0.5, request_timeout_s=0.2
    )
    with stub_target("--slow-every=2", "--slow-s=1.0") as stub:
        slow = run_load(profile, stub.url, tmp_path / "slow")
    assert slow.failures_by_code.get("timeout", 0) > 0
    assert set(slow.failures_by_code) == {"timeout"}

    refused = run_load(profile, f"http://127.0.0.1:{free_port()}", tmp_path / "refused")
    assert refused.failures == refused.requests > 0
    assert refused.failures_by_code == {"connection": refused.requests}


def test_two_locust_processes_merge_into_one_stream(tmp_path: Path) -> None:
    profile = LoadProfile(
        users=4, spawn_rate=100, warmup_s=0.5, measure_s=1.5, interval_s=0.5, processes=2
    )
    with stub_target("--delay-s=0.004") as stub:
        result = run_load(profile, stub.url, tmp_path)
    lines = interval_lines(tmp_path)
    assert len({ln["source"] for ln in lines}) == 2
    for s in result.samples:
        assert s.requests == sum(ln["requests"] for ln in lines if ln["index"] == s.index)
    assert result.requests == sum(s.requests for s in result.samples if not s.in_warmup) > 0
    assert locust_processes(tmp_path) == []


def test_broken_locustfile_is_a_load_generator_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken_locustfile.py"
    bad.write_text("import module_that_does_not_exist\n")
    profile = LoadProfile(users=1, warmup_s=0, measure_s=1, locustfile=bad)
    with pytest.raises(LoadGeneratorError) as caught:
        run_load(profile, "http://127.0.0.1:9", tmp_path / "run")
    err = caught.value
    assert err.reason == "load_generator_failed"
    assert "Locust exited with code 1" in str(err)
    assert "No module named 'module_that_does_not_exist'" in str(err)
    assert "Traceback" in err.log_tail

    with pytest.raises(LoadGeneratorError, match="does not exist"):
        run_load(
            LoadProfile(locustfile=tmp_path / "missing.py"), "http://127.0.0.1:9", tmp_path / "x"
        )


def test_interrupt_kills_locust(tmp_path: Path) -> None:
    def interrupt(sample) -> bool:
        raise KeyboardInterrupt

    with stub_target("--delay-s=0.004") as stub, pytest.raises(KeyboardInterrupt):
        run_load(PROFILE, stub.url, tmp_path, on_interval=interrupt)
    assert locust_processes(tmp_path) == []


def test_command_line(tmp_path: Path) -> None:
    profile = LoadProfile(users=8, spawn_rate=4, warmup_s=2, measure_s=10, processes=2)
    assert locust_command(profile, "http://127.0.0.1:8080", tmp_path, master_port=5999) == [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{DEFAULT_LOCUSTFILE},{REPORTER}",
        "--headless",
        "--host",
        "http://127.0.0.1:8080",
        "--users",
        "8",
        "--spawn-rate",
        "4",
        "--run-time",
        "44s",
        "--stop-timeout",
        "1",
        "--csv",
        str(tmp_path / "locust"),
        "--only-summary",
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "INFO",
        "--processes",
        "2",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        "5999",
        "--master-port",
        "5999",
    ]
