"""`--enable_batching` off: every request runs alone, as TF Serving runs it without a
batching session; like TF Serving, it records no batching_session metrics then."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from model_server.batch_tensors import request_size
from model_server.batcher import BatcherClosedError, Outputs, RunFn
from model_server.batching_parameters import default_num_batch_threads

__all__ = ["Unbatched"]


class Unbatched:
    """`--enable_batching` off: every request runs alone on a pool of one thread per core."""

    def __init__(
        self,
        run: RunFn,
        *,
        model_name: str,
        num_threads: int | None = None,
    ) -> None:
        self._run = run
        self._model_name = model_name
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
        request_size(inputs)  # inputs disagreeing on their batch size: INVALID_ARGUMENT
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run, inputs)

    async def close(self) -> None:
        """Refuse new requests and wait for the running ones (even cancelled callers')."""
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)
