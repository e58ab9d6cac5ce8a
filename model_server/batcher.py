"""Server-side batching with TF Serving's semantics (SharedBatchScheduler + BatchingSession).

The scheduling rules (server-wide batch threads, per-signature queues, the 1 ms re-check,
wake-ups at enqueue, max_enqueued_batches) live in `scheduler.py`; this module is the
asyncio side of it and BatchingSession's side of a batch. Scheduling state lives on the
event loop that serves gRPC and REST, so it needs no lock; whole batches go to a pool of
exactly `num_batch_threads` threads, where inputs are concatenated once, padded, run
(blocking TensorFlow code that releases the GIL) and split back per request. A batch thread
reports back with one `call_soon_threadsafe` per batch, not per request.

- a request of k rows counts as k tasks and never straddles batches; k > `max_batch_size` is
  rejected with `BatchSizeError`, even with `enable_large_batch_splitting` (TF checks the
  input limit first); splitting instead cuts requests across batches so that no executed
  batch exceeds `max_execution_batch_size`, and the pieces' outputs are concatenated back.
BatchingSession's rules (tensorflow_serving/batching/batching_session.cc): pad to the next
`allowed_batch_sizes` entry by repeating the first row; with `pad_variable_length_inputs`,
pad each request's tensor to the batch's largest non-batch dims with that tensor's first
element (AddPadding), else a mismatch is `InputShapeError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from model_server.batch_tensors import (
    BatchOutputError,
    BatchSizeError,
    InputShapeError,
    find_mismatch,
    merge_inputs,
    request_size,
    split_rows,
)
from model_server.batching_parameters import (
    BatchingParameters,
    round_to_allowed_batch_size,
)
from model_server.metrics import BatchingMetrics
from model_server.scheduler import (
    QUEUE_FULL_MESSAGE,
    Batch,
    QueueFullError,
    SchedulerQueue,
    SharedScheduler,
)

__all__ = [
    "QUEUE_FULL_MESSAGE",
    "BatchOutputError",
    "BatchSizeError",
    "BatchThreads",
    "Batcher",
    "BatcherClosedError",
    "InputShapeError",
    "QueueFullError",
    "RunFn",
]

logger = logging.getLogger(__name__)

RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
Outputs = dict[str, np.ndarray]


class BatcherClosedError(QueueFullError):
    """Submitted after `close()`; a QueueFullError so API layers answer UNAVAILABLE too."""


class _Request:
    __slots__ = ("future", "parts", "remaining")

    def __init__(self, future: asyncio.Future[Outputs]) -> None:
        self.future = future
        self.parts: list[Outputs | None] | None = None  # only for requests split into pieces
        self.remaining = 1


class _Task:
    __slots__ = ("enqueued", "index", "inputs", "request", "size")

    def __init__(
        self,
        inputs: dict[str, np.ndarray],
        size: int,
        enqueued: float,
        request: _Request,
        index: int = 0,
    ) -> None:
        self.inputs = inputs
        self.size = size
        self.enqueued = enqueued
        self.request = request
        self.index = index


class BatchThreads:
    """The server's `num_batch_threads` batch threads on the event loop's side.

    Owns the SharedScheduler, the thread pool that runs its batches and the one asyncio
    timer standing for the idle threads' 1 ms re-checks. Every queue of the server (one
    Batcher per signature) shares it, as every TF Serving queue shares one scheduler.
    """

    def __init__(self, num_threads: int, thread_pool_name: str | None = None) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._pool = ThreadPoolExecutor(
            num_threads, thread_name_prefix=thread_pool_name or "batch_threads"
        )
        self.scheduler = SharedScheduler(
            num_threads, clock=self._now, start=self._start, arm=self._arm
        )
        self._batchers: dict[int, Batcher] = {}

    def _now(self) -> float:
        return self.loop.time() if self._loop is not None else time.monotonic()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def add_queue(self, batcher: Batcher, **options: Any) -> SchedulerQueue:
        queue = self.scheduler.add_queue(**options)
        self._batchers[id(queue)] = batcher
        return queue

    def _start(self, thread: int, queue: SchedulerQueue, batch: Batch) -> None:
        batcher = self._batchers[id(queue)]
        self._pool.submit(batcher.execute, thread, batch.tasks, self.loop.time())

    def _arm(self, when: float | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if when is not None:
            self._timer = self.loop.call_at(when, self.scheduler.on_timer)

    def finished(self, thread: int, queue: SchedulerQueue) -> None:
        queue.in_flight -= 1
        self.scheduler.batch_done(thread)

    def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pool.shutdown(wait=False)


class Batcher:
    """One batching queue (per model version and signature) served by the shared threads."""

    def __init__(
        self,
        params: BatchingParameters,
        run: RunFn,
        *,
        metrics: BatchingMetrics,
        model_name: str,
        threads: BatchThreads | None = None,
    ) -> None:
        self._run = run
        self._model_name = model_name
        self._metrics = metrics
        self._max_input = params.effective_max_batch_size
        self._max_exec = params.effective_max_execution_batch_size
        self._split = params.large_batch_splitting
        self._allowed = params.allowed_batch_sizes
        self._pad_variable = params.pad_variable_length_inputs
        self._own_threads = threads is None
        self._threads = threads or BatchThreads(
            params.effective_num_batch_threads, params.thread_pool_name
        )
        self._queue = self._threads.add_queue(
            self,
            max_input=self._max_input,
            max_execution=self._max_exec,
            splitting=self._split,
            timeout_s=params.effective_batch_timeout_micros / 1e6,
            max_enqueued=params.effective_max_enqueued_batches,
        )
        self._closed = False
        self._drained: asyncio.Event | None = None

    async def submit(self, inputs: dict[str, np.ndarray]) -> Outputs:
        """Queue the request and wait for its rows of the batch's outputs."""
        return await self._enqueue(inputs)

    async def close(self) -> None:
        """Stop accepting requests, flush the open batch, wait for every queued batch."""
        if not self._closed:
            self._closed = True
            self._queue.close()
        if not self._queue.empty:
            if self._drained is None:
                self._drained = asyncio.Event()
            await self._drained.wait()
        if self._own_threads:
            self._threads.shutdown()

    # --- event-loop side -------------------------------------------------------------------

    def _enqueue(self, inputs: dict[str, np.ndarray]) -> asyncio.Future[Outputs]:
        if self._closed:
            raise BatcherClosedError(
                f"the batching queue of model {self._model_name!r} is closed because the "
                "server is shutting down; retry once it is back"
            )
        size = request_size(inputs)
        # BatchingSession::ComputeInputSize records every input tensor's rows before queueing.
        self._metrics.record_input(inputs)
        if size > self._max_input:
            raise BatchSizeError(
                f"Task size {size} is larger than maximum input batch size {self._max_input}; "
                f"send at most {self._max_input} examples per request or raise max_batch_size"
            )
        queue = self._queue
        queue.check_capacity(size)
        loop = self._threads.loop
        now = loop.time()
        request = _Request(loop.create_future())
        room = self._max_exec - queue.batches[-1].size
        if size <= room or not self._split:
            queue.add(((_Task(inputs, size, now, request), size),))
        else:
            bounds = [0, room] if room > 0 else [0]
            bounds.extend(range(bounds[-1] + self._max_exec, size, self._max_exec))
            bounds.append(size)
            request.parts = [None] * (len(bounds) - 1)
            request.remaining = len(bounds) - 1
            pieces = []
            for index in range(len(bounds) - 1):
                lo, hi = bounds[index], bounds[index + 1]
                piece = {name: value[lo:hi] for name, value in inputs.items()}
                pieces.append((_Task(piece, hi - lo, now, request, index), hi - lo))
            queue.add(pieces)
        return request.future

    def _finish(
        self, thread: int, tasks: list[_Task], results: list[Outputs | Exception] | Exception
    ) -> None:
        for i, task in enumerate(tasks):
            result = results if isinstance(results, Exception) else results[i]
            request = task.request
            future = request.future
            if isinstance(result, Exception):
                if not future.done():
                    future.set_exception(result)
            elif request.parts is None:
                if not future.done():
                    future.set_result(result)
            else:
                request.parts[task.index] = result
                request.remaining -= 1
                if request.remaining == 0 and not future.done():
                    parts: list[Outputs] = request.parts  # type: ignore[assignment]
                    future.set_result(
                        {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
                    )
        self._threads.finished(thread, self._queue)
        if self._drained is not None and self._queue.empty:
            self._drained.set()

    # --- batch-thread side -----------------------------------------------------------------

    def execute(self, thread: int, tasks: list[_Task], dequeued: float) -> None:
        results: list[Outputs | Exception] | Exception
        try:
            results = self._process(tasks, dequeued)
        except Exception as exc:  # delivered to every request of the batch
            logger.warning(
                "event=batch_failed model=%s tasks=%d error=%r", self._model_name, len(tasks), exc
            )
            results = exc
        # A closed event loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._threads.loop.call_soon_threadsafe(self._finish, thread, tasks, results)

    def _process(self, tasks: list[_Task], dequeued: float) -> list[Outputs | Exception]:
        results: list[Any] = [None] * len(tasks)
        live = [0]
        reference = tasks[0].inputs
        expected = [(name, value.dtype, value.shape[1:]) for name, value in reference.items()]
        for i in range(1, len(tasks)):
            inputs = tasks[i].inputs
            if [(name, value.dtype, value.shape[1:]) for name, value in inputs.items()] == expected:
                live.append(i)  # the common case, checked cheaply
                continue
            problem = find_mismatch(reference, inputs, self._pad_variable)
            if problem is None:
                live.append(i)
            else:  # only this request fails (TF would fail the whole batch)
                results[i] = InputShapeError(problem)
        sizes = [tasks[i].size for i in live]
        input_size = sum(sizes)
        target = input_size
        if self._allowed:
            target = round_to_allowed_batch_size(self._allowed, input_size)
        batch_inputs = merge_inputs(
            [tasks[i].inputs for i in live], target - input_size, self._pad_variable
        )
        # BatchingSession::ProcessBatch: queueing delay per task, then MergeInputTensors' sizes.
        self._metrics.record_batch(
            target, target - input_size, [(dequeued - t.enqueued) * 1e6 for t in tasks]
        )
        outputs = self._run(batch_inputs)
        for i, rows in zip(live, split_rows(outputs, sizes, target), strict=True):
            results[i] = rows
        return results
