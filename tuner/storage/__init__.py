"""Where a study lives: Optuna's storage, its artifacts, our load samples and capacity steps."""

from tuner.storage.artifacts import attach_files, open_artifact_store
from tuner.storage.errors import (
    StorageError,
    StorageURLError,
    as_storage_error,
    has_password,
    safe_url,
)
from tuner.storage.optuna_storage import open_storage
from tuner.storage.samples import SAMPLES_TABLE, SampleStore, StoredSample
from tuner.storage.steps import STEPS_TABLE, StoredStep

__all__ = [
    "SAMPLES_TABLE",
    "STEPS_TABLE",
    "SampleStore",
    "StorageError",
    "StorageURLError",
    "StoredSample",
    "StoredStep",
    "as_storage_error",
    "attach_files",
    "has_password",
    "open_artifact_store",
    "open_storage",
    "safe_url",
]
