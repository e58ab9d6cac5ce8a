"""The images' requirement sets come from pyproject.toml's dependencies and extras, so an extra
that moves a package (TensorFlow into `embedded`) moves it in the images too."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_requirements_module():
    spec = importlib.util.spec_from_file_location(
        "requirements", REPO / "container" / "requirements.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def names(path: Path) -> set[str]:
    return {
        re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0]
        for line in path.read_text().split("\n")
        if line
    }


def test_each_image_gets_what_its_program_imports(tmp_path: Path) -> None:
    load_requirements_module().write_sets(REPO / "pyproject.toml", tmp_path)
    service = names(tmp_path / "service.txt")
    model_server = names(tmp_path / "model-server.txt")
    tuner = names(tmp_path / "tuner.txt")
    assert {"starlette", "grpcio", "orjson"} <= service
    assert not service & {"tensorflow", "optuna", "locust", "docker"}
    assert names(tmp_path / "service-nodeps.txt") == {"tensorflow-serving-api"}
    assert names(tmp_path / "tensorflow.txt") == {"tensorflow"}
    assert {"tensorflow", "tensorflow-serving-api", "ml_dtypes", "psutil"} <= model_server
    assert not model_server & {"optuna", "locust", "docker", "plotly"}
    assert {"optuna", "locust", "tensorflow", "docker", "plotly", "kaleido"} <= tuner
    assert not tuner & {"pytest", "ruff", "mkdocs", "psycopg"}
