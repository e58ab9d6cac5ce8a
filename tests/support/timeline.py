"""Where the suite's time goes: with TUNER_TEST_TIMELINE=FILE, every test (setup, call and
teardown together) appends one JSON line to FILE: its worker, start and end (epoch seconds),
and the CPU seconds its worker spent, itself and in the children it reaped (servers, services,
Locust, tuners the test started and waited for). `python -m tests.support.timeline FILE`
sums it per module and shows how busy each worker was, so a slow `make test` is explained by
data (a module on the critical path, a worker idle behind an `alone` test) before anything is
changed."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "TUNER_TEST_TIMELINE"


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


@contextmanager
def recorded(nodeid: str, worker: str) -> Iterator[None]:
    """Around one test's protocol; does nothing unless the environment asks for it."""
    path = os.environ.get(ENV)
    if not path:
        yield
        return
    start, (own, children) = time.time(), _cpu()
    try:
        yield
    finally:
        end, (own_after, children_after) = time.time(), _cpu()
        line = {
            "nodeid": nodeid,
            "worker": worker,
            "start": round(start, 3),
            "end": round(end, 3),
            "cpu_self_s": round(own_after - own, 3),
            "cpu_children_s": round(children_after - children, 3),
        }
        with open(path, "a") as handle:
            handle.write(json.dumps(line) + "\n")


def summary(lines: list[dict]) -> str:
    """Per module: wall and CPU seconds; per worker: busy share of the session."""
    first = min(r["start"] for r in lines)
    last = max(r["end"] for r in lines)
    modules: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
    busy: dict[str, float] = defaultdict(float)
    for r in lines:
        m = modules[r["nodeid"].split("::")[0]]
        m[0] += r["end"] - r["start"]
        m[1] += r["cpu_self_s"]
        m[2] += r["cpu_children_s"]
        m[3] += 1
        busy[r["worker"]] += r["end"] - r["start"]
    span = last - first
    out = [f"session {span:.0f} s, {len(lines)} tests"]
    for worker, seconds in sorted(busy.items()):
        out.append(f"  {worker}: busy {seconds:.0f} s ({100 * seconds / span:.0f}%)")
    out.append("module: wall s, CPU s (own + children), tests")
    for name, (wall, own, children, n) in sorted(modules.items(), key=lambda kv: -kv[1][0]):
        cpu = f"{own + children:7.1f} ({own:.0f} + {children:.0f})"
        out.append(f"  {wall:7.1f} {cpu} {n:4d} {name}")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
        sys.exit(
            "usage: python -m tests.support.timeline FILE (the TUNER_TEST_TIMELINE a run wrote)"
        )
    rows = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines() if line]
    print(summary(rows))
