"""The SharedBatchScheduler rules, driven by a fake clock (no sleeping, no threads).

Each rule cites tensorflow/core/kernels/batching_util/shared_batch_scheduler.h (the TF
version TF Serving 2.19 builds against): ThreadLogic's kTimeoutMillis = 1 re-check,
Queue::Schedule's wake-up condition, Queue::ScheduleBatch, ValidateBatchTaskQueueCapacity.
"""

from __future__ import annotations

import pytest

from model_server.scheduler import RECHECK_S, Batch, QueueFullError, SchedulerQueue, SharedScheduler


class Harness:
    """A scheduler on a fake clock; `started` lists (time, thread, queue index, batch size)."""

    def __init__(self, threads: int = 1) -> None:
        self.now = 0.0
        self.timer: float | None = None
        self.started: list[tuple[float, int, int, int]] = []
        self.scheduler = SharedScheduler(
            threads, clock=lambda: self.now, start=self._start, arm=self._arm
        )

    def _start(self, thread: int, queue: SchedulerQueue, batch: Batch) -> None:
        self.started.append((self.now, thread, self.scheduler.queues.index(queue), batch.size))

    def _arm(self, when: float | None) -> None:
        self.timer = when

    def queue(
        self, max_batch: int = 8, timeout_us: int = 0, max_enqueued: int = 10
    ) -> SchedulerQueue:
        return self.scheduler.add_queue(
            max_input=max_batch,
            max_execution=max_batch,
            splitting=False,
            timeout_s=timeout_us / 1e6,
            max_enqueued=max_enqueued,
        )

    def enqueue(self, queue: SchedulerQueue, size: int = 1) -> None:
        queue.check_capacity(size)
        queue.add([(object(), size)])

    def advance(self, until: float) -> None:
        """Move the clock to `until`, firing the re-check timer whenever it is due."""
        while self.timer is not None and self.timer <= until:
            self.now = self.timer
            self.scheduler.on_timer()
        self.now = until

    def finish(self, thread: int, queue: SchedulerQueue) -> None:
        queue.in_flight -= 1
        self.scheduler.batch_done(thread)


def test_sub_millisecond_timeouts_leave_at_the_same_re_check() -> None:
    # ThreadLogic: an idle thread waits kTimeoutMillis = 1 ms between looks, and nothing
    # fires when a timeout expires, so 250 us and 900 us both leave at the 1 ms re-check.
    leave_times = []
    for timeout_us in (250, 900):
        h = Harness()
        q = h.queue(timeout_us=timeout_us)
        h.now = 0.0001
        h.enqueue(q)
        assert h.started == []
        assert h.timer == pytest.approx(RECHECK_S)  # the thread's re-check, not the deadline
        h.advance(0.005)
        leave_times.append(h.started[0][0])
    assert leave_times == [pytest.approx(0.001), pytest.approx(0.001)]


def test_a_timeout_just_after_a_re_check_waits_for_the_next_one() -> None:
    h = Harness()
    q = h.queue(timeout_us=1_500)
    h.now = 0.0002
    h.enqueue(q)  # deadline 1.7 ms: the 1 ms re-check is too early, the 2 ms one takes it
    h.advance(0.010)
    assert [start[0] for start in h.started] == [pytest.approx(0.002)]


def test_zero_timeout_wakes_a_thread_at_enqueue() -> None:
    # Queue::Schedule: the open batch is schedulable once now >= start + timeout, i.e. at
    # once with batch_timeout_micros 0, so the enqueue notifies a thread.
    h = Harness()
    q = h.queue(timeout_us=0)
    h.now = 0.0003
    h.enqueue(q)
    assert h.started == [(pytest.approx(0.0003), 0, 0, 1)]


def test_a_full_batch_wakes_a_thread_at_enqueue() -> None:
    h = Harness()
    q = h.queue(max_batch=3, timeout_us=50_000)
    h.enqueue(q, 1)
    h.enqueue(q, 1)
    assert h.started == []
    h.enqueue(q, 1)
    assert h.started == [(0.0, 0, 0, 3)]


