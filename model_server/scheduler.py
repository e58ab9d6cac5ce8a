"""TF's SharedBatchScheduler as a clock-driven state machine: queues, batch threads, wake-ups.

Follows tensorflow/core/kernels/batching_util/shared_batch_scheduler.h (the scheduler TF
Serving 2.19 builds once per bundle factory, saved_model_bundle_factory.cc), so that the
*timing* of batches is TF Serving's, not only their contents:

- one server-wide set of `num_batch_threads` batch threads serves every queue (one queue per
  model version x signature), round-robin (`next_queue_to_schedule_`);
- a thread that finds no schedulable batch waits on a condition variable for at most
  kTimeoutMillis = 1 ms and then looks again; nothing fires when a batch's timeout expires,
  so an open batch leaves at the first re-check *after* its timeout: 250 us and 900 us
  behave alike;
- an enqueue wakes one thread only when the queue had no schedulable batch before
  (`schedulable_batch_`) and now has one: more than one batch queued, or the open batch is
  full, or its timeout has already passed (batch_timeout_micros 0: always);
- a thread that finishes a batch looks for the next one at once (PeriodicFunction, 0 interval).

Threads are simulated here: each has a `busy` flag and the time of its next re-check, and
the owner runs the batch and reports back with `batch_done`. A single timer (`arm`) stands
for all idle threads' re-checks; while every queue is empty and nothing is marked
schedulable, a re-check can change nothing, so the timer is off and each thread's phase is
kept and advanced by whole milliseconds when work arrives. Pure Python with an injected
clock, so tests drive it with a fake one.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["RECHECK_S", "Batch", "QueueFullError", "SchedulerQueue", "SharedScheduler"]

RECHECK_S = 0.001  # kTimeoutMillis in shared_batch_scheduler.h: "the smallest accepted granule"

QUEUE_FULL_MESSAGE = "The batch scheduling queue to which this task was submitted is full"


class QueueFullError(Exception):
    """Too many batches wait; maps to gRPC UNAVAILABLE / HTTP 503 like TF Serving."""

    def __init__(self, message: str = QUEUE_FULL_MESSAGE) -> None:
        super().__init__(message)


class Batch:
    __slots__ = ("size", "start", "tasks")

    def __init__(self) -> None:
        self.tasks: list[Any] = []
        self.size = 0
        self.start = 0.0  # open_batch_start_time_micros_: when the first task arrived


class SchedulerQueue:
    """One model-version x signature queue (internal::Queue in shared_batch_scheduler.h)."""

    def __init__(
        self,
        scheduler: SharedScheduler,
        *,
        max_input: int,
        max_execution: int,
        splitting: bool,
        timeout_s: float,
        max_enqueued: int,
    ) -> None:
        self.scheduler = scheduler
        self.max_input = max_input
        self.max_execution = max_execution
        self.splitting = splitting
        self.timeout_s = timeout_s
        self.max_enqueued = max_enqueued
        self.batches: collections.deque[Batch] = collections.deque([Batch()])
        self.closed = False
        self.schedulable = False  # schedulable_batch_
        self.in_flight = 0  # num_batches_being_processed_
        scheduler.queues.append(self)

    # --- enqueue side (Queue::Schedule) ---------------------------------------------------

    def check_capacity(self, size: int) -> None:
        """ValidateBatchTaskQueueCapacity: QueueFullError when the task cannot be queued."""
        open_size = self.batches[-1].size
        if self.splitting:
            capacity = (self.max_enqueued - len(self.batches)) * self.max_execution + (
                self.max_execution - open_size
            )
            if size > capacity:
                raise QueueFullError()
        elif open_size + size > self.max_input and len(self.batches) >= self.max_enqueued:
            raise QueueFullError()

    def add(self, tasks: Sequence[tuple[Any, int]]) -> None:
        """Place already-split (task, size) pieces, then wake a thread as Schedule() does."""
        now = self.scheduler.clock()
        batches = self.batches
        for task, size in tasks:
            batch = batches[-1]
            if batch.size + size > self.max_execution:
                batch = Batch()
                batches.append(batch)
            if not batch.size:
                batch.start = now
            batch.tasks.append(task)
            batch.size += size
        if not self.schedulable and (len(batches) > 1 or self._open_schedulable(now)):
            self.schedulable = True
            self.scheduler.notify_one(now)
        self.scheduler.rearm(now)

    def close(self) -> None:
        """No more tasks; the open batch becomes schedulable at the next re-check."""
        self.closed = True
        self.scheduler.rearm(self.scheduler.clock())

    # --- batch-thread side (Queue::ScheduleBatch) ------------------------------------------

    def _open_schedulable(self, now: float) -> bool:
        batch = self.batches[-1]
        if not batch.size:
            return False
        return (
            self.closed or batch.size >= self.max_execution or now >= batch.start + self.timeout_s
        )

    def schedule_batch(self, now: float) -> Batch | None:
        batches = self.batches
        if len(batches) == 1 and self._open_schedulable(now):
            batches.append(Batch())
        if len(batches) >= 2:
            self.in_flight += 1
            return batches.popleft()
        self.schedulable = False
        return None

    @property
    def has_tasks(self) -> bool:
        return len(self.batches) > 1 or self.batches[0].size > 0

    @property
    def empty(self) -> bool:
        return self.in_flight == 0 and not self.has_tasks


class _Thread:
    __slots__ = ("busy", "index", "next_check")

    def __init__(self, index: int, next_check: float) -> None:
        self.index = index
        self.busy = False
        self.next_check = next_check


class SharedScheduler:
    """The server-wide batch threads; `start(thread, queue, batch)` runs a batch elsewhere,
    `arm(when | None)` sets the one timer that stands for the idle threads' re-checks."""

    def __init__(
        self,
        num_threads: int,
        *,
        clock: Callable[[], float],
        start: Callable[[int, SchedulerQueue, Batch], None],
        arm: Callable[[float | None], None],
    ) -> None:
        if num_threads < 1:
            raise ValueError(f"num_batch_threads must be positive; was {num_threads}")
        self.clock = clock
        self._start = start
        self._arm = arm
        now = clock()
        self.threads = [_Thread(i, now + RECHECK_S) for i in range(num_threads)]
        self.queues: list[SchedulerQueue] = []
        self._next_queue = 0
        self._armed: float | None = None

    def add_queue(self, **options: Any) -> SchedulerQueue:
        return SchedulerQueue(self, **options)

    # --- ThreadLogic -----------------------------------------------------------------------

    def _thread_logic(self, thread: _Thread, now: float) -> bool:
        """Round-robin over the queues for one batch; without one, wait kTimeoutMillis."""
        queues = self.queues
        for _ in range(len(queues)):
            queue = queues[self._next_queue]
            self._next_queue = (self._next_queue + 1) % len(queues)
            batch = queue.schedule_batch(now)
            if batch is not None:
                thread.busy = True
                self._start(thread.index, queue, batch)
                return True
        thread.next_check = now + RECHECK_S
        return False

    def notify_one(self, now: float) -> None:
        """schedulable_batch_cv_.notify_one(): the longest-waiting idle thread looks now."""
        idle = [t for t in self.threads if not t.busy]
        if idle:
            self._thread_logic(min(idle, key=lambda t: t.next_check), now)

    def batch_done(self, index: int) -> None:
        """A thread finished its batch and looks for the next one at once."""
        now = self.clock()
        thread = self.threads[index]
        thread.busy = False
        self._thread_logic(thread, now)
        self.rearm(now)

    def on_timer(self) -> None:
        """The idle threads whose re-check is due look for work."""
        now = self.clock()
        self._armed = -1.0  # the timer fired: whatever comes next must be armed afresh
        for thread in self.threads:
            if not thread.busy and thread.next_check <= now:
                self._thread_logic(thread, now)
        self.rearm(now)

    def _quiescent(self) -> bool:
        return not any(q.schedulable or q.has_tasks for q in self.queues)

    def rearm(self, now: float) -> None:
        """Keep the timer on the earliest idle re-check while a re-check could matter."""
        when: float | None = None
        if not self._quiescent():
            for thread in self.threads:
                if thread.busy:
                    continue
                if thread.next_check < now:  # phase kept while the timer was off
                    periods = math.ceil((now - thread.next_check) / RECHECK_S)
                    thread.next_check += periods * RECHECK_S
                if when is None or thread.next_check < when:
                    when = thread.next_check
        if when != self._armed:
            self._armed = when
            self._arm(when)

    @property
    def busy_threads(self) -> int:
        return sum(t.busy for t in self.threads)
