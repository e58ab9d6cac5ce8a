"""TF Serving's REST API: model status, metadata, predict (row and columnar), metrics.

Routes and JSON shapes follow TF Serving's RESTful API guide, so `curl` recipes written for
TF Serving work unchanged. Errors are `{"error": "..."}` with TF Serving's HTTP statuses.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from typing import Any

import numpy as np
import orjson
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model_server.errors import ServingError, invalid_argument
from model_server.grpc_api import model_status
from model_server.model import Signature
from model_server.servable import Servable, version_for_label
from model_server.tensors import dtype_name

_PATH = re.compile(
    r"^(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?::(?P<verb>[a-zA-Z]+)|/(?P<metadata>metadata))?$"
)
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
log = logging.getLogger("model_server")


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )


def _error(exc: ServingError) -> Response:
    return _json({"error": exc.message}, exc.http_status)


def _as_array(value: Any, name: str, signature: Signature) -> np.ndarray:
    """JSON values as the signature's dtype; like TF Serving, a float for an integer input
    (or anything for a bool one) is an error rather than a silent conversion."""
    spec = signature.inputs.get(name)
    if spec is None:
        raise invalid_argument(
            f"input {name!r} is not an input of signature {signature.name!r}; "
            f"it takes {sorted(signature.inputs)}"
        )
    want = spec.dtype.kind
    if want == "O":
        value = _strings(value, name)
    try:
        array = np.asarray(value, dtype=object if want == "O" else None)
    except (ValueError, TypeError) as exc:
        raise invalid_argument(f"input {name!r} is not a rectangular array: {exc}") from None
    got = array.dtype.kind
    if want != "O" and array.size:
        fits = got == want or (got in "iu" and want in "iuf")
        if not fits:
            raise invalid_argument(
                f"input {name!r}: JSON values of type {array.dtype} are not of expected type "
                f"{dtype_name(spec.dtype_code)}"
            )
        if want in "iu" and (
            array.min() < np.iinfo(spec.dtype).min or array.max() > np.iinfo(spec.dtype).max
        ):
            raise invalid_argument(
                f"input {name!r}: a value is out of range for {dtype_name(spec.dtype_code)}"
            )
    return array.astype(spec.dtype, copy=False)


def _strings(value: Any, name: str) -> Any:
    """JSON strings, or TF Serving's `{"b64": "..."}` for binary ones, as bytes (any nesting)."""
    if isinstance(value, list):
        return [_strings(item, name) for item in value]
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except binascii.Error:
            raise invalid_argument(f"input {name!r}: 'b64' value is not valid base64") from None
    raise invalid_argument(
        f'input {name!r} takes strings (or {{"b64": ...}} objects), got {type(value).__name__}'
    )


def _listify(name: str, value: np.ndarray) -> Any:
    """An output as JSON values; strings as text, or `{"b64": ...}` when the output's name
    ends in `_bytes`, which is TF Serving's convention for binary outputs."""
    if value.dtype.kind != "O":
        return value.tolist()
    binary = name.endswith("_bytes")

    def convert(item: Any) -> Any:
        if isinstance(item, list):
            return [convert(i) for i in item]
        if isinstance(item, bytes):
            if binary:
                return {"b64": base64.b64encode(item).decode()}
            return item.decode("utf-8", "replace")
        return item

    return convert(value.tolist())


