"""`POST /v1/models/NAME[/versions/N]:predict`: TF Serving's REST body for any model, sent on
as a gRPC PredictRequest built from the model's own signature.

The signature comes from GetModelMetadata, read once per model version and read again when a
response reports another version than the one cached (the tuner restarts the model server
between trials; a new model version may change the signature). Bodies are read, converted
and checked by `model_server.rest_json` and `model_server.signature_spec`, the code the model
server's REST API runs, so a mistake is worded as TF Serving's REST API words it, before any
gRPC call: a 400 with one sentence naming the input and the expected and received dtype or
shape. Answers are TF Serving's: `predictions` (row form) or `outputs` (columnar).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import TypeVar

import grpc
import orjson
from starlette.requests import Request
from starlette.responses import Response

from model_server import tensors
from model_server.errors import ServingError
from model_server.protos import predict_pb2
from model_server.rest_json import PredictBody, parse_body
from model_server.signature_spec import SignatureSpec, signature_spec
from service import errors
from service.client import ModelClient
from service.middleware import ERROR_KEY, TIMINGS_KEY
from service.payload import read_body

T = TypeVar("T")
_TARGET = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?:(?P<verb>[A-Za-z]+)$")


@dataclass
class _Signatures:
    version: int
    specs: dict[str, SignatureSpec]


class GenericPredictor:
    """The endpoint and its cache of signatures (latest version, and pinned versions)."""

    def __init__(self, client: ModelClient, default_signature: str, max_body_bytes: int) -> None:
        self.client = client
        self.default_signature = default_signature
        self.max_body_bytes = max_body_bytes
        self._latest: _Signatures | None = None
        self._pinned: dict[int, _Signatures] = {}
        self._reading = asyncio.Lock()

    async def signatures(self, version: int | None) -> _Signatures:
        cached = self._cached(version)
        if cached is not None:
            return cached
        async with self._reading:  # after a restart, one read for all the waiting requests
            cached = self._cached(version)
            if cached is not None:
                return cached
            served, signature_map = await self.client.signature_defs(version)
            fresh = _Signatures(
                served,
                {
                    key: signature_spec(key, sig)
                    for key, sig in signature_map.signature_def.items()
                    if not key.startswith("__")
                },
            )
            if version is None:
                self._latest = fresh
            else:
                self._pinned[version] = fresh
            return fresh

    def _cached(self, version: int | None) -> _Signatures | None:
        return self._latest if version is None else self._pinned.get(version)

    def forget(self, version: int | None) -> None:
        """Drop a cached signature so the next request reads it again."""
        if version is None:
            self._latest = None
        else:
            self._pinned.pop(version, None)

    async def predict(self, request: Request) -> Response:
        timings = request.scope[TIMINGS_KEY]
        started = perf_counter()
        try:
            name, version = self.target(request.path_params["target"])
            raw = await read_body(request, self.max_body_bytes)
            body = _checked(lambda: parse_body(raw))
            cached, signature_name, inputs = await self.convert(body, version)
            body = body.without_data()  # not held while the inference is awaited
            timings.texts = _rows(inputs)
            grpc_request = self.build_request(name, version, signature_name, inputs)
            sent = perf_counter()
            timings.preprocess = sent - started
            try:
                response = await self.client.send(grpc_request)
            except (errors.ModelServerUnavailable, errors.InvalidInput, errors.NotFound):
                self.forget(version)  # a restarted server may serve another version
                raise
            finally:
                received = perf_counter()
                timings.inference = received - sent
            if response.model_spec.version.value != cached.version:
                self.forget(version)
            rendered = self.render(body, response)
            timings.postprocess = perf_counter() - received
            return rendered
        except errors.ServiceError as exc:
            request.scope[ERROR_KEY] = exc
            return exc.response()

    async def convert(
        self, body: PredictBody, version: int | None
    ) -> tuple[_Signatures, str, dict]:
        """The body as checked tensors. A body the cached signature rejects is checked once
        more against a fresh read: the server may have loaded a version with another one."""
        for fresh in (False, True):
            if fresh:
                self.forget(version)
            cached = await self.signatures(version)
            signature_name = body.signature_name or self.default_signature
            try:
                spec = cached.specs.get(signature_name)
                if spec is None:
                    raise errors.InvalidInput(
                        f"The model has no signature {signature_name!r}; "
                        f"use one of {sorted(cached.specs)}.",
                        field="signature_name",
                    )
                return cached, signature_name, _checked(partial(_tensors, body, spec))
            except errors.InvalidInput:
                if fresh:
                    raise
        raise AssertionError("unreachable")

    def target(self, target: str) -> tuple[str, int | None]:
        match = _TARGET.match(target)
        if match is None or match["verb"] != "predict":
            raise errors.NotFound(
                f"There is no /v1/models/{target}; use POST /v1/models/NAME:predict "
                "or /v1/models/NAME/versions/N:predict."
            )
        if match["name"] != self.client.model_name:
            raise errors.NotFound(
                f"This service serves model {self.client.model_name!r}, not "
                f"{match['name']!r}; use POST /v1/models/{self.client.model_name}:predict."
            )
        return match["name"], int(match["version"]) if match["version"] else None

    def build_request(
        self, name: str, version: int | None, signature_name: str, inputs: dict
    ) -> predict_pb2.PredictRequest:
        grpc_request = predict_pb2.PredictRequest()
        grpc_request.model_spec.name = name
        grpc_request.model_spec.signature_name = signature_name
        if version is not None:
            grpc_request.model_spec.version.value = version
        for key, value in inputs.items():
            grpc_request.inputs[key].CopyFrom(tensors.to_proto(value))
        return grpc_request

    def render(self, body: PredictBody, response: predict_pb2.PredictResponse) -> Response:
        try:
            outputs = {k: tensors.to_numpy(t, k) for k, t in response.outputs.items()}
        except ServingError as exc:
            raise errors.ModelServerError(
                f"The model server's response could not be read: {exc.message}"
            ) from None
        return Response(
            orjson.dumps(body.render(outputs), option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
        )


def _checked(convert: Callable[[], T]) -> T:
    """A conversion's result, or its INVALID_ARGUMENT as the service's 400."""
    try:
        return convert()
    except ServingError as exc:
        if exc.code != grpc.StatusCode.INVALID_ARGUMENT:
            raise errors.ModelServerError(exc.message) from None
        message = exc.message[0].upper() + exc.message[1:]
        raise errors.InvalidInput(message if message.endswith(".") else f"{message}.") from None


def _tensors(body: PredictBody, spec: SignatureSpec) -> dict:
    return spec.check(body.inputs(spec))


def _rows(inputs: dict) -> int | None:
    first = next(iter(inputs.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else None
