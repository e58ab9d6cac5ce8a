"""A tiny stand-in for the prediction service, for load-runner tests (run as a script).

It answers /predict after `--delay-s` and, by request number, rejects some requests the way
the real service does (503 model_server_overloaded, 504 deadline_exceeded), answers some
with a plain 500 or a body without a prediction, or answers slowly, so the tests know what
the load generator must report. GET /stats returns what it sent, the body shapes seen and
`max_concurrent`, the most requests it held at once.

`--service-s D` makes it a single FIFO server with a deterministic service time D (an
M/D/1 queue under Poisson arrivals): request k finishes at max(its arrival, the previous
finish) + D, computed on the clock, so sleep overshoot never accumulates into the queue.
Its capacity is 1/D req/s, and its latency distribution at a given rate follows from
queueing theory (Pollaczek-Khinchine for the mean; Erlang's/Crommelin's formula for the
waiting-time distribution), plus the loopback HTTP round trip.

`--cold-s C --cold-extra-s E` makes it slow while cold: every request answered within C
seconds of its first one takes E seconds more (a restarted server's first seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


def build_app(args: argparse.Namespace) -> Starlette:
    counter = itertools.count(1)
    sent: dict[str, int] = {}
    held = {"now": 0, "max": 0}
    fifo = {"busy_until": 0.0}
    cold = {"until": None}

    async def serve_fifo() -> None:
        now = time.monotonic()
        finish = max(now, fifo["busy_until"]) + args.service_s
        fifo["busy_until"] = finish
        await asyncio.sleep(finish - now)

    def every(n: int, k: int) -> bool:
        return k > 0 and n % k == 0

    async def predict(request: Request) -> Response:
        held["now"] += 1
        held["max"] = max(held["max"], held["now"])
        try:
            return await answer(request)
        finally:
            held["now"] -= 1

    async def answer(request: Request) -> Response:
        n = next(counter)
        body = await request.json()
        if every(n, args.overloaded_every):
            outcome, response = (
                "model_server_overloaded",
                JSONResponse(
                    {"error": "The model server is overloaded.", "code": "model_server_overloaded"},
                    status_code=503,
                    headers={"Retry-After": "1"},
                ),
            )
        elif every(n, args.deadline_every):
            outcome, response = (
                "deadline_exceeded",
                JSONResponse({"error": "Too slow.", "code": "deadline_exceeded"}, status_code=504),
            )
        elif every(n, args.plain500_every):
            outcome, response = "http_500", PlainTextResponse("boom", status_code=500)
        elif every(n, args.bad_body_every):
            outcome, response = "invalid_response", JSONResponse({"unexpected": True})
        else:
            now = time.monotonic()
            if cold["until"] is None:
                cold["until"] = now + args.cold_s
            if now < cold["until"]:
                await asyncio.sleep(args.cold_extra_s)
            if args.service_s:
                await serve_fifo()
            elif every(n, args.slow_every):
                await asyncio.sleep(args.slow_s)
            elif args.delay_s:
                await asyncio.sleep(args.delay_s)
            outcome = "ok"
            if "texts" in body:
                items = [{"prediction": "Positive", "score": 0.9} for _ in body["texts"]]
                response = JSONResponse({"predictions": items, "model_version": 1})
            else:
                response = JSONResponse(
                    {"prediction": "Positive", "score": 0.9, "model_version": 1}
                )
        sent[outcome] = sent.get(outcome, 0) + 1
        shape = f"texts={len(body['texts'])}" if "texts" in body else "text"
        sent[shape] = sent.get(shape, 0) + 1
        return response

    async def stats(_: Request) -> Response:
        return JSONResponse({**sent, "max_concurrent": held["max"]})

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/stats", stats)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--overloaded-every", type=int, default=0)
    parser.add_argument("--deadline-every", type=int, default=0)
    parser.add_argument("--plain500-every", type=int, default=0)
    parser.add_argument("--bad-body-every", type=int, default=0)
    parser.add_argument("--delay-s", type=float, default=0.0)
    parser.add_argument("--slow-every", type=int, default=0)
    parser.add_argument("--slow-s", type=float, default=0.0)
    parser.add_argument(
        "--service-s",
        type=float,
        default=0.0,
        help="a single FIFO server with this deterministic service time (M/D/1)",
    )
    parser.add_argument("--cold-s", type=float, default=0.0)
    parser.add_argument("--cold-extra-s", type=float, default=0.0)
    args = parser.parse_args()
    uvicorn.run(build_app(args), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
