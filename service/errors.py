"""The service's error vocabulary: one exception type, one JSON body shape, stable codes.

Load generators and the tuner classify failures by `code`, so codes are part of the API
(listed in docs/reference/service-api.md); the sentence in `error` is for humans.
"""

from __future__ import annotations

import orjson
from starlette.responses import Response

RETRY_AFTER_S = 1


class ServiceError(Exception):
    """An expected failure with its HTTP status, stable code and one-sentence message."""

    status: int = 500
    code: str = "internal_error"
    retry_after: int | None = None

    def __init__(self, message: str, *, field: str | None = None, cause: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        # What the log line records besides the message, e.g. the gRPC status and details.
        self.cause = cause

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.message, "code": self.code}
        if self.field is not None:
            body["field"] = self.field
        return body

    def response(self) -> Response:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return Response(
            orjson.dumps(self.body()),
            status_code=self.status,
            headers=headers,
            media_type="application/json",
        )


class InvalidJSON(ServiceError):
    status = 400
    code = "invalid_json"


class InvalidRequest(ServiceError):
    status = 422
    code = "invalid_request"


class InvalidInput(ServiceError):
    """A TF Serving REST body that does not fit the model's signature (400, as TF Serving)."""

    status = 400
    code = "invalid_input"


class BodyTooLarge(ServiceError):
    status = 413
    code = "body_too_large"


class ModelServerUnavailable(ServiceError):
    status = 503
    code = "model_server_unavailable"
    retry_after = RETRY_AFTER_S


class ModelServerOverloaded(ServiceError):
    status = 503
    code = "model_server_overloaded"
    retry_after = RETRY_AFTER_S


class DeadlineExceeded(ServiceError):
    status = 504
    code = "deadline_exceeded"


class ModelServerError(ServiceError):
    status = 502
    code = "model_server_error"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ServiceError):
    status = 405
    code = "method_not_allowed"


class InternalError(ServiceError):
    status = 500
    code = "internal_error"
