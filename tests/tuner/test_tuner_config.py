"""tuner.toml: defaults, the file, CLI overrides, and one clear sentence per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.config import load_config
from tuner.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tuner.toml"
    path.write_text(text)
    return path


def test_defaults_work_without_a_file() -> None:
    config = load_config(None)
    assert config.study.storage == f"sqlite:///{Path.cwd() / 'tuning.db'}"
    assert config.study.sampler == "tpe"
    assert config.objective.percentile == "p95"
    assert config.search.space == "cpu"


def test_the_shipped_demo_config_loads() -> None:
    config = load_config(REPO / "tuner.toml")
    assert config.search.space == "quick"
    assert config.server.backend == "auto"


def test_file_values_then_cli_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, '[study]\nn_trials = 5\nname = "a"\n[load]\nusers = 4\nwarmup_s = 1\n')
    config = load_config(path, {"study": {"n_trials": 9}})
    assert config.study.n_trials == 9
    assert config.study.name == "a"
    assert config.load.users == 4
    assert config.load.warmup_s == 1.0 and isinstance(config.load.warmup_s, float)


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[server]\nmodel_base_path = "m/s"\n'))
    assert config.path(config.server.model_base_path) == tmp_path / "m" / "s"
    assert config.model_dir == tmp_path / "m" / "s"


def test_extra_flags_become_strings(tmp_path: Path) -> None:
    path = write(tmp_path, "[server.extra_flags]\ntensorflow_session_parallelism = 2\n")
    assert load_config(path).server.extra_flags == {"tensorflow_session_parallelism": "2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[study]\nn_trails = 3\n", "unknown key study.n_trails"),
        ("[studdy]\nn_trials = 3\n", "unknown section [studdy]"),
        ("[study]\nn_trials = 'many'\n", "study.n_trials must be a whole number"),
        ("[study]\nn_trials = true\n", "study.n_trials must be a whole number"),
        ("[study]\nn_trials = 0\n", "study.n_trials must be at least 1"),
        (
            "[study]\nmax_bench_faults_in_a_row = 0\n",
            "study.max_bench_faults_in_a_row must be at least 1",
        ),
        (
            "[study]\nsampler = 'cmaes'\n",
            "study.sampler must be one of tpe, tpe-multivariate, random, qmc, grid, quick",
        ),
        ("[objective]\npercentile = 'p90'\n", "objective.percentile must be one of"),
        ("[objective]\nmax_error_rate = 5\n", "objective.max_error_rate must be a fraction"),
        ("[server]\nbackend = 'k8s'\n", "server.backend must be one of"),
        ("[server]\ngrpc_port = 70000\n", "server.grpc_port must be a port"),
        ("[service]\nurl = 'http://x'\ncommand = ['a']\n", "not both"),
        ("[service]\nhost = '0.0.0.0'\n", "service.host is also the address Locust sends"),
        ("[study\n", "is not valid TOML"),
    ],
)
def test_mistakes_are_one_sentence_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value).strip()


def test_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"does not exist; give the path of an existing tuner\.toml"
    ):
        load_config(tmp_path / "nope.toml")


def test_a_relative_sqlite_file_is_relative_to_the_config_file(tmp_path: Path, monkeypatch):
    config = load_config(write(tmp_path, '[study]\nstorage = "sqlite:///db/t.db?timeout=5"\n'))
    assert config.study.storage == f"sqlite:///{tmp_path}/db/t.db?timeout=5"
    monkeypatch.chdir(tmp_path / "..")
    flag = load_config(tmp_path / "tuner.toml", {"study": {"storage": "sqlite:///x.db"}})
    assert flag.study.storage == f"sqlite:///{(tmp_path / '..' / 'x.db').resolve()}"
    other = "postgresql://tuner@db/optuna"
    assert load_config(None, {"study": {"storage": other}}).study.storage == other


def test_a_config_knows_the_file_it_was_read_from(tmp_path: Path) -> None:
    """`export` puts it in the re-check command; the built-in defaults have none."""
    path = tmp_path / "tuner.toml"
    path.write_text('[study]\nname = "x"\n')
    assert load_config(None).file is None
    assert load_config(path).file == path
