"""Batch formation, limits, padding and splitting of the embedded server's batcher.

The model is a plain numpy function that records every batch it executes, so the tests see
exactly what TensorFlow would have been given. Timing assertions use generous bounds; the
orderings they rely on come from the event loop, not from sleeps.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from model_server.batcher import (
    QUEUE_FULL_MESSAGE,
    Batcher,
    BatcherClosedError,
    BatchSizeError,
    InputShapeError,
    QueueFullError,
)
from model_server.batching_parameters import BatchingParameters
from model_server.metrics import ServerMetrics
from model_server.unbatched import Unbatched


class Model:
    """Doubles `x`; records each executed batch and how many batches ran at once."""

    def __init__(
        self,
        delay: float = 0.0,
        gate: threading.Event | None = None,
        barrier: threading.Barrier | None = None,
    ) -> None:
        self.delay = delay
        self.gate = gate
        self.barrier = barrier
        self.batches: list[np.ndarray] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["x"]
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.batches.append(x.copy())
            first_calls = len(self.batches) <= (self.barrier.parties if self.barrier else 0)
        try:
            if first_calls:
                assert self.barrier is not None
                self.barrier.wait(timeout=5)
            if self.gate is not None:
                assert self.gate.wait(timeout=5), "the test never opened the gate"
            if self.delay:
                time.sleep(self.delay)
            return {"y": x * 2, "first": x[:, 0].copy()}
        finally:
            with self._lock:
                self.active -= 1

    @property
    def sizes(self) -> list[int]:
        return [len(b) for b in self.batches]


def request(rid: int, rows: int = 1, width: int = 3) -> dict[str, np.ndarray]:
    """Rows identify their request: column 0 is the request id, column 1 the row index."""
    x = np.zeros((rows, width), dtype=np.float32)
    x[:, 0] = rid
    if width > 1:
        x[:, 1] = np.arange(rows)
    return {"x": x}


def run_with(
    params: BatchingParameters,
    model: Model,
    scenario: Callable[[Batcher], Awaitable[None]],
    metrics: ServerMetrics | None = None,
) -> ServerMetrics:
    metrics = metrics or ServerMetrics("m")

    async def main() -> None:
        batcher = Batcher(params, model, metrics=metrics.batching, model_name="m")
        try:
            await asyncio.wait_for(scenario(batcher), timeout=20)
        finally:
            await batcher.close()

    asyncio.run(main())
    return metrics


def check_outputs(inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(outputs["y"], inputs["x"] * 2)
    np.testing.assert_array_equal(outputs["first"], inputs["x"][:, 0])


def metric_value(text: str, name: str) -> float:
    """The sum over every label set of one series, as TF's exporter writes it."""
    values = re.findall(rf"^{re.escape(name)}\{{[^}}]*\}} (\S+)$", text, re.MULTILINE)
    assert values, f"{name} missing from\n{text}"
    return sum(float(v) for v in values)


def test_concurrent_requests_form_batches_no_larger_than_max_batch_size() -> None:
    model = Model(delay=0.02)
    params = BatchingParameters(max_batch_size=8, num_batch_threads=1, max_enqueued_batches=100)

    async def scenario(batcher: Batcher) -> None:
        inputs = [request(i) for i in range(40)]
        outputs = await asyncio.gather(*(batcher.submit(x) for x in inputs))
        for x, y in zip(inputs, outputs, strict=True):
            check_outputs(x, y)

    run_with(params, model, scenario)
    assert sum(model.sizes) == 40
    assert max(model.sizes) == 8  # full batches, never larger
    assert len(model.sizes) <= 6  # the first request alone, then batches of up to 8


def test_multi_row_requests_count_as_that_many_tasks_and_never_straddle_batches() -> None:
    model = Model(delay=0.01)
    params = BatchingParameters(max_batch_size=8, num_batch_threads=1, max_enqueued_batches=100)
    rng = random.Random(7)
    sizes = [rng.randint(1, 5) for _ in range(30)]

    async def scenario(batcher: Batcher) -> None:
        inputs = [request(i, rows) for i, rows in enumerate(sizes)]
        outputs = await asyncio.gather(*(batcher.submit(x) for x in inputs))
        for x, y in zip(inputs, outputs, strict=True):
            check_outputs(x, y)

    run_with(params, model, scenario)
    assert max(model.sizes) <= 8
    seen: dict[int, int] = {}
    for index, batch in enumerate(model.batches):
        for rid in np.unique(batch[:, 0]).astype(int):
            assert rid not in seen, f"request {rid} straddles batches {seen[rid]} and {index}"
            seen[rid] = index
            rows = np.flatnonzero(batch[:, 0] == rid)
            assert list(batch[rows, 1]) == list(range(sizes[rid]))  # contiguous, in order
            assert rows[-1] - rows[0] + 1 == sizes[rid]
    assert len(seen) == len(sizes)


