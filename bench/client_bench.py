"""The service's hot-path conversions, each against the usual alternative, in one process.

    python bench/client_bench.py [--rounds 7]

Per text and per request: preprocessing (`Vocabulary.encode_batch`), building the
PredictRequest (raw `tensor_content` bytes vs `tf.make_tensor_proto` vs the repeated `int_val`
field) and reading the response (`np.frombuffer` vs `tf.make_ndarray`), plus the serialised
request size each way. Medians of `--rounds` timeit rounds. Writes bench/out/client_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import types_pb2  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402

from service.client import ModelClient  # noqa: E402
from service.text import Vocabulary  # noqa: E402

TEXTS = [
    "What an amazing flight, the staff were so friendly!",
    "@support the delivery was terrible, I want a refund",
    "The package arrived on Tuesday.",
    "meh, it's fine i guess",
]


def median_us(stmt, number: int, rounds: int) -> float:
    times = timeit.repeat(stmt, number=number, repeat=rounds)
    return round(statistics.median(times) / number * 1e6, 2)


def with_int_val(client: ModelClient, tokens: np.ndarray) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = client.model_name
    request.model_spec.signature_name = client.signature_name
    tensor = request.inputs[client.input_name]
    tensor.dtype = types_pb2.DT_INT32
    for size in tokens.shape:
        tensor.tensor_shape.dim.add().size = size
    tensor.int_val.extend(tokens.ravel().tolist())
    return request


def with_make_tensor_proto(client: ModelClient, tokens: np.ndarray) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = client.model_name
    request.model_spec.signature_name = client.signature_name
    request.inputs[client.input_name].CopyFrom(tf.make_tensor_proto(tokens))
    return request


def response_for(client: ModelClient, rows: int) -> predict_pb2.PredictResponse:
    response = predict_pb2.PredictResponse()
    probabilities = np.random.default_rng(0).random((rows, 3), dtype=np.float32)
    response.outputs[client.output_name].CopyFrom(tf.make_tensor_proto(probabilities))
    return response


def run(model_dir: Path, rounds: int) -> dict:
    vocabulary = Vocabulary.from_model_dir(model_dir)
    client = ModelClient("127.0.0.1:1", "sentiment", deadline_s=1.0)
    results: dict[str, dict] = {}
    for rows in (1, 32):
        texts = (TEXTS * rows)[:rows]
        tokens = vocabulary.encode_batch(texts)
        response = response_for(client, rows)
        number = 2000 if rows == 1 else 200
        builders = {
            "tensor_content (ours)": lambda t=tokens: client.build_request(t),
            "tf.make_tensor_proto": lambda t=tokens: with_make_tensor_proto(client, t),
            "int_val": lambda t=tokens: with_int_val(client, t),
        }
        results[f"{rows} text(s)"] = {
            "encode_batch_us": median_us(
                lambda t=texts: vocabulary.encode_batch(t), number, rounds
            ),
            "build_request_us": {
                name: median_us(build, number, rounds) for name, build in builders.items()
            },
            "request_bytes": {name: build().ByteSize() for name, build in builders.items()},
            "read_output_us": {
                "np.frombuffer (ours)": median_us(
                    lambda r=response, n=rows: client.read_output(r, n), number, rounds
                ),
                "tf.make_ndarray": median_us(
                    lambda r=response: tf.make_ndarray(r.outputs[client.output_name]),
                    number,
                    rounds,
                ),
            },
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="timeit rounds; the median is kept")
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / "sentiment")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "client_bench.json")
    args = parser.parse_args(argv)
    results = run(args.model_dir, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
