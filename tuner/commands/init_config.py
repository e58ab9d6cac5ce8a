"""`python -m tuner init --model DIR`: a commented tuner.toml for any SavedModel.

It inspects the model (its serving_default signature, inputs, outputs, whether every input
has a free batch dimension), measures one request's latency on the embedded model server
(a real `python -m model_server`, REST, on a warm server: warm_timing.py), and
writes a config that `python -m tuner optimize` runs with no edits: the model's own warm-up
file as requests when it has one (else single-row requests generated from the signature),
an SLO suggested from the measured latency, a capacity search sized from it, the quick space
and the `auto` backend.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from model_server.signature_spec import SignatureSpec
from model_server.tensors import dtype_name
from tuner.commands.warm_timing import (
    BATCHING_HEADROOM,
    START_SHARE,
    STEP_OVERHEAD_S,
    WarmTiming,
    search_budget,
    warm_median_ms,
)
from tuner.errors import ConfigError, TunerError
from tuner.measure.model_signature import check_batchable, generated_bodies, read_signature
from tuner.measure.request_source import MODEL_WARMUP, predict_path, warmup_bodies

SIGNATURE = "serving_default"
STEP_WARMUP_S = 1.0
STEP_MEASURE_S = 3.0
SLO_FACTOR = 5.0  # the SLO as a multiple of one request's latency (see suggested_slo_ms)
MIN_SLO_MS = 20.0


@dataclass(frozen=True)
class ModelSummary:
    base_path: Path
    name: str
    version: int
    signature: SignatureSpec
    has_warmup_file: bool

    def describe(self) -> list[str]:
        """One line per input and output: name, dtype, shape (-1 = any)."""
        lines = []
        for kind, specs in (("input", self.signature.inputs), ("output", self.signature.outputs)):
            for spec in specs.values():
                shape = "unknown rank" if spec.shape is None else list(spec.shape)
                lines.append(f"{kind} {spec.name}: {dtype_name(spec.dtype_code)} {shape}")
        return lines


def inspect_model(base_path: Path) -> ModelSummary:
    """The model's servable version and signature; ConfigError (exit 2) when there is none."""
    from model_server.preflight import servable_versions
    from model_server.warmup import warmup_path

    if not base_path.is_dir():
        raise ConfigError(f"{base_path} is not a directory; give the model's base path")
    try:
        versions = servable_versions(base_path)
    except OSError as exc:
        raise ConfigError(f"cannot read {base_path} ({exc.strerror})") from None
    if not versions:
        raise ConfigError(
            f"{base_path} has no version subdirectory holding saved_model.pb; TF Serving "
            f"serves BASE/<N>/, so move the SavedModel to {base_path / '1'}"
        )
    version_dir = base_path / str(versions[0])
    signature = read_signature(version_dir, SIGNATURE)
    check_batchable(base_path)
    return ModelSummary(
        base_path,
        base_path.resolve().name,
        versions[0],
        signature,
        warmup_path(version_dir).is_file(),
    )


def one_request_ms(summary: ModelSummary, timeout_s: float = 120.0) -> WarmTiming:
    """One request's latency on the warm embedded server (no batching)."""
    from tuner.process import free_port, spawn
    from tuner.servers.readiness import wait_until_available

    version_dir = summary.base_path / str(summary.version)
    bodies = (
        warmup_bodies(version_dir)
        if summary.has_warmup_file
        else generated_bodies(version_dir, rows=1)
    )
    grpc_port, rest_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="tuner-init-") as tmp:
        server = spawn(
            "server",
            [
                sys.executable,
                "-m",
                "model_server",
                f"--port={grpc_port}",
                f"--rest_api_port={rest_port}",
                f"--model_name={summary.name}",
                f"--model_base_path={summary.base_path.resolve()}",
            ],
            Path(tmp) / "server.log",
            fields="backend=embedded purpose=init",
        )
        try:
            try:
                wait_until_available(
                    f"127.0.0.1:{grpc_port}", summary.name, timeout=timeout_s, process=server.proc
                )
            except Exception as exc:
                last = server.log_tail(1).strip()
                raise ConfigError(
                    f"the embedded model server cannot serve {summary.base_path}: {last or exc}"
                ) from None
            url = f"http://127.0.0.1:{rest_port}{predict_path(summary.name)}"
            return _median_ms(url, bodies)
        finally:
            server.stop(10.0)


def _median_ms(url: str, bodies: list[bytes]) -> WarmTiming:
    """On one kept-alive connection, as the load generator sends."""
    import httpx

    with httpx.Client(timeout=30.0) as client:
        sent = 0

        def send() -> float:
            nonlocal sent
            started = time.perf_counter()
            response = client.post(
                url,
                content=bodies[sent % len(bodies)],
                headers={"Content-Type": "application/json"},
            )
            elapsed = (time.perf_counter() - started) * 1000.0
            sent += 1
            if response.status_code != 200:
                raise TunerError(
                    f"the model answered a request with {response.status_code}: "
                    f"{response.text[:200]}"
                )
            return elapsed

        return warm_median_ms(send)