def test_lone_request_waits_for_the_timeout_and_late_companions_join_it() -> None:
    model = Model()
    # a second of timeout against a 20-ms gap: on a loaded machine (make test runs four
    # workers on two cores) 100 ms once ran out before the companion came, and two batches ran
    params = BatchingParameters(
        max_batch_size=100, batch_timeout_micros=1_000_000, num_batch_threads=1
    )

    async def scenario(batcher: Batcher) -> None:
        start = time.monotonic()
        first = asyncio.ensure_future(batcher.submit(request(1)))
        await asyncio.sleep(0.02)
        second = await batcher.submit(request(2))
        elapsed = time.monotonic() - start
        check_outputs(request(1), await first)
        check_outputs(request(2), second)
        assert 0.95 <= elapsed < 10

    run_with(params, model, scenario)
    assert model.sizes == [2]


def test_full_batch_runs_without_waiting_for_the_timeout() -> None:
    model = Model()
    params = BatchingParameters(max_batch_size=4, batch_timeout_micros=30_000_000)

    async def scenario(batcher: Batcher) -> None:
        start = time.monotonic()
        await asyncio.gather(*(batcher.submit(request(i)) for i in range(4)))
        assert time.monotonic() - start < 5

    run_with(params, model, scenario)
    assert model.sizes == [4]


def test_zero_timeout_runs_a_lone_request_at_once() -> None:
    model = Model()
    params = BatchingParameters(max_batch_size=32, batch_timeout_micros=0)

    async def scenario(batcher: Batcher) -> None:
        start = time.monotonic()
        check_outputs(request(3, 2), await batcher.submit(request(3, 2)))
        assert time.monotonic() - start < 2

    run_with(params, model, scenario)
    assert model.sizes == [2]


def test_at_most_num_batch_threads_batches_execute_at_once() -> None:
    # The barrier makes the first two batches wait for each other: it proves two threads
    # really run in parallel (a pool of one would break it).
    model = Model(delay=0.005, barrier=threading.Barrier(2))
    params = BatchingParameters(max_batch_size=2, num_batch_threads=2, max_enqueued_batches=100)

    async def scenario(batcher: Batcher) -> None:
        await asyncio.gather(*(batcher.submit(request(i)) for i in range(30)))

    run_with(params, model, scenario)
    assert model.max_active == 2
    assert max(model.sizes) <= 2


def test_queue_full_is_rejected_fast_with_tf_servings_message() -> None:
    gate = threading.Event()
    model = Model(gate=gate)
    params = BatchingParameters(max_batch_size=1, num_batch_threads=1, max_enqueued_batches=2)

    async def scenario(batcher: Batcher) -> None:
        running = asyncio.ensure_future(batcher.submit(request(0)))  # takes the only thread
        await asyncio.sleep(0)
        waiting = [asyncio.ensure_future(batcher.submit(request(i))) for i in (1, 2)]
        await asyncio.sleep(0)  # two batches now wait: the queue is at its limit
        with pytest.raises(QueueFullError) as excinfo:
            await batcher.submit(request(3))
        assert str(excinfo.value) == QUEUE_FULL_MESSAGE
        assert QUEUE_FULL_MESSAGE == (
            "The batch scheduling queue to which this task was submitted is full"
        )
        gate.set()
        for rid, task in zip((0, 1, 2), [running, *waiting], strict=True):
            check_outputs(request(rid), await task)
        check_outputs(request(4), await batcher.submit(request(4)))  # room again

    run_with(params, model, scenario)
    assert model.sizes == [1, 1, 1, 1]


def test_allowed_batch_sizes_pad_with_the_first_row_and_outputs_drop_the_padding() -> None:
    model = Model()
    params = BatchingParameters(
        max_batch_size=8,
        batch_timeout_micros=100_000,
        num_batch_threads=1,
        allowed_batch_sizes=(2, 4, 8),
    )

    async def scenario(batcher: Batcher) -> None:
        inputs = [request(10), request(20, 2)]
        outputs = await asyncio.gather(*(batcher.submit(x) for x in inputs))
        for x, y in zip(inputs, outputs, strict=True):
            check_outputs(x, y)
            assert y["y"].shape == (len(x["x"]), 3)
        x = request(30, 5)
        check_outputs(x, await batcher.submit(x))

    metrics = run_with(params, model, scenario)
    assert model.sizes == [4, 8]
    first, second = model.batches
    np.testing.assert_array_equal(first[3], first[0])  # padding repeats the first row
    np.testing.assert_array_equal(second[5:], np.repeat(second[:1], 3, axis=0))
    text = metrics.render()
    prefix = ":tensorflow:serving:batching_session:"
    assert metric_value(text, prefix + "processed_batch_size_sum") == 12
    assert metric_value(text, prefix + "input_batch_size_sum") == 8
    assert metric_value(text, prefix + "padding_size_sum") == 4
    assert metric_value(text, prefix + "queuing_latency_count") == 3  # one per request


