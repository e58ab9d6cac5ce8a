"""The gRPC client of TF Serving's PredictionService and ModelService (grpc.aio).

One channel per process, opened and closed by the app's lifespan. The tuner restarts the model
server between trials on the same address, so the channel must neither hang while the server
is down nor need a restart afterwards:
- every call has a deadline and `wait_for_ready=False`, so a call on a broken channel fails
  at once with UNAVAILABLE (-> 503) instead of queueing until the deadline;
- reconnect backoff is capped at 1 s (gRPC's default grows to 120 s), so the channel finds
  the restarted server within about a second, by itself.

The protos come from model_server/protos.py, which loads them without TensorFlow itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import numpy as np

from model_server.protos import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    types_pb2,
)
from service import errors

CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Bodies are capped at 64 KiB by default, but a generous limit costs nothing.
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
)

_FLOAT_DTYPES = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
}
_AVAILABLE = get_model_status_pb2.ModelVersionStatus.State.Name(
    get_model_status_pb2.ModelVersionStatus.AVAILABLE
)


@dataclass(frozen=True)
class Inference:
    probabilities: np.ndarray  # (n, classes) float
    model_version: int


@dataclass(frozen=True)
class ModelStatus:
    state: str  # "AVAILABLE", "LOADING", ... of the newest version
    version: int | None

    @property
    def available(self) -> bool:
        return self.state == _AVAILABLE


class ModelClient:
    """Calls one model's signature; converts every gRPC failure into a ServiceError."""

    def __init__(
        self,
        target: str,
        model_name: str,
        *,
        deadline_s: float,
        signature_name: str = "serving_default",
        input_name: str = "tokens",
        output_name: str = "probabilities",
    ) -> None:
        self.target = target
        self.model_name = model_name
        self.signature_name = signature_name
        self.input_name = input_name
        self.output_name = output_name
        self.deadline_s = deadline_s
        self._channel: grpc.aio.Channel | None = None
        self._predict = None
        self._status = None
        self._metadata = None

    async def open(self) -> None:
        """Create the channel (needs the running event loop) and start connecting."""
        self._channel = grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel).Predict
        self._status = model_service_pb2_grpc.ModelServiceStub(self._channel).GetModelStatus
        self._metadata = prediction_service_pb2_grpc.PredictionServiceStub(
            self._channel
        ).GetModelMetadata
        # Connect in the background so the first request does not pay for the handshake.
        self._channel.get_state(try_to_connect=True)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(grace=1.0)
            self._channel = None

    def build_request(self, tokens: np.ndarray) -> predict_pb2.PredictRequest:
        """A PredictRequest carrying `tokens` as raw little-endian bytes (no per-value copy)."""
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = self.signature_name
        tensor = request.inputs[self.input_name]
        tensor.dtype = types_pb2.DT_INT32
        dims = tensor.tensor_shape.dim
        for size in tokens.shape:
            dims.add().size = size
        tensor.tensor_content = np.ascontiguousarray(tokens, dtype="<i4").tobytes()
        return request

    async def predict(self, tokens: np.ndarray) -> Inference:
        if self._predict is None:
            raise errors.ModelServerUnavailable("The service is shutting down; retry shortly.")
        request = self.build_request(tokens)
        try:
            response = await self._predict(request, timeout=self.deadline_s, wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            raise self.error_from_rpc(exc) from None
        return Inference(
            self.read_output(response, tokens.shape[0]), response.model_spec.version.value
        )

    async def send(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        """A client's own PredictRequest: an INVALID_ARGUMENT is the client's 400 and a
        NOT_FOUND its 404 (TF Serving's REST statuses for them) with the server's words; other
        failures as `error_from_rpc`."""
        if self._predict is None:
            raise errors.ModelServerUnavailable("The service is shutting down; retry shortly.")
        try:
            return await self._predict(request, timeout=self.deadline_s, wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise errors.InvalidInput(
                    f"The model server rejected the input: {(exc.details() or '').strip()}",
                    cause=f"INVALID_ARGUMENT: {(exc.details() or '')[:300]}",
                ) from None
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                version = request.model_spec.version.value
                raise self.servable_not_found(exc, version or None) from None
            raise self.error_from_rpc(exc) from None

    async def signature_defs(
        self, version: int | None
    ) -> tuple[int, get_model_metadata_pb2.SignatureDefMap]:
        """The model version and its SignatureDefs, from GetModelMetadata; a version or model
        the server does not serve is the client's 404, as `send`."""
        if self._metadata is None:
            raise errors.ModelServerUnavailable("The service is shutting down; retry shortly.")
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = self.model_name
        if version is not None:
            request.model_spec.version.value = version
        request.metadata_field.append("signature_def")
        try:
            response = await self._metadata(request, timeout=self.deadline_s, wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise self.servable_not_found(exc, version) from None
            raise self.error_from_rpc(exc) from None
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return response.model_spec.version.value, signature_map

    async def model_status(self, timeout_s: float) -> ModelStatus:
        if self._status is None:
            raise errors.ModelServerUnavailable("The service is shutting down; retry shortly.")
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.model_name
        try:
            response = await self._status(request, timeout=timeout_s, wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            raise self.error_from_rpc(exc) from None
        if not response.model_version_status:
            return ModelStatus("NO_VERSIONS", None)
        newest = max(response.model_version_status, key=lambda s: s.version)
        state = get_model_status_pb2.ModelVersionStatus.State.Name(newest.state)
        return ModelStatus(state, newest.version)

    def read_output(self, response: predict_pb2.PredictResponse, rows: int) -> np.ndarray:
        """The output tensor as an (rows, classes) array, read straight from its bytes."""
        if self.output_name not in response.outputs:
            raise errors.ModelServerError(
                f"The model server's response has no output {self.output_name!r}; "
                "check that the model's signature matches this service.",
                cause=f"outputs={sorted(response.outputs)}",
            )
        tensor = response.outputs[self.output_name]
        if tensor.dtype not in _FLOAT_DTYPES:
            raise errors.ModelServerError(
                f"The model server returned {self.output_name!r} as dtype {tensor.dtype}, "
                "not float; check that the model's signature matches this service."
            )
        dtype, field = _FLOAT_DTYPES[tensor.dtype]
        shape = tuple(d.size for d in tensor.tensor_shape.dim)
        if tensor.tensor_content:
            values = np.frombuffer(tensor.tensor_content, dtype=np.dtype(dtype).newbyteorder("<"))
        else:
            values = np.asarray(getattr(tensor, field), dtype=dtype)
        if len(shape) != 2 or shape[0] != rows or values.size != shape[0] * shape[1]:
            raise errors.ModelServerError(
                f"The model server returned {self.output_name!r} with shape {list(shape)} for "
                f"{rows} input(s); check that the model's signature matches this service.",
                cause=f"values={values.size}",
            )
        return values.reshape(shape)

    def servable_not_found(self, exc: grpc.aio.AioRpcError, version: int | None) -> errors.NotFound:
        """The 404 of a request naming a version (or model) the server does not serve, with
        TF Serving's own words ("Servable not found for request: Specific(NAME, N)", from
        ServableRequest::DebugString in tensorflow_serving/core/manager.h, returned NOT_FOUND
        by BasicManager::ServingMap::GetUntypedServableHandle in core/basic_manager.cc, which
        http_rest_api_util maps to 404)."""
        details = (exc.details() or "").strip()
        if version is not None:
            message = (
                f"The model server does not serve version {version} of model "
                f"{self.model_name!r} ({details}); send to "
                f"/v1/models/{self.model_name}:predict for the version it serves."
            )
        else:
            message = (
                f"The model server does not serve model {self.model_name!r} ({details}); "
                "start the service with the --model-name the model server serves."
            )
        return errors.NotFound(message, cause=f"NOT_FOUND: {details[:300]}")

    def error_from_rpc(self, exc: grpc.aio.AioRpcError) -> errors.ServiceError:
        """The service error (and so HTTP status and code) for a failed gRPC call."""
        code = exc.code()
        details = (exc.details() or "").strip()
        cause = f"{code.name}: {details[:300]}"
        lowered = details.lower()
        if code == grpc.StatusCode.UNAVAILABLE and "queue" in lowered and "full" in lowered:
            return errors.ModelServerOverloaded(
                "The model server's batch queue is full; retry shortly or send fewer requests.",
                cause=cause,
            )
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return errors.ModelServerOverloaded(
                "The model server is out of capacity; retry shortly or send fewer requests.",
                cause=cause,
            )
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            return errors.ModelServerUnavailable(
                f"The model server at {self.target} is unavailable; retry in a moment.",
                cause=cause,
            )
        if code == grpc.StatusCode.NOT_FOUND:
            # TF Serving answers NOT_FOUND while a restarted server is still loading the model.
            return errors.ModelServerUnavailable(
                f"The model server does not serve model {self.model_name!r} right now; "
                "retry in a moment, and check --model-name if this persists.",
                cause=cause,
            )
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return errors.DeadlineExceeded(
                f"The model server did not answer within {self.deadline_s * 1000:g} ms; "
                "retry later or raise --deadline-ms.",
                cause=cause,
            )
        return errors.ModelServerError(
            f"The model server failed the request ({code.name}); see its log for the cause.",
            cause=cause,
        )
