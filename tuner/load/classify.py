"""Naming a failed request by its cause, so queue-full rejections are told apart from outages.

Runs inside the Locust process (called by the interval reporter) but imports nothing from
Locust, so it is tested directly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

TIMEOUT = "timeout"
CONNECTION = "connection"
INVALID_RESPONSE = "invalid_response"

_TIMEOUT_CLASS_NAMES = {"Timeout", "TimeoutError", "ConnectTimeout", "ReadTimeout"}


def is_timeout(exception: BaseException | None) -> bool:
    if exception is None:
        return False
    if isinstance(exception, TimeoutError):
        return True
    if any(cls.__name__ in _TIMEOUT_CLASS_NAMES for cls in type(exception).__mro__):
        return True
    return "timed out" in str(exception).lower()


def error_code(body: bytes | str | None) -> str | None:
    """The service's `code` field of an error body, if the body is one."""
    if not body:
        return None
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    code = payload.get("code") if isinstance(payload, dict) else None
    return code if isinstance(code, str) and code else None


def classify_failure(
    status_code: int | None, body: bytes | str | None, exception: BaseException | None
) -> str:
    """The failure's code: the service's error `code`, `http_<status>`, timeout or connection.

    A 2xx/3xx response marked failed by the locustfile (e.g. a body without a prediction)
    is `invalid_response`.
    """
    if status_code and status_code >= 400:
        return error_code(body) or f"http_{status_code}"
    if is_timeout(exception):
        return TIMEOUT
    if not status_code:
        return CONNECTION
    return INVALID_RESPONSE


def from_dead_process(failures_by_code: Mapping[str, int]) -> bool:
    """True when a step's failures are mostly connection errors (refused, reset): what a
    target whose process died gives, and what an overloaded but live one does not (it answers
    with errors or late). The caller confirms the process is really gone before it calls the
    step a fault of the bench rather than a measurement."""
    connection = failures_by_code.get(CONNECTION, 0)
    return connection > 0 and 2 * connection >= sum(failures_by_code.values())