def test_oversized_request_is_rejected_even_with_splitting() -> None:
    async def scenario(batcher: Batcher) -> None:
        message = r"^Task size 5 is larger than maximum input batch size 4"
        with pytest.raises(BatchSizeError, match=message):
            await batcher.submit(request(1, 5))
        check_outputs(request(2, 4), await batcher.submit(request(2, 4)))

    plain = Model()
    run_with(BatchingParameters(max_batch_size=4), plain, scenario)
    assert plain.sizes == [4]
    split = Model()
    params = BatchingParameters(
        max_batch_size=4, enable_large_batch_splitting=True, max_execution_batch_size=2
    )
    run_with(params, split, scenario)
    assert split.sizes == [2, 2]


def test_large_batch_splitting_fills_the_open_batch_and_concatenates_outputs() -> None:
    gate = threading.Event()
    model = Model(gate=gate)
    params = BatchingParameters(
        max_batch_size=8,
        num_batch_threads=1,
        enable_large_batch_splitting=True,
        max_execution_batch_size=4,
    )

    async def scenario(batcher: Batcher) -> None:
        inputs = [request(0, 3), request(1, 2), request(2, 7)]
        first = asyncio.ensure_future(batcher.submit(inputs[0]))  # holds the thread
        await asyncio.sleep(0)
        rest = [asyncio.ensure_future(batcher.submit(x)) for x in inputs[1:]]
        await asyncio.sleep(0)
        gate.set()
        for x, task in zip(inputs, [first, *rest], strict=True):
            check_outputs(x, await task)

    run_with(params, model, scenario)
    assert model.sizes == [3, 4, 4, 1]
    assert list(model.batches[1][:, 0]) == [1, 1, 2, 2]  # request 2 fills the open batch


def test_queue_capacity_counts_split_pieces() -> None:
    gate = threading.Event()
    model = Model(gate=gate)
    params = BatchingParameters(
        max_batch_size=4,
        num_batch_threads=1,
        max_enqueued_batches=2,
        enable_large_batch_splitting=True,
        max_execution_batch_size=2,
    )

    async def scenario(batcher: Batcher) -> None:
        running = asyncio.ensure_future(batcher.submit(request(0, 2)))  # holds the thread
        await asyncio.sleep(0)
        small = asyncio.ensure_future(batcher.submit(request(1)))
        await asyncio.sleep(0)
        # 1 free slot in the open batch + 1 more batch of 2 = room for 3 rows, not 4.
        with pytest.raises(QueueFullError):
            await batcher.submit(request(2, 4))
        split = asyncio.ensure_future(batcher.submit(request(3, 3)))
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError):
            await batcher.submit(request(4))
        gate.set()
        check_outputs(request(0, 2), await running)
        check_outputs(request(1), await small)
        check_outputs(request(3, 3), await split)

    run_with(params, model, scenario)
    assert model.sizes == [2, 2, 2]
    assert list(model.batches[1][:, 0]) == [1, 3]


def test_variable_length_inputs_are_padded_with_each_tensors_first_element() -> None:
    model = Model()
    params = BatchingParameters(
        max_batch_size=8, batch_timeout_micros=100_000, pad_variable_length_inputs=True
    )

    async def scenario(batcher: Batcher) -> None:
        short = {"x": np.array([[7, 8]], dtype=np.float32)}
        long = {"x": np.array([[1, 2, 3, 4]], dtype=np.float32)}
        out_short, out_long = await asyncio.gather(batcher.submit(short), batcher.submit(long))
        np.testing.assert_array_equal(out_short["y"], [[14, 16, 14, 14]])
        np.testing.assert_array_equal(out_long["y"], [[2, 4, 6, 8]])

    run_with(params, model, scenario)
    assert model.sizes == [2]


def test_mismatched_shapes_without_padding_fail_only_the_odd_request() -> None:
    model = Model()
    params = BatchingParameters(max_batch_size=8, batch_timeout_micros=100_000)

    async def scenario(batcher: Batcher) -> None:
        good, odd = await asyncio.gather(
            batcher.submit(request(1, width=3)),
            batcher.submit(request(2, width=5)),
            return_exceptions=True,
        )
        check_outputs(request(1, width=3), good)
        assert isinstance(odd, InputShapeError)
        assert isinstance(odd, BatchSizeError)  # so API layers answer INVALID_ARGUMENT
        assert "pad_variable_length_inputs" in str(odd)

    run_with(params, model, scenario)
    assert model.sizes == [1]


