"""Waiting for a model server to report the model AVAILABLE over gRPC.

TF Serving 2.19 loads the model before it opens its ports (model_servers/server.cc: the
gRPC server is built after ServerCore::Create has loaded the model), so while a live server
does not answer it is *loading*, not down; once it answers, only ModelService/GetModelStatus
saying AVAILABLE counts. The tuner's backends and the tests share this one poll loop.

The messages are declared here with TF Serving's names and numbers (model.proto,
get_model_status.proto), only the fields read: tensorflow-serving-api's generated modules
import TensorFlow, which would cost the tuner process seconds, memory and a screen of logs.
"""

from __future__ import annotations

import subprocess
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message_factory import GetMessageClass

GET_MODEL_STATUS = "/tensorflow.serving.ModelService/GetModelStatus"
# The channel is opened before the server listens; gRPC's default reconnect backoff (1 s,
# growing) would then see AVAILABLE about 2 s late on every trial.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
)
_STATES = {0: "UNKNOWN", 10: "START", 20: "LOADING", 30: "AVAILABLE", 40: "UNLOADING", 50: "END"}


def _messages() -> tuple[type, type]:
    f = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(
        name="tuner_compat/tensorflow_serving/model_status.proto",
        package="tensorflow.serving",
        syntax="proto3",
    )
    spec = fdp.message_type.add(name="ModelSpec")
    spec.field.add(name="name", number=1, label=f.LABEL_OPTIONAL, type=f.TYPE_STRING)
    request = fdp.message_type.add(name="GetModelStatusRequest")
    request.field.add(
        name="model_spec",
        number=1,
        label=f.LABEL_OPTIONAL,
        type=f.TYPE_MESSAGE,
        type_name=".tensorflow.serving.ModelSpec",
    )
    status = fdp.message_type.add(name="ModelVersionStatus")
    status.field.add(name="version", number=1, label=f.LABEL_OPTIONAL, type=f.TYPE_INT64)
    status.field.add(name="state", number=2, label=f.LABEL_OPTIONAL, type=f.TYPE_INT32)
    response = fdp.message_type.add(name="GetModelStatusResponse")
    response.field.add(
        name="model_version_status",
        number=1,
        label=f.LABEL_REPEATED,
        type=f.TYPE_MESSAGE,
        type_name=".tensorflow.serving.ModelVersionStatus",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return (
        GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.GetModelStatusRequest")),
        GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.GetModelStatusResponse")),
    )


GetModelStatusRequest, GetModelStatusResponse = _messages()


class ServerNotReadyError(RuntimeError):
    """The model server did not become ready; subclasses say how."""


class ServerExitedError(ServerNotReadyError):
    def __init__(self, exit_code: int | None) -> None:
        super().__init__(f"the model server exited with code {exit_code} before it was ready")
        self.exit_code = exit_code


LOADING_NOT_LISTENING = "LOADING (ports not open yet: TF Serving opens them once the model loaded)"


class NeverReadyError(ServerNotReadyError):
    def __init__(self, timeout: float, last_state: str) -> None:
        if last_state == LOADING_NOT_LISTENING:
            text = f"the model server was still loading the model after {timeout:g} s"
        else:
            text = f"the model server was not AVAILABLE after {timeout:g} s"
        super().__init__(f"{text} (last state: {last_state})")
        self.timeout = timeout
        self.last_state = last_state


def model_state(
    channel: grpc.Channel, model_name: str, timeout: float = 2.0, *, wait_for_ready: bool = False
) -> str:
    """The state of the newest version of the model, or a description of why it is unknown.

    Without `wait_for_ready` a call on a channel that is not connected fails at once with
    UNAVAILABLE, which is what a poll wants before the server listens. A server known to be
    listening is asked with it: a connection attempt that failed once (a loaded machine, a
    reconnect) is then tried again until `timeout`, so only a server that really does not
    answer within it reads as not answering.
    """
    call = channel.unary_unary(
        GET_MODEL_STATUS,
        request_serializer=GetModelStatusRequest.SerializeToString,
        response_deserializer=GetModelStatusResponse.FromString,
    )
    request = GetModelStatusRequest()
    request.model_spec.name = model_name
    try:
        response = call(request, timeout=timeout, wait_for_ready=wait_for_ready)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNAVAILABLE and not wait_for_ready:
            return LOADING_NOT_LISTENING  # nothing listens (yet)
        details = exc.details()
        return f"{exc.code().name} ({details})" if details else exc.code().name
    if not response.model_version_status:
        return "NO_VERSIONS"
    newest = max(response.model_version_status, key=lambda s: s.version)
    return _STATES.get(newest.state, str(newest.state))


def wait_until_available(
    grpc_target: str,
    model_name: str,
    *,
    timeout: float,
    process: subprocess.Popen | None = None,
    poll_interval: float = 0.2,
) -> None:
    """Poll GetModelStatus until AVAILABLE; fail fast if `process` exits meanwhile.

    A server that does not answer yet counts as loading: the process check tells a dead
    one apart, so "not listening" never means "down" here.
    """
    deadline = time.monotonic() + timeout
    state = LOADING_NOT_LISTENING
    with grpc.insecure_channel(grpc_target, options=CHANNEL_OPTIONS) as channel:
        while True:
            if process is not None and process.poll() is not None:
                raise ServerExitedError(process.returncode)
            state = model_state(channel, model_name)
            if state == "AVAILABLE":
                return
            if time.monotonic() >= deadline:
                raise NeverReadyError(timeout, state)
            time.sleep(poll_interval)
