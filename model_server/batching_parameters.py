"""TF Serving's `BatchingParameters`: the protobuf message, its text format, and its rules.

The message is built at import time from a descriptor with TF Serving's field names and
numbers (session_bundle_config.proto), so `batching_parameters.txt` files are parsed by
protobuf's own text_format exactly as `tensorflow_model_server` parses them, with no
code-generation step at install time. The tuner renders files through this module too,
so what it exports always parses back here.

This module must stay importable without TensorFlow: the tuner uses it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, text_format, wrappers_pb2
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

__all__ = [
    "BatchingConfigError",
    "BatchingParameters",
    "BatchingParametersProto",
    "load_file",
    "parse_text",
    "render",
    "round_to_allowed_batch_size",
]

_INT64 = ".google.protobuf.Int64Value"
_STRING = ".google.protobuf.StringValue"
_BOOL = ".google.protobuf.BoolValue"

# (name, number, label, type, type_name) as in tensorflow_serving's session_bundle_config.proto.
_FIELDS = (
    ("max_batch_size", 1, "optional", "message", _INT64),
    ("batch_timeout_micros", 2, "optional", "message", _INT64),
    ("max_enqueued_batches", 3, "optional", "message", _INT64),
    ("num_batch_threads", 4, "optional", "message", _INT64),
    ("thread_pool_name", 5, "optional", "message", _STRING),
    ("allowed_batch_sizes", 6, "repeated", "int64", None),
    ("pad_variable_length_inputs", 7, "optional", "bool", None),
    ("enable_large_batch_splitting", 8, "optional", "message", _BOOL),
    ("max_execution_batch_size", 9, "optional", "message", _INT64),
)


def _build_message_class() -> type[Message]:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="tuner_compat/tensorflow_serving/batching_parameters.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    msg = fdp.message_type.add(name="BatchingParameters")
    for name, number, label, ftype, type_name in _FIELDS:
        field = msg.field.add(
            name=name,
            number=number,
            label=getattr(descriptor_pb2.FieldDescriptorProto, f"LABEL_{label.upper()}"),
            type=getattr(descriptor_pb2.FieldDescriptorProto, f"TYPE_{ftype.upper()}"),
        )
        if type_name:
            field.type_name = type_name
    # A private pool: TensorFlow or tensorflow-serving-api may register their own copy of
    # tensorflow.serving.* in the default pool, and the two must not collide.
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(fdp)
    return GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


BatchingParametersProto: type[Message] = _build_message_class()


class BatchingConfigError(ValueError):
    """A batching file or parameter set that TF Serving would refuse; the message says why."""


def default_num_batch_threads() -> int:
    """TF Serving's default: one batch thread per schedulable core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class BatchingParameters:
    """Validated batching parameters; `None` means "unset, use TF Serving's default".

    Defaults follow TF Serving's BatchingSession / SharedBatchScheduler options:
    max_batch_size 1000, batch_timeout_micros 0, max_enqueued_batches 10,
    num_batch_threads = number of cores.
    """

    max_batch_size: int | None = None
    batch_timeout_micros: int | None = None
    max_enqueued_batches: int | None = None
    num_batch_threads: int | None = None
    thread_pool_name: str | None = None
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    enable_large_batch_splitting: bool | None = None
    max_execution_batch_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_batch_sizes", tuple(self.allowed_batch_sizes))
        _validate(self)

    # Effective values, i.e. what the server actually runs with.
    @property
    def effective_max_batch_size(self) -> int:
        return 1000 if self.max_batch_size is None else self.max_batch_size

    @property
    def effective_batch_timeout_micros(self) -> int:
        return 0 if self.batch_timeout_micros is None else self.batch_timeout_micros

    @property
    def effective_max_enqueued_batches(self) -> int:
        """10 when unset; 0 runs as 1 without splitting (SharedBatchScheduler::AddQueue)."""
        if self.max_enqueued_batches is None:
            return 10
        return max(1, self.max_enqueued_batches)

    @property
    def effective_num_batch_threads(self) -> int:
        if self.num_batch_threads is None:
            return default_num_batch_threads()
        return self.num_batch_threads

    @property
    def large_batch_splitting(self) -> bool:
        return bool(self.enable_large_batch_splitting)

    @property
    def effective_max_execution_batch_size(self) -> int:
        """Largest batch that executes at once; below max_batch_size only with splitting."""
        if self.large_batch_splitting and self.max_execution_batch_size is not None:
            return self.max_execution_batch_size
        return self.effective_max_batch_size

    def to_proto(self) -> Message:
        proto = BatchingParametersProto()
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "allowed_batch_sizes":
                proto.allowed_batch_sizes.extend(value)
            elif field.name == "pad_variable_length_inputs":
                proto.pad_variable_length_inputs = value
            elif value is not None:
                getattr(proto, field.name).value = value
        return proto

    @classmethod
    def from_proto(cls, proto: Message) -> BatchingParameters:
        kwargs: dict[str, object] = {
            "allowed_batch_sizes": tuple(proto.allowed_batch_sizes),
            "pad_variable_length_inputs": proto.pad_variable_length_inputs,
        }
        for name, _number, _label, ftype, _type_name in _FIELDS:
            if ftype == "message" and proto.HasField(name):
                kwargs[name] = getattr(proto, name).value
        return cls(**kwargs)  # type: ignore[arg-type]