def test_malformed_requests_are_rejected_before_queueing() -> None:
    model = Model()

    async def scenario(batcher: Batcher) -> None:
        ragged = {"x": np.zeros((2, 3)), "z": np.zeros((3, 3))}
        for bad, message in (
            (ragged, "equal 0th-dimension size"),
            ({"x": np.zeros((0, 3))}, "0 rows"),
            ({"x": np.float32(1)}, "scalar"),
            ({}, "no input tensors"),
        ):
            with pytest.raises(BatchSizeError, match=message):
                await batcher.submit(bad)

    run_with(BatchingParameters(max_batch_size=8), model, scenario)
    assert model.sizes == []


def test_model_errors_reach_every_request_of_the_batch_and_batching_goes_on() -> None:
    calls = 0

    def flaky(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("model exploded")
        return {"y": inputs["x"] * 2, "first": inputs["x"][:, 0].copy()}

    params = BatchingParameters(max_batch_size=8, batch_timeout_micros=50_000)

    async def scenario(batcher: Batcher) -> None:
        results = await asyncio.gather(
            *(batcher.submit(request(i)) for i in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in results)
        check_outputs(request(9), await batcher.submit(request(9)))

    run_with(params, flaky, scenario)  # type: ignore[arg-type]
    assert calls == 2


def test_cancelled_request_does_not_disturb_its_batch() -> None:
    gate = threading.Event()
    model = Model(gate=gate)
    params = BatchingParameters(max_batch_size=8, num_batch_threads=1)

    async def scenario(batcher: Batcher) -> None:
        first = asyncio.ensure_future(batcher.submit(request(0)))
        await asyncio.sleep(0)
        doomed = asyncio.ensure_future(batcher.submit(request(1)))
        kept = asyncio.ensure_future(batcher.submit(request(2)))
        await asyncio.sleep(0)
        doomed.cancel()
        gate.set()
        check_outputs(request(0), await first)
        check_outputs(request(2), await kept)
        assert doomed.cancelled()

    run_with(params, model, scenario)
    assert model.sizes == [1, 2]


def test_many_random_requests_each_get_their_own_rows_back() -> None:
    model = Model(delay=0.001)
    params = BatchingParameters(
        max_batch_size=16,
        batch_timeout_micros=2_000,
        num_batch_threads=2,
        max_enqueued_batches=1000,
        allowed_batch_sizes=(4, 8, 16),
    )
    rng = random.Random(3)

    async def client(batcher: Batcher, rid: int) -> None:
        await asyncio.sleep(rng.random() * 0.05)
        x = {"x": np.random.default_rng(rid).normal(size=(rng.randint(1, 5), 3))}
        check_outputs(x, await batcher.submit(x))

    async def scenario(batcher: Batcher) -> None:
        await asyncio.gather(*(client(batcher, rid) for rid in range(300)))

    run_with(params, model, scenario)
    assert set(model.sizes) <= {4, 8, 16}
    assert len(model.batches) < 300  # requests were batched together


def test_close_finishes_queued_work_and_refuses_new_requests() -> None:
    model = Model(delay=0.01)
    params = BatchingParameters(
        max_batch_size=2, batch_timeout_micros=30_000_000, num_batch_threads=1
    )

    async def main() -> None:
        batcher = Batcher(params, model, metrics=ServerMetrics("m").batching, model_name="m")
        inputs = [request(i) for i in range(5)]  # the fifth waits alone for a 30 s timeout
        tasks = [asyncio.ensure_future(batcher.submit(x)) for x in inputs]
        await asyncio.sleep(0)
        start = time.monotonic()
        await asyncio.wait_for(batcher.close(), timeout=10)
        assert time.monotonic() - start < 5  # close flushed the open batch
        assert all(task.done() for task in tasks)
        for x, task in zip(inputs, tasks, strict=True):
            check_outputs(x, task.result())
        with pytest.raises(BatcherClosedError, match="shutting down"):
            await batcher.submit(request(9))
        await batcher.close()  # idempotent

    asyncio.run(main())
    assert sorted(model.sizes) == [1, 2, 2]


def test_unbatched_runs_each_request_alone_in_parallel_without_batching_metrics() -> None:
    model = Model(barrier=threading.Barrier(2))
    metrics = ServerMetrics("m")

    async def main() -> None:
        runner = Unbatched(model, model_name="m", num_threads=2)
        inputs = [request(i, rows) for i, rows in enumerate((1, 3, 2, 1))]
        outputs = await asyncio.gather(*(runner.submit(x) for x in inputs))
        for x, y in zip(inputs, outputs, strict=True):
            check_outputs(x, y)
        await runner.close()
        with pytest.raises(BatcherClosedError):
            await runner.submit(request(9))

    asyncio.run(main())
    assert sorted(model.sizes) == [1, 1, 2, 3]
    assert model.max_active == 2
    # TF Serving without a batching session never creates the batch-size series.
    assert "processed_batch_size" not in metrics.render()
