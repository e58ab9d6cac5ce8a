"""A storage URL's password is never printed, logged, stored or written into a report: a study
on a real PostgreSQL server through a URL with a password, run by optimize, then show, export,
report and the dashboard command, with every log line at DEBUG."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import optuna
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.fake_measurer import FakeMeasurer, Served, fake_parts
from tests.support.postgres import PostgresServer
from tests.support.studies import config_for
from tuner.commands.cli import _dashboard_command, main
from tuner.study.run import optimize

PASSWORD = "s3cret-Pw-91x"


def url_with_password(postgres_server: PostgresServer) -> str:
    """A new database owned by a role that has PASSWORD, and its URL with that password."""
    database = make_url(postgres_server.new_database("tuner_pw"))
    engine = create_engine(postgres_server.admin_url, isolation_level="AUTOCOMMIT")
    role = f"tuner_{database.database}"
    try:
        with engine.connect() as connection:
            connection.execute(text(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{PASSWORD}'"))
            connection.execute(text(f'ALTER DATABASE "{database.database}" OWNER TO "{role}"'))
    finally:
        engine.dispose()
    return database.set(username=role, password=PASSWORD).render_as_string(hide_password=False)


def steady(batching, flags, rate) -> Served:
    return Served(rps=200.0 + (batching.max_batch_size if batching else 0), p95_ms=40.0)


def test_the_password_appears_nowhere(tmp_path: Path, postgres_server, caplog, capsys) -> None:
    url = url_with_password(postgres_server)
    assert PASSWORD in url
    config = config_for(tmp_path, storage=url, n_trials=3)
    config.load.mode = "closed"
    config.confirm.top_k, config.confirm.repeats = 1, 1
    (tmp_path / "model").mkdir()
    config.server.model_base_path = str(tmp_path / "model")
    config.study.artifact_dir = str(tmp_path / "artifacts")
    config.study.workdir = str(tmp_path / "runs")

    lines: list[str] = []
    with caplog.at_level(logging.DEBUG):
        result = optimize(config, lines.append, parts=fake_parts(FakeMeasurer(steady)))
        assert result.trials_run == 3
        dashboard = _dashboard_command(config)
        common = ["--storage", url, "--study-name", "s"]
        assert main(["show", *common]) == 0
        assert main(["export", *common, "--out", str(tmp_path / "b.txt")]) == 0
        report = tmp_path / "report.html"
        assert main(["report", *common, "--out", str(report)]) == 0
        assert main(["show", "--storage", url, "--study-name", "missing"]) == 1
    printed = capsys.readouterr()

    assert "***" in dashboard and "***" in "\n".join(lines)  # the URL is shown, masked
    assert "no study named 'missing'" in printed.err
    shown = [
        "\n".join(lines),
        dashboard,
        printed.out,
        printed.err,
        caplog.text,
        report.read_text(),
        *(p.read_text(errors="replace") for p in tmp_path.rglob("*") if _text_file(p)),
        _everything_stored(url),
    ]
    for where in shown:
        assert PASSWORD not in where


def _text_file(path: Path) -> bool:
    return path.is_file() and path.suffix not in (".png",) and path.stat().st_size < 5_000_000


def _everything_stored(url: str) -> str:
    """Every attribute the study and its trials hold, as JSON."""
    study = optuna.load_study(study_name="s", storage=url)
    parts = [study.user_attrs, study._storage.get_study_system_attrs(study._study_id)]
    for trial in study.get_trials():
        parts += [trial.user_attrs, trial.system_attrs, trial.params]
    return json.dumps(parts, default=str)
