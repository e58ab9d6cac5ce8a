"""The demo model alone, in-process: what one call costs at each batch size.

    python bench/model_bench.py [--calls 60] [--one-tf-thread]

Loads the SavedModel as the embedded server does (model_server.model.load_model), encodes
realistic texts, and times `signature.run` (the call a batch thread makes) for 1 to 256 rows:
the median of `--calls` calls after warm-up calls, per call and per row, plus rows/s. The
per-row time at the batch sizes the server executes is the TensorFlow share of a batched
request's server CPU. Writes bench/out/model_bench.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZES = (1, 8, 16, 32, 64, 128, 256)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=60, help="timed calls per size (60)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per size (5)")
    parser.add_argument(
        "--one-tf-thread", action="store_true", help="one intra-op and one inter-op thread"
    )
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / "sentiment")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "model_bench.json")
    args = parser.parse_args(argv)

    import tensorflow as tf

    if args.one_tf_thread:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    from model_server.model import load_model
    from scripts.build_demo_model import ensure_demo_model
    from service.corpus import generate
    from service.text import Vocabulary

    ensure_demo_model(args.model_dir)
    model = load_model("sentiment", args.model_dir)
    signature = next(iter(model.signatures.values()))
    name = next(iter(signature.inputs))
    vocab = Vocabulary.from_model_dir(args.model_dir)
    rows = vocab.encode_batch([text for text, _ in generate(max(SIZES), seed=11)])
    results = []
    for size in SIZES:
        inputs = {name: rows[:size]}
        for _ in range(args.warmup):
            signature.run(inputs)
        times = []
        for _ in range(args.calls):
            started = time.perf_counter()
            signature.run(inputs)
            times.append(time.perf_counter() - started)
        ms = statistics.median(times) * 1000
        results.append(
            {
                "rows": size,
                "ms_per_call": round(ms, 3),
                "us_per_row": round(1000 * ms / size, 1),
                "rows_per_s": round(1000 * size / ms),
                "ms_p10_p90": [round(v * 1000, 3) for v in statistics.quantiles(times, n=10)[::8]],
            }
        )
        print(f"rows={size}: {results[-1]}", file=sys.stderr, flush=True)
    report = {
        "settings": {"calls": args.calls, "one_tf_thread": args.one_tf_thread},
        "load_avg": os.getloadavg(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print("| rows per call | ms per call (median) | µs per row | rows/s |")
    print("|---|---|---|---|")
    for r in results:
        print(f"| {r['rows']} | {r['ms_per_call']} | {r['us_per_row']} | {r['rows_per_s']:,} |")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
