"""`python -m tuner init --model DIR`: a model it cannot tune is one sentence and exit 2;
a model it can tune gets a config whose SLO comes from a measured request (the end-to-end
runs of those configs are in test_any_model.py)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from scripts.own_tempdir import own_tempdir
from tuner.commands.cli import main
from tuner.commands.init_config import suggested_slo_ms
from tuner.commands.warm_timing import (
    BATCHING_HEADROOM,
    WarmTiming,
    search_budget,
    warm_median_ms,
)
from tuner.config import load_config


def run_init(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["init", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def saved_model_without_serving_default(base: Path) -> Path:
    import tensorflow as tf

    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def double(self, x):
            return {"y": x * 2}

    module = Other()
    with own_tempdir():  # AutoGraph's modules (scripts/own_tempdir.py)
        tf.saved_model.save(module, str(base / "1"), signatures={"double": module.double})
    return base


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp, models: tmp / "missing", "is not a directory"),
        (lambda tmp, models: shutil.copytree(models["image"] / "1", tmp / "flat"), "no version"),
        (lambda tmp, models: saved_model_without_serving_default(tmp / "other"), "serving_def"),
        (lambda tmp, models: models["unbatched"], "batching cannot apply"),
        (lambda tmp, models: garbage_model(tmp / "garbage"), "cannot read the SavedModel"),
    ],
    ids=["missing", "no_version_dir", "no_serving_signature", "no_batch_dim", "unreadable"],
)
def test_a_model_it_cannot_tune_is_one_sentence_and_exit_2(
    capsys, tmp_path, example_models, make, expected
):
    model = Path(make(tmp_path, example_models))
    out = tmp_path / "tuner.toml"
    code, _, err = run_init(capsys, "--model", str(model), "--out", str(out))
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert "Traceback" not in err and not out.exists()


def garbage_model(base: Path) -> Path:
    (base / "1").mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_bytes(b"\x00\xff not a protobuf at all \xff" * 3)
    return base


def test_an_existing_config_is_not_replaced_without_force(capsys, tmp_path, example_models):
    out = tmp_path / "tuner.toml"
    out.write_text("# mine\n")
    code, _, err = run_init(capsys, "--model", str(example_models["image"]), "--out", str(out))
    assert code == 2 and "--force" in err and out.read_text() == "# mine\n"


def test_the_config_uses_the_models_warmup_file_and_a_measured_slo(
    capsys, tmp_path, example_models
):
    from scripts.example_models import write_warmup
    from tests.model_server.test_warmup import image_request

    model = Path(shutil.copytree(example_models["image"], tmp_path / "image"))
    write_warmup(model / "1", [image_request(1)])
    out = tmp_path / "tuner.toml"
    code, printed, _ = run_init(capsys, "--model", str(model), "--out", str(out))
    assert code == 0, printed
    data = tomllib.loads(out.read_text())
    assert data["load"]["requests"] == "model-warmup"
    assert data["server"]["model_base_path"] == "image"  # relative to the config's directory
    latency = float(printed.split("one request: ")[1].split(" ms")[0])
    slo = data["objective"]["slo_ms"]  # from the latency before it was printed to 0.1 ms
    assert latency > 0 and suggested_slo_ms(latency - 0.05) <= slo <= suggested_slo_ms(
        latency + 0.05
    )
    assert "input image: DT_FLOAT [-1, 32, 32, 3]" in out.read_text()
    config = load_config(out, {})  # a valid config as it is
    assert config.path(config.server.model_base_path) == model.resolve()


def test_suggested_slo_is_five_times_one_request_rounded_up_to_5_ms():
    assert suggested_slo_ms(10.2) == 55.0
    assert suggested_slo_ms(1.0) == 20.0  # a floor: scheduling noise dominates below it


def test_the_timing_waits_for_a_cold_model_to_warm_up():
    """TensorFlow's first few dozen calls are slow; one warm request is not enough."""
    latencies = iter([40.0] * 35 + [1.3] * 200)
    ticks = iter(x / 20 for x in range(10_000))  # 50 ms per call of the clock
    timing = warm_median_ms(lambda: next(latencies), clock=lambda: next(ticks))
    assert timing.median_ms == 1.3 and timing.settled
    assert 50 <= timing.warmup_requests < 100 and timing.warmup_s >= 2.0


def test_the_warm_up_is_bounded_when_latencies_keep_falling():
    falling = (100.0 * 0.9**i for i in range(10_000))
    timing = warm_median_ms(lambda: next(falling), max_warmup_requests=50)
    assert timing.warmup_requests == 50 and not timing.settled
    assert "still falling" in timing.describe()
    ticks = iter(range(10_000))
    falling = (100.0 * 0.9**i for i in range(10_000))
    timing = warm_median_ms(lambda: next(falling), max_warmup_s=5.0, clock=lambda: next(ticks))
    assert timing.warmup_requests < 10 and not timing.settled


@pytest.mark.parametrize("latency_ms", [0.3, 1.3, 44.0, 400.0])
@pytest.mark.parametrize("cores", [1, 2, 16])
def test_the_search_can_reach_beyond_the_serial_capacity_within_its_budget(latency_ms, cores):
    """Doubling from start_rps reaches BATCHING_HEADROOM x the serial estimate within
    max_steps, with steps left to bisect, and max_trial_s lets all of them run."""
    b = search_budget(latency_ms, cores, warmup_s=1.0, measure_s=3.0)
    serial = 1000.0 / latency_ms * cores
    assert b.serial_rps == pytest.approx(serial)
    assert b.start_rps >= 5.0
    reach = b.start_rps * 2.0**b.doublings
    assert reach >= BATCHING_HEADROOM * serial and reach <= b.max_rps
    assert b.max_steps >= b.doublings + 4
    assert b.max_trial_s >= b.max_steps * (1.0 + 3.0 + 5.0)


def test_the_config_says_how_it_was_timed_and_sizes_its_search(tmp_path, example_models):
    from tuner.commands.init_config import inspect_model, render_config

    summary = inspect_model(example_models["image"])
    timing = WarmTiming(1.3, 30, 42, 0.2, True)
    out = tmp_path / "tuner.toml"
    text = render_config(summary, timing, out, cores=2)
    out.write_text(text)
    assert "median of 30 requests after 42 warm-up requests" in text
    config = load_config(out, {})
    budget = search_budget(1.3, 2, config.load.step_warmup_s, config.load.step_measure_s)
    assert config.load.start_rps == budget.start_rps and config.load.max_steps == budget.max_steps
    assert config.load.max_trial_s == budget.max_trial_s
    # the old config's 40 s and 6 steps stopped both references far below the knee
    assert config.load.max_trial_s > 40.0 and config.load.max_steps > 6
