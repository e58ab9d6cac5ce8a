"""The HTTP API against a real model server, with the app run in-process (lifespan included)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from service.text import LABELS
from tests.support.model_server import ModelServerProcess
from tests.support.server_timing import parse_server_timing
from tuner.process import free_port

DEMO = {
    "What an amazing flight, the staff were so friendly!": "Positive",
    "@support the delivery was terrible, I want a refund": "Negative",
    "The package arrived on Tuesday.": "Neutral",
}


@pytest.fixture
def settings(shared_model_server: ModelServerProcess, settings_for: Callable[..., Any]) -> Any:
    return settings_for(shared_model_server.grpc_target, max_texts=8, max_body_bytes=4096)


def test_single_texts_get_the_expected_labels(settings: Any, in_app: Callable) -> None:
    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.post("/predict", json={"text": text}) for text in DEMO]

    for (text, label), response in zip(DEMO.items(), in_app(settings, scenario), strict=True):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["prediction"] == label, text
        assert set(body) == {"prediction", "score", "model_version"}
        assert 1 / len(LABELS) < body["score"] <= 1.0
        assert body["model_version"] == 1


def test_a_batch_is_answered_in_order_and_matches_single_requests(
    settings: Any, in_app: Callable
) -> None:
    texts = list(DEMO)

    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, list[httpx.Response]]:
        batch = await client.post("/predict", json={"texts": texts})
        singles = [await client.post("/predict", json={"text": text}) for text in texts]
        return batch, singles

    batch, singles = in_app(settings, scenario)
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert body["model_version"] == 1
    assert [p["prediction"] for p in body["predictions"]] == list(DEMO.values())
    for prediction, single in zip(body["predictions"], singles, strict=True):
        assert prediction["score"] == pytest.approx(single.json()["score"], abs=1e-4)


def test_server_timing_header_and_one_log_line_per_request(settings: Any, in_app: Callable) -> None:
    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await client.post("/predict", json={"text": "great stuff"}),
            await client.post("/predict", content=b"{oops"),
            await client.get("/healthz"),
        ]

    ok, bad, _ = in_app(settings, scenario)
    timing = parse_server_timing(ok.headers["server-timing"])
    assert set(timing) == {"preprocess", "inference", "postprocess", "total"}
    assert timing["preprocess"] + timing["inference"] + timing["postprocess"] <= timing["total"]
    assert "total" in parse_server_timing(bad.headers["server-timing"])

    with open(settings.access_log, "rb") as log:
        lines = [orjson.loads(line) for line in log]
    assert [(line["path"], line["status"]) for line in lines] == [
        ("/predict", 200),
        ("/predict", 400),
        ("/healthz", 200),
    ]
    assert lines[0]["texts"] == 1
    assert lines[0]["total_ms"] == pytest.approx(timing["total"], abs=0.001)
    assert lines[1]["code"] == "invalid_json" and lines[1]["error"]


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        (b"{not json", 400, "invalid_json", None),
        (b'"just a string"', 422, "invalid_request", "body"),
        (b'{"txt": "typo"}', 422, "invalid_request", "text"),
        (b'{"text": ""}', 422, "invalid_request", "text"),
        (b'{"text": ["a"]}', 422, "invalid_request", "text"),
        (b'{"texts": ["ok", 7]}', 422, "invalid_request", "texts[1]"),
        (orjson.dumps({"texts": ["t"] * 9}), 422, "invalid_request", "texts"),
    ],
)
def test_bad_input_gets_a_json_error_naming_the_field(
    settings: Any, in_app: Callable, payload: bytes, status: int, code: str, field: str | None
) -> None:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/predict", content=payload)

    response = in_app(settings, scenario)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert body.get("field") == field
    assert body["error"].endswith(".") and "\n" not in body["error"]
    assert "Traceback" not in response.text


def test_body_over_the_limit_is_refused_from_content_length(
    settings: Any, in_app: Callable
) -> None:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/predict", json={"text": "x" * 5000})

    response = in_app(settings, scenario)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_streamed_body_over_the_limit_is_refused_without_reading_it_all(
    settings: Any, in_app: Callable
) -> None:
    chunk = b"x" * 1024
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):  # 1 MiB, no Content-Length
            sent += 1
            yield chunk

    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/predict", content=body())

    response = in_app(settings, scenario)
    assert response.status_code == 413
    assert sent <= settings.max_body_bytes // len(chunk) + 2


def test_unknown_routes_and_methods_get_json_errors(settings: Any, in_app: Callable) -> None:
    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.get("/nowhere"), await client.get("/predict")]

    missing, wrong_method = in_app(settings, scenario)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")
    assert wrong_method.headers["allow"] == "POST"


def test_healthz_and_readyz_when_the_model_is_available(settings: Any, in_app: Callable) -> None:
    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.get("/healthz"), await client.get("/readyz")]

    health, ready = in_app(settings, scenario)
    assert health.status_code == 200
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "model": "sentiment", "version": 1}


def test_unreachable_model_server_gives_503_at_once(
    settings_for: Callable[..., Any], in_app: Callable
) -> None:
    settings = settings_for(f"127.0.0.1:{free_port()}", deadline_ms=10_000)

    async def scenario(client: httpx.AsyncClient) -> tuple[list[httpx.Response], float]:
        started = time.monotonic()
        responses = [await client.post("/predict", json={"text": "hello"}) for _ in range(3)]
        responses.append(await client.get("/readyz"))
        return responses, time.monotonic() - started

    responses, elapsed = in_app(settings, scenario)
    assert elapsed < 5.0  # far below the 10 s deadline: no waiting for the server
    for response in responses:
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["code"] == "model_server_unavailable"
    assert responses[-1].json()["ready"] is False


def test_unknown_model_name_is_unavailable_and_readyz_says_why(
    shared_model_server: ModelServerProcess, settings_for: Callable[..., Any], in_app: Callable
) -> None:
    settings = settings_for(shared_model_server.grpc_target, model_name="no_such_model")

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.post("/predict", json={"text": "hi"}), await client.get("/readyz")]

    predict, ready = in_app(settings, scenario)
    assert predict.status_code == 503
    assert predict.json()["code"] == "model_server_unavailable"
    assert "no_such_model" in predict.json()["error"]
    assert ready.status_code == 503
    assert ready.json()["ready"] is False
