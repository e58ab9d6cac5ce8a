"""Server-side batching with TF Serving's semantics (SharedBatchScheduler + BatchingSession).

All scheduling state lives on the asyncio event loop that serves gRPC and REST, so the queue
needs no lock: `submit` appends to the open batch, and whole batches go to a thread pool of
exactly `num_batch_threads` threads, where inputs are concatenated once, padded, run
(blocking TensorFlow code that releases the GIL) and split back per request. A batch thread
reports back with one `call_soon_threadsafe` per batch, not per request.

Queue rules, as in TF's shared_batch_scheduler.h:
- the queue is a list of batches whose last one is open; a task that does not fit in the open
  batch closes it and starts a new one, unless `max_enqueued_batches` batches (the open one
  included, executing ones not) already wait: then `QueueFullError`;
- a free batch thread takes the oldest closed batch, else the open batch once it is full,
  `batch_timeout_micros` have passed since its first task, or the batcher is closing (with a
  timeout of 0: whatever is queued when a thread becomes free);
- a request of k rows counts as k tasks and never straddles batches; k > `max_batch_size` is
  rejected with `BatchSizeError`, even with `enable_large_batch_splitting` (TF checks the
  input limit first); splitting instead cuts requests across batches so that no executed
  batch exceeds `max_execution_batch_size`, and the pieces' outputs are concatenated back.
BatchingSession's rules: pad to the next `allowed_batch_sizes` entry by repeating the first
row; with `pad_variable_length_inputs`, pad each request's tensor to the batch's largest
non-batch dims with that tensor's first element (TF's AddPadding), else a mismatch is
`InputShapeError`.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import logging
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
)
from model_server.metrics import BatchingMetrics

__all__ = [
    "QUEUE_FULL_MESSAGE",
    "BatchOutputError",
    "BatchSizeError",
    "Batcher",
    "BatcherClosedError",
    "InputShapeError",
    "QueueFullError",
    "RunFn",
]

logger = logging.getLogger(__name__)

RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
Outputs = dict[str, np.ndarray]

QUEUE_FULL_MESSAGE = "The batch scheduling queue to which this task was submitted is full"


class QueueFullError(Exception):
    """Too many batches wait; maps to gRPC UNAVAILABLE / HTTP 503 like TF Serving."""

    def __init__(self, message: str = QUEUE_FULL_MESSAGE) -> None:
        super().__init__(message)


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


class _Batch:
    __slots__ = ("size", "start", "tasks")

    def __init__(self) -> None:
        self.tasks: list[_Task] = []
        self.size = 0
        self.start = 0.0  # loop time of the first task; valid when size > 0


class Batcher:
    """One batching queue (per model version and signature) with its own batch threads."""

    def __init__(
        self, params: BatchingParameters, run: RunFn, *, metrics: BatchingMetrics, model_name: str
    ) -> None:
        self._run = run
        self._model_name = model_name
        self._metrics = metrics.for_model(model_name)
        self._max_input = params.effective_max_batch_size
        self._max_exec = params.effective_max_execution_batch_size
        self._split = params.large_batch_splitting
        self._timeout = params.effective_batch_timeout_micros / 1e6
        self._max_enqueued = params.effective_max_enqueued_batches
        self._allowed = params.allowed_batch_sizes
        self._pad_variable = params.pad_variable_length_inputs
        self._threads = params.effective_num_batch_threads
        self._free_threads = self._threads
        self._pool = ThreadPoolExecutor(
            self._threads, thread_name_prefix=params.thread_pool_name or "batch_threads"
        )
        self._batches: collections.deque[_Batch] = collections.deque([_Batch()])
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._closed = False
        self._drained: asyncio.Event | None = None

    async def submit(self, inputs: dict[str, np.ndarray]) -> Outputs:
        """Queue the request and wait for its rows of the batch's outputs."""
        return await self._enqueue(inputs)

    async def close(self) -> None:
        """Stop accepting requests, flush the open batch, wait for every queued batch."""
        if not self._closed:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._loop is not None:
                self._dispatch()
        if self._loop is not None and not self._idle():
            if self._drained is None:
                self._drained = asyncio.Event()
            await self._drained.wait()
        self._pool.shutdown(wait=False)

    # --- event-loop side -------------------------------------------------------------------

    def _enqueue(self, inputs: dict[str, np.ndarray]) -> asyncio.Future[Outputs]:
        if self._closed:
            raise BatcherClosedError(
                f"the batching queue of model {self._model_name!r} is closed because the "
                "server is shutting down; retry once it is back"
            )
        size = request_size(inputs)
        if size > self._max_input:
            raise BatchSizeError(
                f"Task size {size} is larger than maximum input batch size {self._max_input}; "
                f"send at most {self._max_input} examples per request or raise max_batch_size"
            )
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        batches = self._batches
        room = self._max_exec - batches[-1].size
        if size > room:
            if not self._split:
                if len(batches) >= self._max_enqueued:
                    raise QueueFullError()
            elif size > (self._max_enqueued - len(batches)) * self._max_exec + room:
                raise QueueFullError()
        now = loop.time()
        request = _Request(loop.create_future())
        if size <= room or not self._split:
            self._add(_Task(inputs, size, now, request), now)
        else:
            bounds = [0, room] if room > 0 else [0]
            bounds.extend(range(bounds[-1] + self._max_exec, size, self._max_exec))
            bounds.append(size)
            request.parts = [None] * (len(bounds) - 1)
            request.remaining = len(bounds) - 1
            for index in range(len(bounds) - 1):
                lo, hi = bounds[index], bounds[index + 1]
                piece = {name: value[lo:hi] for name, value in inputs.items()}
                self._add(_Task(piece, hi - lo, now, request, index), now)
        self._dispatch()
        return request.future

    def _add(self, task: _Task, now: float) -> None:
        batch = self._batches[-1]
        if batch.size + task.size > self._max_exec:
            batch = _Batch()
            self._batches.append(batch)
        if not batch.size:
            batch.start = now
        batch.tasks.append(task)
        batch.size += task.size

    def _dispatch(self) -> None:
        """Hand schedulable batches to free threads; arm the timer for the open batch."""
        batches = self._batches
        loop = self._loop
        assert loop is not None
        while self._free_threads:
            if len(batches) > 1:
                batch = batches.popleft()
            else:
                batch = batches[0]
                if not batch.size:
                    return
                deadline = batch.start + self._timeout
                # 1 us of slack: asyncio may run a timer a clock tick before its deadline.
                due = self._timeout == 0 or loop.time() + 1e-6 >= deadline
                if not (due or self._closed or batch.size >= self._max_exec):
                    self._arm_timer(deadline)
                    return
                batches[0] = _Batch()
            self._free_threads -= 1
            self._pool.submit(self._execute, batch.tasks, loop.time())

    def _arm_timer(self, when: float) -> None:
        if self._timer is not None:
            if self._timer_when == when:
                return
            self._timer.cancel()
        assert self._loop is not None
        self._timer_when = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    def _finish(self, tasks: list[_Task], results: list[Outputs | Exception] | Exception) -> None:
        self._free_threads += 1
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
        self._dispatch()
        if self._drained is not None and self._idle():
            self._drained.set()

    def _idle(self) -> bool:
        return (
            self._free_threads == self._threads
            and len(self._batches) == 1
            and not self._batches[0].size
        )

    # --- batch-thread side -----------------------------------------------------------------

    def _execute(self, tasks: list[_Task], dequeued: float) -> None:
        results: list[Outputs | Exception] | Exception
        try:
            results = self._process(tasks, dequeued)
        except Exception as exc:  # delivered to every request of the batch
            logger.warning(
                "event=batch_failed model=%s tasks=%d error=%r", self._model_name, len(tasks), exc
            )
            results = exc
        assert self._loop is not None
        # A closed event loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._finish, tasks, results)

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
            target = self._allowed[bisect.bisect_left(self._allowed, input_size)]
        batch_inputs = merge_inputs(
            [tasks[i].inputs for i in live], target - input_size, self._pad_variable
        )
        self._metrics.record_batch(
            input_size, target - input_size, [(dequeued - tasks[i].enqueued) * 1e6 for i in live]
        )
        outputs = self._run(batch_inputs)
        for i, rows in zip(live, split_rows(outputs, sizes, target), strict=True):
            results[i] = rows
        return results
