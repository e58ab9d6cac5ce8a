"""POST /v1/models/NAME[/versions/N]:predict on models other than the demo: TF Serving's REST
body in, a gRPC PredictRequest built from the model's signature, TF Serving's answer out.

Every answer is compared with the model server's own REST API given the same body, so the
service answers exactly as TF Serving's REST API would; every bad body is a 400 naming the
input before any gRPC call."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.config import Settings
from tests.service.conftest import run_in_app, running_service, wait_ready
from tests.support.model_server import ModelServerProcess, running_model_server

TABULAR_ROWS = [
    {"age": 31.0, "clicks": 4, "country": "fr", "embedding": [0.1, 0.2, 0.3, 0.4]},
    {"age": 52.5, "clicks": 0, "country": "jp", "embedding": [0.0, -1.0, 0.5, 2.0]},
]


@pytest.fixture(scope="module")
def tabular_server(example_models) -> Iterator[ModelServerProcess]:
    with running_model_server(example_models["tabular"], model_name="tabular") as server:
        yield server


@pytest.fixture(scope="module")
def text_server(example_models) -> Iterator[ModelServerProcess]:
    with running_model_server(example_models["text"], model_name="text") as server:
        yield server


def settings(server: ModelServerProcess, base: Path, tmp_path: Path) -> Settings:
    return Settings(
        model_server=server.grpc_target,
        model_name=server.model_name,
        model_base_path=base,
        access_log=str(tmp_path / "access.log"),
    )


def post_all(settings: Settings, path: str, bodies: list[Any]) -> list[httpx.Response]:
    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await client.post(path, content=b if isinstance(b, bytes) else None, json=None)
            if isinstance(b, bytes)
            else await client.post(path, json=b)
            for b in bodies
        ]

    return run_in_app(settings, scenario)


def server_answer(server: ModelServerProcess, body: Any) -> Any:
    response = httpx.post(f"{server.rest_url}/v1/models/{server.model_name}:predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    "body",
    [
        {"instances": TABULAR_ROWS},
        {"inputs": {k: [row[k] for row in TABULAR_ROWS] for k in TABULAR_ROWS[0]}},
        {"signature_name": "serving_default", "instances": TABULAR_ROWS[:1]},
    ],
    ids=["row", "columnar", "named_signature"],
)
def test_tabular_bodies_are_answered_as_tf_serving_answers_them(
    tabular_server, example_models, tmp_path, body
):
    (response,) = post_all(
        settings(tabular_server, example_models["tabular"], tmp_path),
        "/v1/models/tabular:predict",
        [body],
    )
    assert response.status_code == 200, response.text
    assert response.json() == server_answer(tabular_server, body)
    assert ("predictions" if "instances" in body else "outputs") in response.json()


def test_strings_plain_and_base64_and_a_pinned_version(text_server, example_models, tmp_path):
    texts = ["what a lovely day", "not good at all"]
    encoded = [{"b64": base64.b64encode(t.encode()).decode()} for t in texts]
    responses = post_all(
        settings(text_server, example_models["text"], tmp_path),
        "/v1/models/text/versions/1:predict",
        [{"instances": texts}, {"instances": encoded}, {"inputs": texts}],
    )
    assert [r.status_code for r in responses] == [200, 200, 200], responses[0].text
    expected = server_answer(text_server, {"instances": texts})
    assert responses[0].json() == expected == responses[1].json()
    assert responses[2].json() == {"outputs": expected["predictions"]}
    assert len(expected["predictions"]) == 2 and len(expected["predictions"][0]) == 2


BAD_BODIES = [
    (b"{not json", "JSON Parse error", None),
    ([1, 2], "must be a JSON object", None),
    ({"instances": TABULAR_ROWS, "inputs": {}}, "exactly one of 'instances'", None),
    ({"instances": [{**TABULAR_ROWS[0], "age": "old"}]}, "'age'", "DT_FLOAT"),
    ({"instances": [{**TABULAR_ROWS[0], "clicks": 1.5}]}, "'clicks'", "DT_INT64"),
    ({"instances": [{**TABULAR_ROWS[0], "embedding": [1.0, 2.0]}]}, "'embedding'", "[-1, 4]"),
    ({"instances": [{**TABULAR_ROWS[0], "country": {"b64": "%%%"}}]}, "'country'", "base64"),
    ({"instances": [{k: v for k, v in TABULAR_ROWS[0].items() if k != "age"}]}, "'age'", None),
    ({"instances": [{**TABULAR_ROWS[0], "extra": 1}]}, "'extra'", None),
    ({"instances": TABULAR_ROWS, "signature_name": "nope"}, "'nope'", "serving_default"),
    ({"instances": [1.0, 2.0]}, "each instance must be an object", None),
]


def test_bad_bodies_are_400_naming_the_input(tabular_server, example_models, tmp_path):
    s = settings(tabular_server, example_models["tabular"], tmp_path)
    responses = post_all(s, "/v1/models/tabular:predict", [b for b, _, _ in BAD_BODIES])
    for (body, names, expected), response in zip(BAD_BODIES, responses, strict=True):
        assert response.status_code == 400, (body, response.text)
        message = response.json()["error"]
        assert names in message, (body, message)
        if expected is not None:
            assert expected in message, (body, message)
        assert "\n" not in message and "Traceback" not in message


def test_wrong_model_name_and_demo_endpoint_are_404(tabular_server, example_models, tmp_path):
    s = settings(tabular_server, example_models["tabular"], tmp_path)
    other, demo = post_all(
        s, "/v1/models/sentiment:predict", [{"instances": TABULAR_ROWS}]
    ) + post_all(s, "/predict", [{"text": "hello"}])
    assert other.status_code == 404 and "'tabular'" in other.json()["error"]
    assert demo.status_code == 404 and "/v1/models/tabular:predict" in demo.json()["error"]


def test_a_new_model_version_refreshes_the_signature(example_models, tmp_path):
    """Version 2 renames the tabular model's input; the service reads the signature again."""
    import shutil

    from scripts.example_models import build_text_model

    base = Path(shutil.copytree(example_models["tabular"], tmp_path / "model"))
    with running_model_server(base, model_name="m") as server:
        s = replace(settings(server, base, tmp_path), model_name="m")

        async def scenario(client: httpx.AsyncClient) -> list[int]:
            first = await client.post("/v1/models/m:predict", json={"instances": TABULAR_ROWS})
            server.stop()
            build_text_model(tmp_path / "text")
            shutil.copytree(tmp_path / "text" / "1", base / "2")
            server.start_again()
            statuses = [first.status_code]
            for _ in range(2):  # the first may meet the old cache and fail once
                r = await client.post("/v1/models/m:predict", json={"instances": ["good"]})
                statuses.append(r.status_code)
            return statuses

        statuses = run_in_app(s, scenario)
    assert statuses[0] == 200 and statuses[-1] == 200, statuses


