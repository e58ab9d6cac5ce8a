"""The Starlette app: POST /predict, POST /v1/models/NAME:predict, GET /healthz, GET /readyz.

`create_app(settings)` builds one app; `create_app_from_env()` is the factory uvicorn calls in
each worker process (settings travel through SERVICE_* variables, see `service.config`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from time import perf_counter

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model_server import pauses
from service import errors
from service.access_log import AccessLog
from service.client import Inference, ModelClient
from service.config import Settings
from service.generic import GenericPredictor
from service.logs import logger
from service.middleware import ERROR_KEY, TIMINGS_KEY, RequestLogMiddleware
from service.payload import parse_texts, read_body
from service.text import LABELS, Vocabulary

READY_TIMEOUT_S = 2.0


def _json(content: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(content), status_code=status, headers=headers, media_type="application/json"
    )


class PredictionService:
    """The endpoints and the resources they share (vocabulary, gRPC client, access log)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.access_log = AccessLog(settings.access_log)
        self.client = ModelClient(
            settings.model_server,
            settings.model_name,
            deadline_s=settings.deadline_s,
            signature_name=settings.signature_name,
        )
        self.vocabulary: Vocabulary | None = None
        self.generic = GenericPredictor(
            self.client, settings.signature_name, settings.max_body_bytes
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.vocabulary = _demo_vocabulary(self.settings)
        self.access_log.start()
        await self.client.open()
        lag_probe = pauses.start("service")  # start-up is done: freeze, then watch
        logger.info(
            "service started",
            extra={
                "event": "service_started",
                "model_server": self.settings.model_server,
                "model_name": self.settings.model_name,
                "access_log": self.settings.access_log,
                # The slow path (h11, asyncio) costs ~20% more CPU per request; say which it is.
                "http": self.settings.http_implementation(),
                "loop": type(asyncio.get_running_loop()).__module__.partition(".")[0],
            },
        )
        try:
            yield
        finally:
            lag_probe.cancel()
            await self.client.close()
            self.access_log.close()
            logger.info("service stopped", extra={"event": "service_stopped"})

    async def predict(self, request: Request) -> Response:
        timings = request.scope[TIMINGS_KEY]
        started = perf_counter()
        try:
            body = await read_body(request, self.settings.max_body_bytes)
            texts, single = parse_texts(body, self.settings.max_texts)
            timings.texts = len(texts)
            if self.vocabulary is None:
                raise errors.NotFound(
                    f"POST /predict serves the demo's sentiment model, and "
                    f"{self.settings.model_base_path} has no vocabulary asset; "
                    f"use POST /v1/models/{self.settings.model_name}:predict."
                )
            tokens = self.vocabulary.encode_batch(texts)
            sent = perf_counter()
            timings.preprocess = sent - started
            try:
                inference = await self.client.predict(tokens)
            finally:
                received = perf_counter()
                timings.inference = received - sent
            response = _json(self.render(inference, single))
            timings.postprocess = perf_counter() - received
            return response
        except errors.ServiceError as exc:
            request.scope[ERROR_KEY] = exc
            return exc.response()

    def render(self, inference: Inference, single: bool) -> dict[str, object]:
        """Labels and scores from the probabilities (argmax per row)."""
        probabilities = inference.probabilities
        if probabilities.shape[1] != len(LABELS):
            raise errors.ModelServerError(
                f"The model returned {probabilities.shape[1]} classes, not {len(LABELS)}; "
                "check that --model-name points at the sentiment model."
            )
        # Plain Python on a few short rows beats a chain of small numpy calls (profiled).
        rows = probabilities.tolist()
        best = [max(range(len(row)), key=row.__getitem__) for row in rows]
        if single:
            return {
                "prediction": LABELS[best[0]],
                "score": round(rows[0][best[0]], 6),
                "model_version": inference.model_version,
            }
        return {
            "predictions": [
                {"prediction": LABELS[label], "score": round(row[label], 6)}
                for label, row in zip(best, rows, strict=True)
            ],
            "model_version": inference.model_version,
        }

    async def readyz(self, request: Request) -> Response:
        try:
            status = await self.client.model_status(min(READY_TIMEOUT_S, self.settings.deadline_s))
        except errors.ServiceError as exc:
            request.scope[ERROR_KEY] = exc
            return _json(
                {"ready": False, "reason": exc.message, "code": exc.code},
                503,
                {"Retry-After": str(errors.RETRY_AFTER_S)},
            )
        if not status.available:
            reason = (
                f"Model {self.settings.model_name!r} is {status.state} on "
                f"{self.settings.model_server}, not AVAILABLE; retry in a moment."
            )
            request.scope[ERROR_KEY] = errors.ModelServerUnavailable(reason)
            return _json(
                {"ready": False, "reason": reason, "code": "model_server_unavailable"},
                503,
                {"Retry-After": str(errors.RETRY_AFTER_S)},
            )
        return _json({"ready": True, "model": self.settings.model_name, "version": status.version})


def _demo_vocabulary(settings: Settings) -> Vocabulary | None:
    """The demo model's vocabulary for /predict; None for any other model (only the generic
    endpoint serves it)."""
    try:
        return Vocabulary.from_model_dir(settings.model_base_path)
    except FileNotFoundError:
        logger.info(
            "no demo vocabulary: /predict is off, /v1/models/NAME:predict serves the model",
            extra={"event": "demo_endpoint_off", "model_base_path": str(settings.model_base_path)},
        )
        return None


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"})


async def http_error(request: Request, exc: Exception) -> Response:
    """Router errors (404, 405) in the service's JSON error shape."""
    assert isinstance(exc, HTTPException)
    failure: errors.ServiceError
    if exc.status_code == 404:
        failure = errors.NotFound(
            f"There is no {request.url.path}; use POST /predict, "
            "POST /v1/models/NAME:predict, GET /healthz or GET /readyz."
        )
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        failure = errors.MethodNotAllowed(
            f"{request.method} is not allowed on {request.url.path}; use {allowed}."
        )
    else:
        failure = errors.ServiceError(exc.detail)
        failure.status = exc.status_code
        failure.code = "http_error"
    request.scope[ERROR_KEY] = failure
    response = failure.response()
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def create_app(settings: Settings) -> Starlette:
    service = PredictionService(settings)
    app = Starlette(
        routes=[
            Route("/predict", service.predict, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", service.readyz, methods=["GET"]),
            Route("/v1/models/{target:path}", service.generic.predict, methods=["POST"]),
        ],
        middleware=[Middleware(RequestLogMiddleware, access_log=service.access_log)],
        exception_handlers={HTTPException: http_error},
        lifespan=service.lifespan,
    )
    app.state.service = service
    return app


def create_app_from_env() -> Starlette:
    """uvicorn's app factory (`--workers N` starts each worker through it)."""
    return create_app(Settings.from_env())
