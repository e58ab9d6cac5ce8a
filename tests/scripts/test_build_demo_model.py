"""The demo SavedModel: its signature, its asset, the obvious cases right, and how it is built."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scripts.build_demo_model import _install, ensure_demo_model, is_complete, main
from service.text import LABELS, SEQUENCE_LENGTH, Vocabulary

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def loaded(demo_model_dir: Path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return tf.saved_model.load(str(demo_model_dir / "1"))


@pytest.fixture(scope="module")
def signature(loaded):
    return loaded.signatures["serving_default"]


def _predict(signature, model_dir: Path, texts: list[str]) -> np.ndarray:
    import tensorflow as tf

    tokens = Vocabulary.from_model_dir(model_dir).encode_batch(texts)
    return signature(tokens=tf.constant(tokens))["probabilities"].numpy()


def test_signature_is_tokens_in_probabilities_out(signature) -> None:
    import tensorflow as tf

    _, inputs = signature.structured_input_signature
    assert list(inputs) == ["tokens"]
    assert inputs["tokens"].dtype == tf.int32
    assert inputs["tokens"].shape.as_list() == [None, SEQUENCE_LENGTH]
    outputs = signature.structured_outputs
    assert list(outputs) == ["probabilities"]
    assert outputs["probabilities"].dtype == tf.float32
    assert outputs["probabilities"].shape.as_list() == [None, len(LABELS)]


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I had an excellent service", "Positive"),
        ("That is really a bad service", "Negative"),
        ("The package arrived on Tuesday", "Neutral"),
        ("The food was not good", "Negative"),
        ("my phone broke :(", "Negative"),
        ("", "Neutral"),
    ],
)
def test_obvious_cases_are_right(signature, demo_model_dir: Path, text: str, label: str) -> None:
    row = _predict(signature, demo_model_dir, [text])[0]
    assert np.isclose(row.sum(), 1.0, atol=1e-4)
    assert LABELS[int(row.argmax())] == label


def test_rows_are_independent_of_the_batch_they_are_in(signature, demo_model_dir: Path) -> None:
    texts = ["I had an excellent service", "That is really a bad service", "see you at noon"]
    together = _predict(signature, demo_model_dir, texts)
    alone = np.concatenate([_predict(signature, demo_model_dir, [text]) for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_vocabulary_is_a_model_asset(loaded, demo_model_dir: Path) -> None:
    vocab_file = demo_model_dir / "1" / "assets" / "vocab.txt"
    tokens = vocab_file.read_text(encoding="utf-8").splitlines()
    assert tokens[:2] == ["<pad>", "<unk>"]
    assert {"excellent", "bad", "service", "emoji_smile"} <= set(tokens)
    # Registered in the SavedModel as an asset, so it is copied along with the model.
    assert Path(loaded.vocab.asset_path.numpy().decode()).resolve() == vocab_file.resolve()


def test_existing_model_is_not_rebuilt(demo_model_dir: Path) -> None:
    saved = demo_model_dir / "1" / "saved_model.pb"
    before = saved.stat().st_mtime_ns
    started = time.monotonic()
    assert ensure_demo_model(demo_model_dir) == demo_model_dir / "1"
    assert time.monotonic() - started < 0.5
    assert saved.stat().st_mtime_ns == before


def test_build_leaves_no_staging_directory(demo_model_dir: Path) -> None:
    assert not [p for p in demo_model_dir.iterdir() if p.name.startswith(".building-")]


@pytest.fixture(scope="module")
def fresh_build(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, Path]:
    """One real build through the CLI, over a version directory a crash left incomplete, with
    a TMPDIR of its own and Python writing bytecode, as on a user's machine."""
    base = tmp_path_factory.mktemp("models") / "sentiment"
    (base / "1" / "variables").mkdir(parents=True)
    tmpdir = tmp_path_factory.mktemp("build-tmpdir")
    result = subprocess.run(
        [sys.executable, "-m", "scripts.build_demo_model", "--out", str(base)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TMPDIR": str(tmpdir),
            "PYTHONDONTWRITEBYTECODE": "",
        },
    )
    return base, result, tmpdir


def test_cli_builds_a_complete_model_in_place_of_a_broken_one(fresh_build) -> None:
    base, result, _ = fresh_build
    assert result.returncode == 0, result.stderr
    assert is_complete(base / "1")
    assert [p.name for p in base.iterdir()] == ["1"]
    summary = [line for line in result.stderr.splitlines() if "event=demo_model_built" in line]
    assert len(summary) == 1
    assert "held_out_accuracy=0.9" in summary[0]
    assert "seconds=" in summary[0]


def test_a_build_leaves_nothing_in_the_temporary_directory(fresh_build) -> None:
    """AutoGraph's generated modules and their bytecode (`__pycache__`) included."""
    _, result, tmpdir = fresh_build
    assert result.returncode == 0, result.stderr
    assert list(tmpdir.iterdir()) == []


def test_cli_on_a_complete_model_only_says_so(fresh_build, capsys) -> None:
    base, _, _ = fresh_build
    assert main(["--out", str(base)]) == 0
    assert capsys.readouterr().out.startswith("event=demo_model_exists")


def test_cli_reports_an_unusable_output_directory_in_one_line(tmp_path, capsys) -> None:
    occupied = tmp_path / "a-file"
    occupied.write_text("not a directory")
    assert main(["--out", str(occupied / "sentiment")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot write the demo model under")
    assert len(err.splitlines()) == 1


def _fake_export(path: Path, marker: str) -> None:
    for name in ("saved_model.pb", "variables/variables.index", "assets/vocab.txt"):
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(marker)


def test_install_keeps_a_model_another_build_finished_first(tmp_path) -> None:
    version_dir, staging = tmp_path / "1", tmp_path / ".building-x"
    _fake_export(version_dir, "theirs")
    _fake_export(staging / "model", "ours")
    _install(staging, version_dir, force=False)
    assert (version_dir / "saved_model.pb").read_text() == "theirs"


def test_forced_install_swaps_the_old_model_out(tmp_path) -> None:
    version_dir, staging = tmp_path / "1", tmp_path / ".building-x"
    _fake_export(version_dir, "old")
    _fake_export(staging / "model", "new")
    _install(staging, version_dir, force=True)
    assert (version_dir / "saved_model.pb").read_text() == "new"
    assert (staging / "replaced" / "saved_model.pb").read_text() == "old"
