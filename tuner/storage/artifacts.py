"""Trial files (batching file, Locust CSVs, server log) in Optuna's artifact store.

Optuna keeps an artifact's metadata as a system attribute of the trial and its bytes in the
store, which is exactly what optuna-dashboard reads:
`optuna-dashboard sqlite:///tuning.db --artifact-dir artifacts` lists and shows them per trial.
"""

from __future__ import annotations

import logging
import mimetypes
import tempfile
from collections.abc import Iterable
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage

from tuner.storage.errors import StorageError

__all__ = ["attach_files", "open_artifact_store", "unwritable"]

log = logging.getLogger(__name__)

# Shown as text in the dashboard; mimetypes knows neither, so they would be octet-stream.
_TEXT_SUFFIXES = {".log", ".txt", ".pbtxt", ".toml", ".jsonl", ".out", ".err"}

StudyOrTrial = optuna.Study | optuna.Trial | optuna.trial.FrozenTrial


def open_artifact_store(path: Path) -> FileSystemArtifactStore:
    """A file-system artifact store at `path`, created if missing."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the artifact directory {path} ({exc.strerror or exc}); "
            "choose a writable directory"
        ) from None
    return FileSystemArtifactStore(str(path))


def unwritable(artifact_store: object) -> str | None:
    """Why files cannot be written into a file-system store right now (its directory gone,
    replaced by a file, read-only, full), or None. Checked by writing, since permissions do
    not stop root."""
    base = getattr(artifact_store, "_base_path", None)
    if base is None:
        return None
    try:
        with tempfile.NamedTemporaryFile(dir=base, prefix=".write-check-") as probe:
            probe.write(b"x")
            probe.flush()
    except OSError as exc:
        return f"cannot write into the artifact directory {base} ({exc.strerror or exc})"
    return None


def _mimetype(path: Path) -> str | None:
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed is None and path.suffix.lower() in _TEXT_SUFFIXES:
        return "text/plain"
    return guessed


def attach_files(
    study_or_trial: StudyOrTrial,
    storage: BaseStorage | None,
    artifact_store: FileSystemArtifactStore,
    paths: Iterable[Path],
) -> list[str]:
    """Upload each existing file; returns the artifact ids in the order of `paths`.

    Missing files are skipped with a log line rather than failing: a trial whose server never
    started has no server log, and its other files must still be recorded. `storage` may be
    None for an optuna.Trial or Study (their own storage is used); a FrozenTrial needs it.
    Optuna refuses changes to finished trials, so attach files before `study.tell` / before
    the objective returns or raises (a failed trial included); afterwards this raises
    StorageError.
    """
    ids: list[str] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            log.warning("event=artifact_missing path=%s", path)
            continue
        try:
            artifact_id = upload_artifact(
                artifact_store=artifact_store,
                file_path=str(path),
                study_or_trial=study_or_trial,
                storage=storage,
                mimetype=_mimetype(path),
            )
        except UpdateFinishedTrialError:
            number = getattr(study_or_trial, "number", "?")
            raise StorageError(
                f"cannot attach {path.name} to trial {number}: it has already finished; attach "
                "files before the trial is told its result (Optuna freezes finished trials)"
            ) from None
        ids.append(artifact_id)
    return ids