def test_timing_explains_the_generic_calls(tabular_server, example_models, tmp_path):
    with running_service(
        tabular_server.grpc_target,
        example_models["tabular"],
        tmp_path,
        "--model-name",
        "tabular",
    ) as service:
        wait_ready(service.url, 60)

        async def load() -> list[int]:
            async with httpx.AsyncClient(timeout=30.0) as client:

                async def user(n: int) -> list[int]:
                    url = f"{service.url}/v1/models/tabular:predict"
                    return [
                        (await client.post(url, json={"instances": TABULAR_ROWS})).status_code
                        for _ in range(n)
                    ]

                results = await asyncio.gather(*(user(40) for _ in range(4)))
            return [status for statuses in results for status in statuses]

        statuses = asyncio.run(load())
        service.stop()
    assert statuses == [200] * 160
    lines = [line for line in service.access_lines() if line["path"].startswith("/v1/models/")]
    assert len(lines) == 160
    coverage = [
        (line["preprocess_ms"] + line["inference_ms"] + line["postprocess_ms"]) / line["total_ms"]
        for line in lines
    ]
    mean = sum(coverage) / len(coverage)
    assert 0.95 <= mean <= 1.0, f"parts explain {mean:.1%} of total_ms on average"


def test_a_version_or_model_the_server_does_not_serve_is_404_in_tf_servings_words(
    shared_model_server, demo_model_dir, tmp_path
):
    """The model server's NOT_FOUND passes through as TF Serving's REST API answers it: 404,
    its message in one sentence, never the 503 of a server that is down."""
    body = {"instances": [[0] * 50]}
    with running_service(shared_model_server.grpc_target, demo_model_dir, tmp_path) as service:
        missing = httpx.post(f"{service.url}/v1/models/sentiment/versions/9:predict", json=body)
        served = httpx.post(f"{service.url}/v1/models/sentiment/versions/1:predict", json=body)
    assert missing.status_code == 404, missing.text
    assert missing.json()["code"] == "not_found"
    assert "Servable not found for request: Specific(sentiment, 9)" in missing.json()["error"]
    assert "retry-after" not in missing.headers
    assert served.status_code == 200, served.text
    other = replace(
        settings(shared_model_server, demo_model_dir, tmp_path), model_name="no_such_model"
    )
    (unserved,) = post_all(other, "/v1/models/no_such_model:predict", [body])
    assert unserved.status_code == 404, unserved.text
    assert "Servable not found for request: Latest(no_such_model)" in unserved.json()["error"]
    assert "--model-name" in unserved.json()["error"]
    for response in (missing, unserved):
        message = response.json()["error"]
        assert "\n" not in message and message.count(". ") == 0 and message.endswith(".")


def test_a_pinned_version_the_restarted_server_no_longer_serves_is_404(example_models, tmp_path):
    """Version 1's signature is cached when the server restarts on version 2: the Predict
    itself answers NOT_FOUND (a 404, and the cache is dropped), then the signature read does,
    and version 2 is served."""
    import shutil

    base = Path(shutil.copytree(example_models["tabular"], tmp_path / "model"))
    with running_model_server(base, model_name="m") as server:
        s = replace(settings(server, base, tmp_path), model_name="m")
        body = {"instances": TABULAR_ROWS}

        async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
            first = await client.post("/v1/models/m/versions/1:predict", json=body)
            server.stop()
            shutil.copytree(base / "1", base / "2")
            server.start_again()
            for _ in range(100):  # the service's channel reconnects within about a second
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            return [first] + [
                await client.post(f"/v1/models/m/versions/{v}:predict", json=body)
                for v in (1, 1, 2)
            ]

        responses = run_in_app(s, scenario)
    assert [r.status_code for r in responses] == [200, 404, 404, 200], responses[1].text
    for gone in responses[1:3]:
        assert "Servable not found for request: Specific(m, 1)" in gone.json()["error"]
        assert gone.json()["code"] == "not_found"
