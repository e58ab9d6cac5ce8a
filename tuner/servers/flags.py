"""The TF Serving command-line flags every backend passes, and the files they point at.

Pure functions, so tests compare command lines exactly. The embedded server accepts the
same flags as `tensorflow_model_server`, so one construction serves all backends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath

from model_server.batching_parameters import BatchingParameters, render
from model_server.binary_flags import TF_SERVING_FLAGS, TF_SERVING_VERSION, closest_flag
from tuner.servers.base import ServerConfigError, check_flag_names
from tuner.servers.defaults import METRICS_PATH

BATCHING_FILE = "batching_parameters.txt"
MONITORING_FILE = "monitoring_config.txt"
MONITORING_CONFIG = f'prometheus_config {{\n  enable: true\n  path: "{METRICS_PATH}"\n}}\n'

# The real binary's traps: it retries a failed model load for minutes unless told not to,
# and its gRPC port uses SO_REUSEPORT, so a second server would bind silently beside a
# stale one.
TRAP_FLAGS = {
    "max_num_load_retries": "0",
    "grpc_channel_arguments": "grpc.so_reuseport=0",
}
BINARY_MANAGED_FLAGS = frozenset({*TRAP_FLAGS, "monitoring_config_file"})


def unknown_flag_message(flags: Mapping[str, str], source: str) -> str | None:
    """One sentence naming the first flag `tensorflow_model_server` does not have, or None.

    The binary prints an unknown flag and runs without it (main.cc), so a typo in
    server.extra_flags would silently tune a different server than the user meant.
    """
    known = set(TF_SERVING_FLAGS)
    for name in flags:
        if name in known:
            continue
        guess = closest_flag(name)
        hint = f"did you mean {guess}?" if guess else "see `tensorflow_model_server --help`"
        return (
            f"{source} sets {name!r}, which is not a flag of tensorflow_model_server "
            f"{TF_SERVING_VERSION} (the binary would ignore it); {hint}"
        )
    return None


def check_known_flags(flags: Mapping[str, str], source: str) -> None:
    """ServerConfigError for a flag the real binary does not have."""
    message = unknown_flag_message(flags, source)
    if message is not None:
        raise ServerConfigError(message)


def write_batching_file(workdir: Path, batching: BatchingParameters | None) -> Path | None:
    """workdir/batching_parameters.txt in TF Serving's text format, or None without batching."""
    path = workdir / BATCHING_FILE
    if batching is None:
        path.unlink(missing_ok=True)
        return None
    path.write_text(render(batching))
    return path


def write_monitoring_config(workdir: Path) -> Path:
    """The MonitoringConfig that makes TF Serving serve Prometheus metrics on its REST port."""
    path = workdir / MONITORING_FILE
    path.write_text(MONITORING_CONFIG)
    return path


def as_flags(flags: Mapping[str, str]) -> list[str]:
    return [f"--{name}={value}" for name, value in flags.items()]


def model_server_flags(
    *,
    grpc_port: int,
    rest_port: int,
    model_name: str,
    model_base_path: PurePath | str,
    batching_file: PurePath | str | None,
    server_flags: Mapping[str, str],
    extra_flags: Mapping[str, str],
    backend_flags: Sequence[str] = (),
) -> list[str]:
    """The flags `tensorflow_model_server` and `python -m model_server` both take.

    Order: the flags the tuner manages, `backend_flags`, the search space's server flags,
    the user's extra flags. The last two may not overlap (one would silently be ignored).
    """
    check_flag_names(server_flags, "the search space's server flags")
    check_known_flags(server_flags, "the search space's server flags")
    check_known_flags(extra_flags, "server.extra_flags")
    overlap = sorted(set(server_flags) & set(extra_flags))
    if overlap:
        raise ServerConfigError(
            f"--{overlap[0]} is both tuned by the search space and fixed in "
            "server.extra_flags; remove it from one of them"
        )
    args = [
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        f"--model_name={model_name}",
        f"--model_base_path={model_base_path}",
    ]
    if batching_file is not None:
        args += ["--enable_batching", f"--batching_parameters_file={batching_file}"]
    return [*args, *backend_flags, *as_flags(server_flags), *as_flags(extra_flags)]


def binary_trap_flags(
    monitoring_file: PurePath | str,
    server_flags: Mapping[str, str],
    extra_flags: Mapping[str, str],
) -> list[str]:
    """The flags that defuse the real binary's traps and turn its metrics on."""
    for source, flags in (("the search space", server_flags), ("server.extra_flags", extra_flags)):
        clash = sorted(set(flags) & BINARY_MANAGED_FLAGS)
        if clash:
            raise ServerConfigError(
                f"{source} sets --{clash[0]}, which the tuner sets for tensorflow_model_server; "
                "remove it"
            )
    return [*as_flags(TRAP_FLAGS), f"--monitoring_config_file={monitoring_file}"]