def test_no_second_wake_up_while_the_queue_is_marked_schedulable() -> None:
    # schedulable_batch_ stays true after a thread took a batch; only a ScheduleBatch that
    # finds nothing clears it. So the next full batch waits for the other thread's re-check.
    h = Harness(threads=2)
    q = h.queue(max_batch=2, timeout_us=50_000)
    h.enqueue(q, 2)
    assert len(h.started) == 1
    h.now = 0.0004
    h.enqueue(q, 2)
    assert len(h.started) == 1  # the idle thread was not woken
    h.advance(0.0011)
    assert [(t, thread) for t, thread, _, _ in h.started][1] == (pytest.approx(0.001), 1)


def test_more_than_one_queued_batch_wakes_a_thread() -> None:
    h = Harness(threads=1)
    q = h.queue(max_batch=4, timeout_us=50_000)
    h.enqueue(q, 3)
    assert h.started == []
    h.enqueue(q, 2)  # does not fit: the open batch closes, two batches are queued
    assert h.started == [(0.0, 0, 0, 3)]


def test_a_thread_that_finishes_takes_the_next_batch_at_once() -> None:
    h = Harness(threads=1)
    q = h.queue(max_batch=1, timeout_us=0)
    for _ in range(3):
        h.enqueue(q)
    assert len(h.started) == 1
    h.now = 0.0102
    h.finish(0, q)
    assert h.started[1] == (pytest.approx(0.0102), 0, 0, 1)


def test_one_pool_of_threads_serves_every_queue_round_robin() -> None:
    # One SharedBatchScheduler per server (saved_model_bundle_factory.cc): two signatures'
    # queues share num_batch_threads, and ThreadLogic visits queues in turn.
    h = Harness(threads=1)
    a = h.queue(max_batch=1)
    b = h.queue(max_batch=1)
    for _ in range(2):
        h.enqueue(a)
        h.enqueue(b)
    assert [queue for _, _, queue, _ in h.started] == [0]
    for _ in range(3):
        h.finish(0, h.scheduler.queues[h.started[-1][2]])
    assert [queue for _, _, queue, _ in h.started] == [0, 1, 0, 1]
    assert h.scheduler.busy_threads == 1


def test_queue_full_when_max_enqueued_batches_wait() -> None:
    # ValidateBatchTaskQueueCapacity without splitting: a task that needs a new batch is
    # refused with UNAVAILABLE once max_enqueued_batches batches (open one included) wait.
    h = Harness(threads=1)
    q = h.queue(max_batch=1, timeout_us=50_000, max_enqueued=2)
    h.enqueue(q)  # taken by the thread at once (full batch)
    h.enqueue(q)
    h.enqueue(q)
    with pytest.raises(QueueFullError, match="queue to which this task was submitted is full"):
        h.enqueue(q)


def test_split_capacity_counts_rows_across_batches() -> None:
    h = Harness(threads=1)
    q = h.scheduler.add_queue(
        max_input=8, max_execution=2, splitting=True, timeout_s=0.05, max_enqueued=2
    )
    q.check_capacity(4)  # two empty batches of 2 rows
    q.add([(object(), 1)])
    with pytest.raises(QueueFullError):
        q.check_capacity(4)  # 1 free row in the open batch + 1 more batch of 2 = 3


def test_no_timer_runs_while_nothing_is_queued_and_phases_are_kept() -> None:
    h = Harness(threads=1)
    h.queue(timeout_us=3_000)
    assert h.timer is None
    q = h.scheduler.queues[0]
    h.now = 0.0105  # ten re-checks went by unobserved; the phase stays on whole ms
    h.enqueue(q)
    assert h.timer == pytest.approx(0.011)
    h.advance(0.020)
    assert h.started[0][0] == pytest.approx(0.014)  # deadline 13.5 ms -> the 14 ms re-check
    h.finish(0, q)
    h.advance(0.030)
    assert h.timer is None  # quiescent again once a re-check cleared the flag


def test_closing_a_queue_flushes_its_open_batch_at_the_next_re_check() -> None:
    h = Harness(threads=1)
    q = h.queue(timeout_us=10_000_000)
    h.enqueue(q)
    q.close()
    h.advance(0.0015)
    assert h.started == [(pytest.approx(0.001), 0, 0, 1)]


def test_num_batch_threads_must_be_positive() -> None:
    with pytest.raises(ValueError, match="num_batch_threads must be positive"):
        SharedScheduler(0, clock=lambda: 0.0, start=lambda *a: None, arm=lambda w: None)
