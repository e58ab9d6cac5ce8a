"""The tuner's default load: the configured REST bodies, or else varied, realistic texts
posted to the service's /predict.

With TUNER_LOAD_REQUESTS_FILE (JSON lines of TF Serving REST bodies, written by
tuner/request_source.py) each request posts the next body ("cycle", file order) or a random
one (TUNER_LOAD_REQUESTS_ORDER=random) to TUNER_LOAD_PREDICT_PATH, and a 200 must carry
`predictions` or `outputs`. Without it, the demo's texts go to /predict.

Two user classes, one per `load.arrival` (the interval reporter keeps the mode's class):
PredictUser is the closed loop without think time, so `users` is the number of requests in
flight; OpenLoopPredictUser sends one request per arrival of the open-loop scheduler.
Texts come from the deterministic corpus generator, each user (each process, in open
loop) drawing from its own seeded stream, so two trials send the same mix. Settings come
from environment variables set by the runner: TUNER_LOAD_TEXTS_PER_REQUEST
(1 = `{"text": ...}`, more = `{"texts": [...]}`), TUNER_LOAD_REQUEST_TIMEOUT_S,
TUNER_LOAD_CORPUS_SIZE, TUNER_LOAD_CORPUS_SEED.
Failures are named by the interval reporter from the service's error `code`.
"""

from __future__ import annotations

import itertools
import os
import random
from pathlib import Path

from locust import FastHttpUser, constant, task

from scripts.corpus import generate
from tuner.load.open_loop import OpenLoopUser

TEXTS_PER_REQUEST = int(os.environ.get("TUNER_LOAD_TEXTS_PER_REQUEST", "1"))
REQUEST_TIMEOUT_S = float(os.environ.get("TUNER_LOAD_REQUEST_TIMEOUT_S", "10"))
CORPUS_SIZE = int(os.environ.get("TUNER_LOAD_CORPUS_SIZE", "2000"))
CORPUS_SEED = int(os.environ.get("TUNER_LOAD_CORPUS_SEED", "0"))

REQUESTS_FILE = os.environ.get("TUNER_LOAD_REQUESTS_FILE")
REQUESTS_ORDER = os.environ.get("TUNER_LOAD_REQUESTS_ORDER", "cycle")
PREDICT_PATH = os.environ.get("TUNER_LOAD_PREDICT_PATH", "/predict")
TEXTS = [] if REQUESTS_FILE else [text for text, _label in generate(CORPUS_SIZE, seed=CORPUS_SEED)]
BODIES = (
    [line for line in Path(REQUESTS_FILE).read_bytes().splitlines() if line.strip()]
    if REQUESTS_FILE
    else []
)
_HEADERS = {"Content-Type": "application/json"}
_user_numbers = itertools.count()


class PredictUser(FastHttpUser):
    wait_time = constant(0)
    network_timeout = REQUEST_TIMEOUT_S
    connection_timeout = REQUEST_TIMEOUT_S

    def on_start(self) -> None:
        worker = getattr(self.environment.runner, "worker_index", 0)
        number = next(_user_numbers)
        self.rng = random.Random(f"{CORPUS_SEED}/{worker}/{number}")
        self.next_body = itertools.count(number)

    @task
    def predict(self) -> None:
        _send(self.client, self.rng, self.next_body)


class OpenLoopPredictUser(OpenLoopUser):
    """One per Locust process; its arrivals share the process's seeded stream of texts."""

    def on_start(self) -> None:
        worker = getattr(self.environment.runner, "worker_index", 0)
        self.rng = random.Random(f"{CORPUS_SEED}/open/{worker}")
        self.next_body = itertools.count(worker)

    def arrival(self) -> None:
        _send(self.client, self.rng, self.next_body)


def _send(client, rng: random.Random, next_body: itertools.count) -> None:
    if BODIES:
        _post_body(client, rng, next_body)
    else:
        _predict(client, rng)


def _post_body(client, rng: random.Random, next_body: itertools.count) -> None:
    if REQUESTS_ORDER == "random":
        body = rng.choice(BODIES)
    else:
        body = BODIES[next(next_body) % len(BODIES)]
    with client.post(PREDICT_PATH, data=body, headers=_HEADERS, catch_response=True) as response:
        if response.status_code == 200:
            problem = _rest_problem(response)
            if problem:
                response.failure(problem)


def _rest_problem(response) -> str | None:
    """Why a 200 response is not TF Serving's predict answer, or None when it is one."""
    try:
        body = response.json()
    except ValueError:
        return "response body is not JSON"
    if not isinstance(body, dict) or not ({"predictions", "outputs"} & set(body)):
        return "response has no predictions or outputs"
    return None


def _predict(client, rng: random.Random) -> None:
    if TEXTS_PER_REQUEST == 1:
        payload: dict = {"text": rng.choice(TEXTS)}
    else:
        payload = {"texts": rng.choices(TEXTS, k=TEXTS_PER_REQUEST)}
    with client.post("/predict", json=payload, catch_response=True) as response:
        if response.status_code == 200:
            problem = _problem(response)
            if problem:
                response.failure(problem)


def _problem(response) -> str | None:
    """Why a 200 response is not a prediction, or None when it is one."""
    try:
        body = response.json()
    except ValueError:
        return "response body is not JSON"
    if not isinstance(body, dict):
        return "response body is not a JSON object"
    if TEXTS_PER_REQUEST == 1:
        return None if "prediction" in body else "response has no prediction"
    predictions = body.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != TEXTS_PER_REQUEST:
        return f"response does not have {TEXTS_PER_REQUEST} predictions"
    return None
