"""The tuner's default load: the configured REST bodies, or else varied, realistic texts
posted to the service's /predict.

With configured requests (tuner/load/request_set.py: JSON lines of TF Serving REST bodies
written by tuner/measure/request_source.py, or on a load-worker the same bytes sent by the master)
each request posts the next body ("cycle", file order) or a random one
(TUNER_LOAD_REQUESTS_ORDER=random) to TUNER_LOAD_PREDICT_PATH, and a 200 must carry
`predictions` or `outputs`. Without them, the demo's texts go to /predict.

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

from locust import User, constant, task

from service.corpus import generate
from tuner.load import request_set
from tuner.load.http_user import ResendingHttpUser
from tuner.load.open_loop import OpenLoopUser

TEXTS_PER_REQUEST = int(os.environ.get("TUNER_LOAD_TEXTS_PER_REQUEST", "1"))
REQUEST_TIMEOUT_S = float(os.environ.get("TUNER_LOAD_REQUEST_TIMEOUT_S", "10"))
CORPUS_SIZE = int(os.environ.get("TUNER_LOAD_CORPUS_SIZE", "2000"))
CORPUS_SEED = int(os.environ.get("TUNER_LOAD_CORPUS_SEED", "0"))

# The demo's texts; a load-worker makes them too, as it learns only later whether the
# master sends request bodies instead.
TEXTS = (
    []
    if os.environ.get("TUNER_LOAD_REQUESTS_FILE")
    else [text for text, _label in generate(CORPUS_SIZE, seed=CORPUS_SEED)]
)
_HEADERS = {"Content-Type": "application/json"}
# load.target = "grpc": the same requests as serialized PredictRequests, over gRPC.
GRPC = os.environ.get("TUNER_LOAD_TARGET") == "grpc"
if GRPC:  # grpc is imported only then: the HTTP load's processes stay as they were
    import grpc.experimental.gevent

    from tuner.load.grpc_predict import PredictSender

    grpc.experimental.gevent.init_gevent()  # gRPC calls yield to Locust's greenlets
_user_numbers = itertools.count()


class PredictUser(ResendingHttpUser):
    abstract = GRPC
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

    abstract = GRPC

    def on_start(self) -> None:
        worker = getattr(self.environment.runner, "worker_index", 0)
        self.rng = random.Random(f"{CORPUS_SEED}/open/{worker}")
        self.next_body = itertools.count(worker)

    def arrival(self) -> None:
        _send(self.client, self.rng, self.next_body)


class GrpcPredictUser(User):
    """Closed loop over gRPC: each user sends its next PredictRequest when the last one ends."""

    abstract = not GRPC
    wait_time = constant(0)

    def on_start(self) -> None:
        self.sender = PredictSender(_grpc_target(self.host), REQUEST_TIMEOUT_S)
        self.next_body = itertools.count(next(_user_numbers))
        self.rng = random.Random(f"{CORPUS_SEED}/grpc/{next(_user_numbers)}")

    def on_stop(self) -> None:
        self.sender.close()

    @task
    def predict(self) -> None:
        self.sender.send(self.environment, _next_grpc(self.rng, self.next_body))


class OpenLoopGrpcPredictUser(OpenLoopUser):
    """Open loop over gRPC: one PredictRequest per arrival, on one shared channel."""

    abstract = not GRPC

    def on_start(self) -> None:
        worker = getattr(self.environment.runner, "worker_index", 0)
        self.sender = PredictSender(_grpc_target(self.host), REQUEST_TIMEOUT_S)
        self.rng = random.Random(f"{CORPUS_SEED}/open-grpc/{worker}")
        self.next_body = itertools.count(worker)

    def arrival(self) -> None:
        self.sender.send(self.environment, _next_grpc(self.rng, self.next_body))


def _grpc_target(host: str | None) -> str:
    """host:port of the model server's gRPC port, from Locust's --host URL."""
    return (host or "").split("://", 1)[-1].rstrip("/")


def _pick(items: list, order: str, rng: random.Random, next_body: itertools.count):
    if order == "random":
        return rng.choice(items)
    return items[next(next_body) % len(items)]


def _next_grpc(rng: random.Random, next_body: itertools.count) -> bytes:
    requests = request_set.current()
    if requests is None or not requests.grpc_requests:
        raise RuntimeError('load.target = "grpc" but this Locust process has no requests')
    return _pick(requests.grpc_requests, requests.order, rng, next_body)


def _send(client, rng: random.Random, next_body: itertools.count) -> None:
    requests = request_set.current()
    if requests is not None:
        _post_body(client, requests, rng, next_body)
    else:
        _predict(client, rng)


def _post_body(
    client, requests: request_set.RequestSet, rng: random.Random, next_body: itertools.count
) -> None:
    body = _pick(requests.bodies, requests.order, rng, next_body)
    with client.post(requests.path, data=body, headers=_HEADERS, catch_response=True) as response:
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
