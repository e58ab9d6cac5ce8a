"""Container figures on a real engine (`make bench-docker`): image sizes, the last build's
times, and the docker backend's start-to-AVAILABLE and stop times with the model-server image.

Writes bench/out/container_bench.json and prints a Markdown table. Start and stop are medians
of REPEATS runs of the backend exactly as a trial uses it (batching file mounted, init, labels).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model_server.batching_parameters import BatchingParameters  # noqa: E402
from tuner.process import free_port  # noqa: E402
from tuner.servers import DockerBackend, ServerSpec  # noqa: E402
from tuner.servers.docker_engine import docker_client, engine_address  # noqa: E402

IMAGES = ("tuner-service", "tuner-model-server", "tuner-tuner")
BASE = "localhost/tuner-base:bookworm"
OUT = REPO / "bench" / "out"
BUILD_TIMES = REPO / "build" / "docker-engine" / "build-times.txt"


def image_sizes(client) -> dict[str, int]:
    sizes = {}
    for name in (*IMAGES, BASE):
        try:
            sizes[name] = int(client.images.get(name).attrs["Size"])
        except Exception:
            continue
    return sizes


def start_stop(client, image: str, repeats: int, workdir: Path) -> dict[str, list[float]]:
    spec = ServerSpec("sentiment", REPO / "models" / "sentiment", free_port(), free_port())
    backend = DockerBackend(spec, image=image, client=client)
    starts, stops, exits = [], [], []
    for i in range(repeats):
        began = time.monotonic()
        backend.start(BatchingParameters(max_batch_size=8), {}, workdir / f"run-{i}")
        starts.append(time.monotonic() - began)
        backend.stop()
        seconds, exit_code = backend.last_stop
        stops.append(seconds)
        exits.append(exit_code)
    return {"start_to_available_s": starts, "stop_s": stops, "exit_codes": exits}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image", default="tuner-model-server")
    args = parser.parse_args()
    client = docker_client(timeout_s=60)
    if client is None:
        print(f"no Docker engine answers at {engine_address()}; run `make bench-docker`")
        return 1
    version = client.version()
    OUT.mkdir(parents=True, exist_ok=True)
    timings = start_stop(client, args.image, args.repeats, OUT / "container_bench")
    builds = {}
    if BUILD_TIMES.exists():
        for line in BUILD_TIMES.read_text().splitlines():
            target, seconds = line.split()
            builds[target] = int(seconds)
    result = {
        "engine": f"{version.get('Components', [{}])[0].get('Name', 'engine')} "
        f"{version.get('Version')}",
        "image_bytes": image_sizes(client),
        "last_build_s": builds,
        **timings,
    }
    (OUT / "container_bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"engine: {result['engine']}")
    print("| image | size (MB) |\n|---|---|")
    for name, size in result["image_bytes"].items():
        print(f"| {name} | {size / 1e6:.0f} |")
    if builds:
        print(f"\nlast build (s): {builds}")
    med = statistics.median
    print(f"\n{args.image}, {args.repeats} runs: start to AVAILABLE median "
          f"{med(timings['start_to_available_s']):.2f} s (min "
          f"{min(timings['start_to_available_s']):.2f}, max "
          f"{max(timings['start_to_available_s']):.2f}); stop median "
          f"{med(timings['stop_s']):.2f} s (max {max(timings['stop_s']):.2f}); exit codes "
          f"{sorted(set(timings['exit_codes']))}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
