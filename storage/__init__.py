"""Where a study lives: Optuna's storage, its artifact store, and our per-interval samples."""

from storage.artifacts import attach_files, open_artifact_store
from storage.errors import StorageError, StorageURLError, as_storage_error
from storage.optuna_storage import open_storage
from storage.samples import SAMPLES_TABLE, SampleStore, StoredSample

__all__ = [
    "SAMPLES_TABLE",
    "SampleStore",
    "StorageError",
    "StorageURLError",
    "StoredSample",
    "as_storage_error",
    "attach_files",
    "open_artifact_store",
    "open_storage",
]
