"""The one model this server serves: its load state, its version and a batcher per signature.

Shared by the gRPC and REST front ends, so both resolve model specs, report states and
queue requests identically.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

import grpc
import numpy as np

from model_server.batcher import Batcher, BatchSizeError, BatchThreads, QueueFullError
from model_server.batching_parameters import BatchingParameters
from model_server.errors import ServingError, invalid_argument, not_found, unavailable
from model_server.metrics import ServerMetrics
from model_server.model import LoadedModel, Signature
from model_server.signature_spec import DEFAULT_SIGNATURE
from model_server.unbatched import Unbatched

log = logging.getLogger("model_server")


class State(enum.IntEnum):
    """ModelVersionStatus.State's numbers, so they can be copied into responses as they are."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass
class Resolved:
    model: LoadedModel
    signature: Signature
    batcher: Batcher | Unbatched


def version_for_label(label: str) -> int:
    """Version labels come from a model config file, which this server does not read, so every
    label is unknown; TF Serving answers an unknown label with INVALID_ARGUMENT."""
    raise invalid_argument(f"Unrecognized servable version label: {label}")


class Servable:
    def __init__(
        self, name: str, batching: BatchingParameters | None, metrics: ServerMetrics
    ) -> None:
        self.name = name
        self.batching = batching
        self.metrics = metrics
        self.state = State.START
        self.error = ""
        self.model: LoadedModel | None = None
        self.version: int | None = None  # known before the load ends, for GetModelStatus
        self._batchers: dict[str, Batcher | Unbatched] = {}
        # One SharedBatchScheduler per bundle factory (saved_model_bundle_factory.cc), i.e.
        # server-wide: every signature's queue shares these num_batch_threads threads.
        self._threads = (
            BatchThreads(batching.effective_num_batch_threads, batching.thread_pool_name)
            if batching is not None
            else None
        )

    def set_loaded(self, model: LoadedModel) -> None:
        for key, signature in model.signatures.items():
            if self.batching is None:
                self._batchers[key] = Unbatched(signature.run, model_name=self.name)
            else:
                self._batchers[key] = Batcher(
                    self.batching,
                    signature.run,
                    metrics=self.metrics.batching,
                    model_name=self.name,
                    threads=self._threads,
                )
        self.model = model
        self.version = model.version
        self.state = State.AVAILABLE

    def resolve(self, name: str, version: int | None, signature_name: str) -> Resolved:
        """The version and signature a request asks for; NOT_FOUND as TF Serving words it:
        "Servable not found for request: " + ServableRequest::DebugString(), i.e. Latest(NAME)
        or Specific(NAME, N) (tensorflow_serving/core/manager.h), from
        BasicManager::ServingMap::GetUntypedServableHandle (core/basic_manager.cc); Predict
        and GetModelMetadata, gRPC and REST (HTTP 404), all look their servable up there."""
        if name != self.name:
            raise not_found(f"Servable not found for request: Latest({name})")
        if self.model is None or self.state != State.AVAILABLE:
            raise unavailable(f"Model {name} is not available yet (state {self.state.name})")
        if version is not None and version != self.model.version:
            raise not_found(f"Servable not found for request: Specific({name}, {version})")
        key = signature_name or DEFAULT_SIGNATURE
        if key not in self.model.signatures:
            raise not_found(
                f"Serving signature key {key!r} not found; the model has "
                f"{sorted(self.model.signatures)}"
            )
        return Resolved(self.model, self.model.signatures[key], self._batchers[key])

    async def predict(
        self, resolved: Resolved, inputs: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Queue the request; batcher failures become the statuses TF Serving returns."""
        checked = resolved.signature.check(inputs)
        try:
            return await resolved.batcher.submit(checked)
        except QueueFullError as exc:
            raise ServingError(grpc.StatusCode.UNAVAILABLE, str(exc)) from None
        except BatchSizeError as exc:
            raise invalid_argument(str(exc)) from None
        except ServingError:  # e.g. a TensorFlow op error, with its own canonical code
            raise
        except Exception as exc:
            log.exception("event=predict_failed model=%s", self.name)
            raise ServingError(
                grpc.StatusCode.INTERNAL, f"running the model failed: {exc}"
            ) from exc

    async def close(self) -> None:
        self.state = State.UNLOADING if self.model is not None else State.END
        for batcher in self._batchers.values():
            await batcher.close()
        if self._threads is not None:
            self._threads.shutdown()
        self.state = State.END