def _row_inputs(instances: Any, signature: Signature) -> dict[str, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise invalid_argument("'instances' must be a non-empty list")
    names = list(signature.inputs)
    if all(isinstance(row, dict) and set(row) != {"b64"} for row in instances):
        keys = set(instances[0])
        if any(set(row) != keys for row in instances):
            raise invalid_argument("every instance must name the same inputs")
        return {k: _as_array([row[k] for row in instances], k, signature) for k in keys}
    if len(names) != 1:
        raise invalid_argument(
            f"the signature has inputs {names}; each instance must be an object naming them"
        )
    return {names[0]: _as_array(instances, names[0], signature)}


def _columnar_inputs(inputs: Any, signature: Signature) -> dict[str, np.ndarray]:
    names = list(signature.inputs)
    if isinstance(inputs, dict) and inputs:
        return {k: _as_array(v, k, signature) for k, v in inputs.items()}
    if len(names) != 1:
        raise invalid_argument(f"'inputs' must be an object naming the inputs {names}")
    return {names[0]: _as_array(inputs, names[0], signature)}


def _row_outputs(outputs: dict[str, np.ndarray]) -> list:
    if len(outputs) == 1:
        name, value = next(iter(outputs.items()))
        return _listify(name, value)
    columns = {name: _listify(name, value) for name, value in outputs.items()}
    rows = len(next(iter(columns.values())))
    return [{name: column[i] for name, column in columns.items()} for i in range(rows)]


def _columnar_outputs(outputs: dict[str, np.ndarray]) -> Any:
    if len(outputs) == 1:
        name, value = next(iter(outputs.items()))
        return _listify(name, value)
    return {name: _listify(name, value) for name, value in outputs.items()}


class RestApi:
    def __init__(self, servable: Servable) -> None:
        self.servable = servable

    async def models(self, request: Request) -> Response:
        """Every call counts in request_count under the model name the path gave ("" when
        it did not parse) and, when it succeeded, in request_latency with the path's method
        as API, as http_server.cc records them."""
        started = time.perf_counter()
        match = _PATH.match(request.path_params["rest"])
        name = match["name"] if match is not None else ""
        verb = (match["verb"] or "") if match is not None else ""
        response, status = await self._dispatch(request, match)
        latency_us = (time.perf_counter() - started) * 1e6
        self.servable.metrics.record_request(name, status, latency_us, api=verb, entrypoint="REST")
        return response

    async def _dispatch(
        self, request: Request, match: re.Match[str] | None
    ) -> tuple[Response, str]:
        if match is None:
            exc = invalid_argument(f"Malformed request: {request.method} {request.url.path}")
            return _error(exc), exc.code.name
        name, verb = match["name"], match["verb"]
        try:
            version = int(match["version"]) if match["version"] else None
            if match["label"]:
                version = version_for_label(match["label"])
            if request.method == "GET" and verb is None and not match["metadata"]:
                return self._status(name, version), "OK"
            if request.method == "GET" and match["metadata"]:
                return self._metadata(name, version), "OK"
            if request.method == "POST" and verb == "predict":
                return await self._predict(request, name, version)
            if request.method == "POST" and verb in ("classify", "regress"):
                message = f"{verb} is not supported by this server"
                return _json({"error": message}, 501), "UNIMPLEMENTED"
        except ServingError as exc:
            return _error(exc), exc.code.name
        exc = invalid_argument(f"Malformed request: {request.method} {request.url.path}")
        return _error(exc), exc.code.name

    def _status(self, name: str, version: int | None) -> Response:
        response = model_status(self.servable, name, version)
        statuses = []
        for status in response.model_version_status:
            state = self.servable.state.name
            error_code = "OK" if not status.status.error_message else "UNKNOWN"
            statuses.append(
                {
                    "version": str(status.version),
                    "state": state,
                    "status": {
                        "error_code": error_code,
                        "error_message": status.status.error_message,
                    },
                }
            )
        return _json({"model_version_status": statuses})

    def _metadata(self, name: str, version: int | None) -> Response:
        model = self.servable.resolve(name, version, "").model
        signature_def = {
            key: json_format.MessageToDict(sig, preserving_proto_field_name=True)
            for key, sig in model.signature_defs.items()
        }
        return _json(
            {
                "model_spec": {
                    "name": model.name,
                    "signature_name": "",
                    "version": str(model.version),
                },
                "metadata": {"signature_def": {"signature_def": signature_def}},
            }
        )

    async def _predict(
        self, request: Request, name: str, version: int | None
    ) -> tuple[Response, str]:
        try:
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError as exc:
                raise invalid_argument(f"JSON Parse error: {exc}") from None
            if not isinstance(body, dict):
                raise invalid_argument("the request body must be a JSON object")
            signature_name = body.get("signature_name", "")
            if not isinstance(signature_name, str):
                raise invalid_argument("'signature_name' key must be a string value.")
            resolved = self.servable.resolve(name, version, signature_name)
            if ("instances" in body) == ("inputs" in body):
                raise invalid_argument(
                    "give exactly one of 'instances' (row) or 'inputs' (columnar)"
                )
            if "instances" in body:
                inputs = _row_inputs(body["instances"], resolved.signature)
            else:
                inputs = _columnar_inputs(body["inputs"], resolved.signature)
            outputs = await self.servable.predict(resolved, inputs)
            if "instances" in body:
                return _json({"predictions": _row_outputs(outputs)}), "OK"
            return _json({"outputs": _columnar_outputs(outputs)}), "OK"
        except ServingError as exc:
            return _error(exc), exc.code.name
        except Exception as exc:  # a server fault; the client still gets TF Serving's shape
            log.exception("event=rest_predict_failed model=%s", name)
            return _json({"error": f"internal error: {exc!r}"}, 500), "INTERNAL"

    async def metrics(self, request: Request) -> Response:
        return Response(self.servable.metrics.render(), media_type=METRICS_CONTENT_TYPE)


def create_app(servable: Servable) -> Starlette:
    api = RestApi(servable)
    return Starlette(
        routes=[
            Route("/v1/models/{rest:path}", api.models, methods=["GET", "POST"]),
            Route("/monitoring/prometheus/metrics", api.metrics, methods=["GET"]),
        ]
    )
