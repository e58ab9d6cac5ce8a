"""The docs site builds --strict, and its generated reference covers every tuner.toml key."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest

from tuner import config as config_module
from tuner.commands import reference
from tuner.commands.cli import build_parser

REPO = Path(__file__).resolve().parents[2]


def test_the_site_builds_strict_with_every_generated_page(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    configuration = (site / "reference" / "configuration" / "index.html").read_text()
    assert "study.stale_after_s" in configuration and "load.step_measure_s" in configuration
    assert "--timeout-s" in (site / "reference" / "cli" / "index.html").read_text()
    assert "tuner_capacity_steps" in (site / "reference" / "storage" / "index.html").read_text()
    assert "Benchmark" in (site / "benchmarks" / "index.html").read_text()


def test_every_config_key_has_type_default_and_description() -> None:
    keys = {(k.section, k.key): k for k in reference.config_keys()}
    hints = typing.get_type_hints(config_module.TunerConfig)
    for section in config_module.SECTIONS:
        for field in dataclasses.fields(hints[section]):
            key = keys[(section, field.name)]
            assert key.doc and key.type and key.default, key
    page = reference.config_markdown()
    for section, name in keys:
        assert f"`{section}.{name}`" in page


def test_a_key_without_a_description_fails_naming_it(monkeypatch) -> None:
    real = reference.attribute_docs

    def without_timeout(cls: type) -> dict[str, str]:
        docs = real(cls)
        docs.pop("timeout_s", None)
        return docs

    monkeypatch.setattr(reference, "attribute_docs", without_timeout)
    with pytest.raises(reference.UndocumentedKeyError, match=r"study\.timeout_s"):
        reference.config_keys()


def test_attribute_docstrings_are_read_below_their_field_only() -> None:
    @dataclass
    class Section:
        documented: int = 1
        """What it means."""
        bare: str = "x"  # a comment is not a description

    assert reference.attribute_docs(Section) == {"documented": "What it means."}


def test_the_cli_reference_lists_every_command_and_flag() -> None:
    page = reference.cli_markdown(build_parser())
    for command in ("optimize", "show", "export", "load-worker", "report"):
        assert f"## `tuner {command}`" in page
    for flag in ("--timeout-s", "--worker", "--slo-ms", "--master", "--png", "--version"):
        assert f"`{flag}`" in page