def _validate(p: BatchingParameters) -> None:
    """TF Serving 2.19's rules for a batching file on the model-server path, one sentence each.

    Sources (tensorflow/serving 2.19.0 and the TF it builds with):
    servables/tensorflow/bundle_factory_util.{h,cc} (GetQueueOptions, WrapSessionForBatching)
    and tensorflow/core/kernels/batching_util/shared_batch_scheduler.h (Create, AddQueue,
    AddQueueAfterRewritingOptions). TF checks these when the scheduler is created or the
    model loads; the server exits either way, so checking them up front changes only when.
    The few checks TF does not make are marked "stricter" in their message.
    """
    # SharedBatchScheduler::Create: "num_batch_threads must be positive".
    if p.num_batch_threads is not None and p.num_batch_threads < 1:
        raise BatchingConfigError(
            f"num_batch_threads must be positive, got {p.num_batch_threads} "
            "(TF Serving refuses it when it creates the batch scheduler)"
        )
    # AddQueueAfterRewritingOptions: "input_batch_size_limit must be positive" (== 0).
    if p.max_batch_size is not None and p.max_batch_size == 0:
        raise BatchingConfigError(
            "max_batch_size must be positive, got 0 (TF Serving fails the model load)"
        )
    if p.max_batch_size is not None and p.max_batch_size < 0:
        raise BatchingConfigError(
            f"max_batch_size must be positive, got {p.max_batch_size} (stricter than TF "
            "Serving, which only refuses 0 and compares a negative limit as unsigned)"
        )
    # AddQueueAfterRewritingOptions: "batch_timeout_micros must be non-negative".
    if p.batch_timeout_micros is not None and p.batch_timeout_micros < 0:
        raise BatchingConfigError(
            f"batch_timeout_micros must be >= 0, got {p.batch_timeout_micros} "
            "(TF Serving fails the model load)"
        )
    # AddQueue rewrites max_enqueued_batches 0 to 1 without splitting; with splitting,
    # AddQueueAfterRewritingOptions refuses it: "max_enqueued_batches must be positive".
    enqueued = p.max_enqueued_batches
    if enqueued is not None and enqueued == 0 and p.large_batch_splitting:
        raise BatchingConfigError(
            "max_enqueued_batches must be positive with enable_large_batch_splitting, got 0 "
            "(TF Serving fails the model load; without splitting it would run 0 as 1)"
        )
    if enqueued is not None and enqueued < 0:
        raise BatchingConfigError(
            f"max_enqueued_batches must be >= 0, got {enqueued} (stricter than TF Serving, "
            "which compares it as unsigned: a negative value would mean an unbounded queue)"
        )
    if p.large_batch_splitting:
        # GetQueueOptions: max_execution_batch_size defaults to max_batch_size().value(),
        # which is 0 when max_batch_size is unset: no batch could ever execute.
        if p.max_execution_batch_size is None and p.max_batch_size is None:
            raise BatchingConfigError(
                "enable_large_batch_splitting needs max_batch_size or max_execution_batch_size "
                "(stricter than TF Serving, which would take an execution size of 0 from the "
                "unset max_batch_size and then fail every request)"
            )
        execution = p.effective_max_execution_batch_size
        if execution < 1:
            raise BatchingConfigError(
                f"max_execution_batch_size must be positive, got {execution} (stricter than "
                "TF Serving, which would load it and then fail every request)"
            )
        # AddQueueAfterRewritingOptions: "When enable_large_batch_splitting is true,
        # input_batch_size_limit must be greater than or equal to max_execution_batch_size."
        if execution > p.effective_max_batch_size:
            raise BatchingConfigError(
                f"max_execution_batch_size ({execution}) must not exceed max_batch_size "
                f"({p.effective_max_batch_size}) with enable_large_batch_splitting "
                "(TF Serving fails the model load)"
            )
    # WrapSessionForBatching: the last allowed size must equal max_batch_size (1000 when
    # unset), with or without splitting; TF checks nothing else about the list.
    sizes = p.allowed_batch_sizes
    if sizes and sizes[-1] != p.effective_max_batch_size:
        raise BatchingConfigError(
            f"the last entry of allowed_batch_sizes ({sizes[-1]}) must equal max_batch_size "
            f'({p.effective_max_batch_size}) (TF Serving fails the model load: "Last entry '
            'in allowed_batch_sizes must match max_batch_size")'
        )


