"""`--enable_batching` off: every request runs alone, as TF Serving runs it without a
batching session, but still records the batching series so the tuner reads the same metrics
with and without batching."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from model_server.batch_tensors import request_size
from model_server.batcher import BatcherClosedError, Outputs, RunFn
from model_server.batching_parameters import default_num_batch_threads
from model_server.metrics import BatchingMetrics

__all__ = ["Unbatched"]


class Unbatched:
    """`--enable_batching` off: every request runs alone on a pool of one thread per core.

    Batching metrics are still recorded (batch size = the request's rows, no padding), so
    the tuner reads the same series with and without batching.
    """

    def __init__(
        self,
        run: RunFn,
        *,
        metrics: BatchingMetrics,
        model_name: str,
        num_threads: int | None = None,
    ) -> None:
        self._run = run
        self._model_name = model_name
        self._metrics = metrics.for_model(model_name)
        self._pool = ThreadPoolExecutor(
            num_threads or default_num_batch_threads(), thread_name_prefix="session_inter_op"
        )
        self._closed = False

    async def submit(self, inputs: dict[str, np.ndarray]) -> Outputs:
        if self._closed:
            raise BatcherClosedError(
                f"model {self._model_name!r} no longer accepts requests because the server is "
                "shutting down; retry once it is back"
            )
        size = request_size(inputs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._execute, inputs, size, loop.time())

    def _execute(self, inputs: dict[str, np.ndarray], size: int, enqueued: float) -> Outputs:
        # time.monotonic is the clock of asyncio's default event loop (`loop.time()`).
        self._metrics.record_batch(size, 0, ((time.monotonic() - enqueued) * 1e6,))
        return self._run(inputs)

    async def close(self) -> None:
        """Refuse new requests and wait for the running ones (even cancelled callers')."""
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)
