"""Trial files in Optuna's artifact store, listed and served the way optuna-dashboard shows them."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import optuna
import pytest
from optuna.artifacts import download_artifact, get_all_artifact_meta
from optuna_dashboard import wsgi

from tuner.storage import StorageError, attach_files, open_artifact_store, open_storage
from tuner.storage.artifacts import unwritable

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _trial_files(workdir: Path) -> list[Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    batching = workdir / "batching_parameters.txt"
    batching.write_text("max_batch_size { value: 32 }\n")
    csv = workdir / "locust_stats.csv"
    csv.write_text("Type,Name,Request Count\nPOST,/predict,120\n")
    log = workdir / "server.log"
    log.write_text("event=ready port=8500\n")
    return [batching, csv, log]


def test_files_attached_to_a_running_trial_are_listed_and_downloadable(
    tmp_path: Path, database_url: str
) -> None:
    storage = open_storage(database_url)
    store = open_artifact_store(tmp_path / "artifacts" / "nested")
    study = optuna.create_study(storage=storage, study_name="s")
    files = _trial_files(tmp_path / "trial-0")
    ids: list[str] = []

    def objective(trial: optuna.Trial) -> float:
        ids.extend(attach_files(trial, None, store, files))
        return 1.0

    study.optimize(objective, n_trials=1)

    assert len(ids) == 3
    metas = get_all_artifact_meta(study.trials[0], storage=storage)
    by_name = {m.filename: m for m in metas}
    assert set(by_name) == {"batching_parameters.txt", "locust_stats.csv", "server.log"}
    assert by_name["server.log"].mimetype == "text/plain"  # shown as text, not a download
    assert by_name["locust_stats.csv"].mimetype == "text/csv"
    for path in files:
        out = tmp_path / "download" / path.name
        out.parent.mkdir(exist_ok=True)
        download_artifact(
            artifact_store=store, file_path=str(out), artifact_id=by_name[path.name].artifact_id
        )
        assert out.read_bytes() == path.read_bytes()


def test_frozen_trial_and_missing_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A trial about to fail (its server never started) gets the files it has; absent ones
    are skipped. Optuna freezes finished trials, so attaching afterwards is a clear error."""
    storage = open_storage(f"sqlite:///{tmp_path / 'tuning.db'}")
    store = open_artifact_store(tmp_path / "artifacts")
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    frozen = study.trials[0]  # a FrozenTrial of the running trial: needs the storage
    existing = _trial_files(tmp_path / "t")[0]

    with caplog.at_level(logging.WARNING, logger="tuner.storage.artifacts"):
        ids = attach_files(frozen, storage, store, [tmp_path / "never_written.log", existing])
    study.tell(trial, state=optuna.trial.TrialState.FAIL)

    assert len(ids) == 1
    assert [m.filename for m in get_all_artifact_meta(study.trials[0], storage=storage)] == [
        "batching_parameters.txt"
    ]
    assert "never_written.log" in caplog.text
    with pytest.raises(StorageError, match="already finished; attach files before"):
        attach_files(study.trials[0], storage, store, [existing])


def test_optuna_dashboard_serves_the_trial_artifacts(tmp_path: Path, database_url: str) -> None:
    url = database_url
    storage = open_storage(url)
    store = open_artifact_store(tmp_path / "artifacts")
    study = optuna.create_study(storage=storage, study_name="s")
    files = _trial_files(tmp_path / "t")
    study.optimize(lambda t: attach_files(t, None, store, files) and 1.0, n_trials=1)
    study_id = study._study_id
    trial_id = study.trials[0]._trial_id

    # What `optuna-dashboard sqlite:///tuning.db --artifact-dir artifacts` runs, in-process.
    app = wsgi(url, artifact_store=open_artifact_store(tmp_path / "artifacts"))
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://dash") as client:
        detail = client.get(f"/api/studies/{study_id}", params={"after": 0}).json()
        artifacts = {a["filename"]: a for a in detail["trials"][0]["artifacts"]}
        assert set(artifacts) == {p.name for p in files}
        log = artifacts["server.log"]
        response = client.get(f"/artifacts/{study_id}/{trial_id}/{log['artifact_id']}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "event=ready port=8500\n"


def test_artifact_directory_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot create the artifact directory"):
        open_artifact_store(blocker / "artifacts")


def test_a_store_whose_directory_became_unwritable_says_why(tmp_path: Path) -> None:
    store = open_artifact_store(tmp_path / "artifacts")
    assert unwritable(store) is None
    (tmp_path / "artifacts").rmdir()
    (tmp_path / "artifacts").write_text("a file where the directory was: even root cannot\n")
    problem = unwritable(store)
    assert problem is not None and "Not a directory" in problem
    assert str(tmp_path / "artifacts") in problem
