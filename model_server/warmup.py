"""Replaying a SavedModel's `assets.extra/tf_serving_warmup_requests` at load, as TF Serving does.

What TF Serving 2.19 does (tensorflow/serving, servables/tensorflow/saved_model_warmup_util.cc,
internal::RunSavedModelWarmup, and saved_model_warmup.cc, RunWarmupRequest), and so this does:
- no file: nothing to replay, the load goes on ("Having warmup data is optional");
- the file is a TFRecord of PredictionLog; every record is replayed
  `--num_request_iterations_for_warmup` times (default 1), in file order;
- predict_log, classify_log, regress_log and multi_inference_log are run; session_run_log is
  UNIMPLEMENTED ("Unsupported log_type for warmup"); a record with no log is skipped;
- more than kMaxNumRecords (1000) records is INVALID_ARGUMENT; a record that does not parse
  as a PredictionLog is INVALID_ARGUMENT ("Failed to parse warmup record"); a corrupt
  TFRecord is DATA_LOSS ("Please verify your warmup data is in TFRecord format.");
- any failing record fails the whole load (TF_RETURN_IF_ERROR): the model never becomes
  AVAILABLE.
This server runs Predict only, so classify/regress/multi-inference records fail the load
with UNIMPLEMENTED, as any request of those kinds does here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from google.protobuf.message import DecodeError

from model_server.model import LoadedModel, ModelLoadError
from model_server.signature_spec import DEFAULT_SIGNATURE
from model_server.tensors import to_numpy

log = logging.getLogger("model_server")

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # WarmupConsts::kMaxNumRecords (saved_model_warmup_util.h)


class WarmupError(ModelLoadError):
    """A warm-up record failed; the load fails with TF Serving's wording of why."""


def warmup_path(version_dir: Path) -> Path:
    return version_dir / WARMUP_FILE


def read_records(path: Path) -> Iterator[bytes]:
    """The raw records of a TFRecord file; DATA_LOSS wording when it is not one."""
    from model_server.tensorflow_runtime import DataLossError, TFRecordDataset

    try:
        for record in TFRecordDataset(str(path)).as_numpy_iterator():
            yield bytes(record)
    except DataLossError as exc:
        raise WarmupError(
            f"DATA_LOSS: {exc.message}. Please verify your warmup data is in TFRecord format."
        ) from None


def parse_record(record: bytes, path: Path):
    from tensorflow_serving.apis import prediction_log_pb2

    log_entry = prediction_log_pb2.PredictionLog()
    try:
        log_entry.ParseFromString(record)
    except DecodeError:
        raise WarmupError(
            f"INVALID_ARGUMENT: Failed to parse warmup record: {record[:40]!r} from {path}"
        ) from None
    return log_entry


def replay(model: LoadedModel, iterations: int = 1) -> int:
    """Run every record of the model's warm-up file `iterations` times; the records read."""
    path = warmup_path(model.path)
    if not path.is_file():
        log.info("event=warmup_skipped reason=no_file path=%s", path)
        return 0
    started = time.perf_counter()
    count = 0
    for record in read_records(path):
        entry = parse_record(record, path)
        for _ in range(iterations):
            _run(model, entry)
        count += 1
        if count > MAX_RECORDS:
            raise WarmupError(
                f"INVALID_ARGUMENT: Number of warmup records exceeds the maximum "
                f"({MAX_RECORDS}) at {path}"
            )
    log.info(
        "event=warmup_done path=%s records=%d elapsed_us=%d",
        path,
        count,
        (time.perf_counter() - started) * 1e6,
    )
    return count


def _run(model: LoadedModel, entry) -> None:
    kind = entry.WhichOneof("log_type")
    if kind is None:
        return
    if kind != "predict_log":
        code = "UNIMPLEMENTED"
        reason = (
            "Unsupported log_type for warmup: session_run_log"
            if kind == "session_run_log"
            else f"warm-up record of type {kind}: this server runs Predict only"
        )
        raise WarmupError(f"{code}: {reason}")
    request = entry.predict_log.request
    key = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = model.signatures.get(key)
    if signature is None:
        raise WarmupError(
            f"INVALID_ARGUMENT: warm-up request names signature {key!r}; the model has "
            f"{sorted(model.signatures)}"
        )
    try:
        inputs = {name: to_numpy(t, name) for name, t in request.inputs.items()}
        signature.run(signature.check(inputs))
    except Exception as exc:  # ServingError carries TF Serving's code and message
        code = getattr(getattr(exc, "code", None), "name", "INTERNAL")
        message = getattr(exc, "message", None) or str(exc)
        raise WarmupError(f"warm-up request failed: {code}: {message}") from None
