"""Requirement sets for the images, from pyproject.toml's dependencies and extras (one source of
truth).

Each image installs only what its program imports: the service needs no TensorFlow runtime
(only its generated protos, see `protos`), the model server needs the `embedded` extra
(TensorFlow), the tuner the base install plus the extras its image offers.
Run inside the image build: `python3 requirements.py sets pyproject.toml OUTDIR` writes
OUTDIR/<set>.txt; `python3 requirements.py protos WHEEL SITE_PACKAGES` unpacks TensorFlow's
`*_pb2.py` modules from its wheel into SITE_PACKAGES.
"""

from __future__ import annotations

import re
import sys
import tomllib
import zipfile
from pathlib import Path

SERVING = {"starlette", "uvicorn", "httptools", "uvloop", "grpcio", "protobuf", "numpy", "orjson"}
# name: (extras, wanted names or None for all of them)
SETS: dict[str, tuple[tuple[str, ...], set[str] | None]] = {
    "service": ((), SERVING),
    # The service's client stubs; installed without their `tensorflow` requirement.
    "service-nodeps": (("embedded",), {"tensorflow-serving-api"}),
    "tensorflow": (("embedded",), {"tensorflow"}),
    "model-server": (
        ("embedded",),
        SERVING | {"tensorflow", "tensorflow-serving-api", "ml_dtypes", "psutil"},
    ),
    # The tuner image runs every backend it can (embedded, docker) and draws reports.
    "tuner": (("embedded", "docker", "report"), None),
}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower()


def requirements(project: dict, extras: tuple[str, ...]) -> list[str]:
    """The base dependencies and those of `extras`, as `pip install '.[extras]'` would get."""
    optional = project.get("optional-dependencies", {})
    return [*project["dependencies"], *(d for extra in extras for d in optional[extra])]


def write_sets(pyproject: Path, outdir: Path) -> None:
    project = tomllib.loads(pyproject.read_text())["project"]
    outdir.mkdir(parents=True, exist_ok=True)
    for set_name, (extras, wanted) in SETS.items():
        deps = requirements(project, extras)
        chosen = [d for d in deps if wanted is None or _name(d) in wanted]
        (outdir / f"{set_name}.txt").write_text("\n".join(chosen) + "\n")


def unpack_protos(wheel: Path, site_packages: Path) -> None:
    """TensorFlow's generated message modules without TensorFlow: the service's gRPC stubs
    import `tensorflow.core.*_pb2` only, so ~1 MB stands in for the ~1.5 GB runtime."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.endswith("_pb2.py")]
        for name in names:
            archive.extract(name, site_packages)
    for name in names:
        parent = (site_packages / name).parent
        while parent != site_packages:
            (parent / "__init__.py").touch()
            parent = parent.parent


if __name__ == "__main__":
    command, first, second = sys.argv[1:4]
    if command == "sets":
        write_sets(Path(first), Path(second))
    elif command == "protos":
        unpack_protos(Path(first), Path(second))
    else:
        sys.exit(f"unknown command {command!r}; use `sets` or `protos`")