def suggested_slo_ms(latency_ms: float) -> float:
    """A p95 SLO with room for batching: a request may wait for its batch to fill (up to
    batch_timeout_micros) and then for the batch ahead of it, each about one execution, and
    a loaded CPU runs each slower: about 5x one request's latency, rounded up to 5 ms."""
    return max(MIN_SLO_MS, 5.0 * -(-latency_ms * SLO_FACTOR // 5.0))


def render_config(
    summary: ModelSummary, timing: WarmTiming, out: Path, cores: int | None = None
) -> str:
    """The commented tuner.toml for this model."""
    latency_ms = timing.median_ms
    slo = suggested_slo_ms(latency_ms)
    cores = cores or os.cpu_count() or 1
    budget = search_budget(latency_ms, cores, STEP_WARMUP_S, STEP_MEASURE_S)
    try:
        model_path = summary.base_path.resolve().relative_to(out.resolve().parent)
    except ValueError:
        model_path = summary.base_path.resolve()
    if summary.has_warmup_file:
        source = (
            f'requests = "{MODEL_WARMUP}"          # the model\'s own '
            "assets.extra/tf_serving_warmup_requests\n"
        )
    else:
        source = (
            "generate_rows = 1                # requests generated from the signature, 1 row "
            "each\n"
            '# requests = "requests.jsonl"    # or your own: one TF Serving REST body per line\n'
        )
    signature = "\n".join(f"#   {line}" for line in summary.describe())
    return f"""\
# Written by `python -m tuner init --model {summary.base_path}`; `python -m tuner optimize`
# runs it as it is. The model, version {summary.version}, signature {SIGNATURE}:
{signature}
# One request took {latency_ms:.1f} ms on the embedded server, no batching, this machine:
# the {timing.describe()}.

[study]
name = "{summary.name}"
storage = "sqlite:///tuning.db"  # any SQLAlchemy URL; several tuner hosts can share PostgreSQL
n_trials = 8                     # the study's total, both reference points included
sampler = "tpe"
seed = 0

[objective]
# {SLO_FACTOR:g}x the single-request latency ({latency_ms:.1f} ms), rounded up: a batched
# request may wait for its batch to fill and for the batch ahead of it, and a loaded CPU
# runs each slower. Set your own service-level objective here if you have one.
slo_ms = {slo:g}
percentile = "p95"
max_error_rate = 0.01

[server]
backend = "auto"                 # auto | embedded | binary | docker
model_name = "{summary.name}"
model_base_path = "{model_path}"

[load]
mode = "capacity"                # each trial: the highest req/s within the SLO
target = "service"               # service | rest | grpc (straight to the model server)
{source}requests_order = "cycle"         # cycle | random
# Sized from the latency: served one at a time on {cores} core(s), about
# 1000 / {latency_ms:.1f} ms x {cores} = {budget.serial_rps:.0f} req/s. Batching can multiply that,
# so the search must be able to reach {BATCHING_HEADROOM:g}x it: it starts at 1/{1 / START_SHARE:g}
# of it and doubles while steps pass ({budget.doublings} doublings reach {BATCHING_HEADROOM:g}x),
# and max_steps leaves {budget.max_steps - budget.doublings} more to bisect the knee and check a
# low rate. Each step is {STEP_WARMUP_S:g} s of warm-up, {STEP_MEASURE_S:g} s measured and up to
# ~{STEP_OVERHEAD_S:g} s more (drain, an extended window): max_trial_s lets all of them run.
start_rps = {budget.start_rps:g}
min_rps = 5.0
max_rps = {budget.max_rps:g}
resolution = 0.1
max_steps = {budget.max_steps}
max_trial_s = {budget.max_trial_s:g}
step_warmup_s = {STEP_WARMUP_S:g}
step_measure_s = {STEP_MEASURE_S:g}

[search]
space = "quick"                  # cpu | gpu | quick, or the path of your own space file

[confirm]
top_k = 2
repeats = 1
"""


def write_config(
    model: Path, out: Path, force: bool = False
) -> tuple[Path, ModelSummary, WarmTiming]:
    """Inspect, measure, write; returns the file, the model and the measured latency."""
    if out.exists() and not force:
        raise ConfigError(f"{out} exists; pass --out with another file or --force to replace it")
    summary = inspect_model(model)
    timing = one_request_ms(summary)
    out.write_text(render_config(summary, timing, out))
    return out, summary, timing
