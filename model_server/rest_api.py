"""TF Serving's REST API: model status, metadata, predict (row and columnar), metrics.

Routes and JSON shapes follow TF Serving's RESTful API guide, so `curl` recipes written for
TF Serving work unchanged. Errors are `{"error": "..."}` with TF Serving's HTTP statuses.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model_server.errors import ServingError, invalid_argument
from model_server.grpc_api import model_status
from model_server.rest_json import parse_body
from model_server.servable import Servable, version_for_label

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
            body = parse_body(await request.body())
            resolved = self.servable.resolve(name, version, body.signature_name)
            inputs = body.inputs(resolved.signature)
            body = body.without_data()  # not held while the batch runs (PredictBody)
            outputs = await self.servable.predict(resolved, inputs)
            return _json(body.render(outputs)), "OK"
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