def round_to_allowed_batch_size(allowed: tuple[int, ...], size: int) -> int:
    """batching_util.cc's RoundToLowestAllowedBatchSize: the first entry (in the file's
    order) that is >= size, or size itself when none is (TF then logs and runs as is)."""
    for candidate in allowed:
        if candidate >= size:
            return candidate
    return size


def parse_text(text: str, source: str = "<string>") -> BatchingParameters:
    """Parse protobuf text format; errors name the source, the line and the rule."""
    proto = BatchingParametersProto()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        line = f", line {exc.GetLine()}" if exc.GetLine() else ""
        detail = str(exc)
        # ParseError's text starts with "line:col : "; keep only the reason.
        if " : " in detail:
            detail = detail.split(" : ", 1)[1]
        raise BatchingConfigError(
            f"{source}{line}: not a valid BatchingParameters text proto: {detail}"
        ) from None
    try:
        return BatchingParameters.from_proto(proto)
    except BatchingConfigError as exc:
        raise BatchingConfigError(f"{source}: {exc}") from None


def load_file(path: str | os.PathLike[str]) -> BatchingParameters:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BatchingConfigError(
            f"cannot read batching parameters file {path}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise BatchingConfigError(f"{path}: not a UTF-8 text file") from None
    return parse_text(text, source=str(path))


def render(params: BatchingParameters) -> str:
    """TF Serving's documented style, one field per line, ready for --batching_parameters_file.

    Written by hand rather than with text_format.MessageToString, which drops an explicit
    `value: 0` (proto3 omits default scalars) and leaves `batch_timeout_micros {}`: valid,
    but a reader of the exported file should see the 0.
    """
    lines = []
    for name, _number, _label, ftype, _type_name in _FIELDS:
        value = getattr(params, name)
        if name == "allowed_batch_sizes":
            lines.extend(f"allowed_batch_sizes: {size}" for size in value)
        elif name == "pad_variable_length_inputs":
            if value:
                lines.append("pad_variable_length_inputs: true")
        elif value is not None and ftype == "message":
            lines.append(f"{name} {{ value: {_text_scalar(value)} }}")
    text = "\n".join(lines) + "\n" if lines else ""
    if parse_text(text, source="rendered batching parameters") != params:
        raise AssertionError(f"rendering {params} does not parse back")
    return text


def _text_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return text_format.MessageToString(
            wrappers_pb2.StringValue(value=value), as_one_line=True
        ).split(": ", 1)[1]
    return str(value)
