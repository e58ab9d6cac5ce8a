"""`pip install .` without extras: the tuner alone, no TensorFlow, Docker SDK or Plotly.

A virtualenv of the base install is created once and cached in pytest's cache directory
(rebuilt when pyproject.toml's dependencies change); each run re-installs this checkout into it
without dependencies, so the test sees today's code as a user's wheel would carry it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import venv
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from model_server.batching_parameters import BatchingParameters, render

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _dependencies_key() -> str:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return hashlib.sha256("\n".join(project["dependencies"]).encode()).hexdigest()[:16]


def _pip(env_dir: Path, *args: str) -> None:
    """This interpreter's pip installing into `env_dir` (`--python`): the env needs no pip of
    its own (creating one with pip costs ~2.4 s)."""
    python = str(env_dir / "bin" / "python")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--quiet",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _source_copy(dest: Path) -> Path:
    """The checkout's files as git sees them (untracked ones too, ignored ones not): what a
    user's `pip install .` of a clean clone builds, without the build/ leftovers a build in
    place would reuse."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    shutil.rmtree(dest, ignore_errors=True)
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def base_env(request: pytest.FixtureRequest) -> Iterator[Path]:
    root = Path(request.config.cache.mkdir("base-install"))
    env_dir = root / "venv"
    with (root / "lock").open("w") as lock:  # xdist workers share the cache
        fcntl.flock(lock, fcntl.LOCK_EX)
        source = str(_source_copy(root / "source"))
        stamp = env_dir / "dependencies-key"
        if not stamp.exists() or stamp.read_text() != _dependencies_key():
            venv.create(env_dir, clear=True)
            _pip(env_dir, source)
            stamp.write_text(_dependencies_key())
        _pip(env_dir, "--no-deps", "--force-reinstall", source)
        yield env_dir


def run(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(env_dir / "bin" / "tuner"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_the_base_install_has_no_extras_and_no_checkout_names(base_env: Path, tmp_path) -> None:
    probe = (
        "import importlib.util as u; "
        "print(*[m for m in ('tensorflow', 'docker', 'plotly', 'kaleido', 'scripts', 'storage') "
        "if u.find_spec(m)])"
    )
    done = subprocess.run(
        [str(base_env / "bin" / "python"), "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == ""


def test_help_version_show_and_export_run_without_tensorflow(base_env: Path, tmp_path) -> None:
    assert run(base_env, "--help", cwd=tmp_path).returncode == 0
    version = run(base_env, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("tuner ")
    storage = f"sqlite:///{tmp_path / 't.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    trial = study.ask({"max_batch_size": optuna.distributions.IntDistribution(1, 64)})
    trial.set_user_attr("batching_file", render(BatchingParameters(max_batch_size=8)))
    for name, value in {"rps": 100.0, "error_rate": 0.0, "p95_ms": 20.0}.items():
        trial.set_user_attr(name, value)
    trial.set_constraint("p95_minus_slo_ms", -1.0)
    study.tell(trial, 100.0)
    shown = run(base_env, "show", "--storage", storage, "--study-name", "s", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "winner: trial 0" in shown.stdout and "100.0 req/s" in shown.stdout
    out = tmp_path / "b.txt"
    exported = run(
        base_env,
        "export",
        "--storage",
        storage,
        "--study-name",
        "s",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert exported.returncode == 0, exported.stderr
    assert "max_batch_size { value: 8 }" in out.read_text()


@pytest.mark.parametrize(("backend", "extra"), [("embedded", "[embedded]"), ("docker", "[docker]")])
def test_a_backend_without_its_extra_says_which_to_install(
    base_env: Path, tmp_path: Path, backend: str, extra: str
) -> None:
    (tmp_path / "models" / "sentiment" / "1").mkdir(parents=True)
    done = run(
        base_env,
        "optimize",
        "--backend",
        backend,
        "--storage",
        f"sqlite:///{tmp_path / 't.db'}",
        cwd=tmp_path,
    )
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and f"pip install 'tfserving-batching-tuner{extra}'" in error
    assert "Traceback" not in done.stderr


def test_report_without_its_extra_says_which_to_install(base_env: Path, tmp_path: Path) -> None:
    done = run(base_env, "report", "--storage", f"sqlite:///{tmp_path / 't.db'}", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: tuner report plots need Plotly and kaleido, which the base install leaves "
        "out: pip install 'tfserving-batching-tuner[report]'"
    )
    assert sys.executable not in done.stderr


def test_the_demo_service_without_its_extra_says_which_to_install(
    base_env: Path, tmp_path: Path
) -> None:
    (tmp_path / "models" / "sentiment" / "1").mkdir(parents=True)
    config = tmp_path / "tuner.toml"
    config.write_text('[server]\nbackend = "binary"\nbinary_path = "/bin/true"\n')
    done = run(base_env, "optimize", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert "pip install 'tfserving-batching-tuner[embedded]'" in error
    assert "service.url or service.command" in error
