"""The database of a running study going away, on a real PostgreSQL server of the test's own
(stopping the session's would cut off every other test): a restart mid-step is ridden out, an
absence longer than `study.storage_retry_s` stops the tuner in one sentence, and the next run
resumes the study, the cut-off trial measured again."""

from __future__ import annotations

import logging
import time

import psutil
import pytest
from optuna.trial import TrialState

from tests.support.faults import (
    Fault,
    LogLines,
    check_records,
    fault_config,
    finished,
    leftovers,
)
from tests.support.postgres import running_postgres
from tuner.coordination.resume import RETRY_ATTR
from tuner.errors import TunerError
from tuner.study.run import optimize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cut_off(tmp_path_factory, demo_model_dir):
    """Trial 0: the server restarted mid-step (4 s away). Trial 1: the server stopped for good
    mid-step, so the tuner stops; then the server back and the same study run again."""
    tmp_path = tmp_path_factory.mktemp("storage-faults")
    with running_postgres() as server:
        url = server.new_database()
        config = fault_config(
            tmp_path, demo_model_dir, n_trials=2, study={"storage": url, "storage_retry_s": 10.0}
        )
        config.study.stale_after_s = 2

        def restart() -> None:
            server.stop()
            time.sleep(4)  # across the step's end, when its figures are written
            server.start()

        faults = [Fault(config, restart, trial=0), Fault(config, server.stop, trial=1)]
        records = LogLines(logging.INFO)
        logging.getLogger().addHandler(records)
        before = {c.pid for c in psutil.Process().children(recursive=True)}
        for fault in faults:
            fault.start()
        try:
            with pytest.raises(TunerError) as stopped:
                optimize(config, say=lambda line: None)
        finally:
            logging.getLogger().removeHandler(records)
            for fault in faults:
                fault.cancel()
                fault.join(timeout=30)
        for fault in faults:
            assert fault.done.is_set() and fault.error is None, fault.error
        left = leftovers(before)

        server.start()
        time.sleep(3.5)  # the cut-off trial's heartbeat goes stale: it runs again
        optimize(config, say=lambda line: None)
        stored = check_records(config)
    return str(stopped.value), records.messages, left, stored


def test_a_postgresql_restart_mid_study_is_ridden_out(cut_off):
    _message, messages, _left, stored = cut_off
    assert stored[0].state in (TrialState.COMPLETE, TrialState.PRUNED), stored[0].user_attrs
    assert stored[0].user_attrs["capacity_curve"]
    assert any("event=storage_retry" in m for m in messages), messages
    assert any("event=storage_recovered" in m for m in messages), messages


def test_a_database_away_too_long_stops_in_one_sentence_and_the_study_resumes(cut_off):
    message, _messages, left, stored = cut_off
    assert "did not answer for 10 s" in message and "run the same command" in message
    assert "\n" not in message
    assert not left  # the stopped tuner stopped everything it started
    assert len(finished(stored)) == 2
    (abandoned,) = [t for t in stored if t.state == TrialState.FAIL]
    assert abandoned.number == 1
    assert [t.user_attrs.get(RETRY_ATTR) for t in finished(stored)].count(1) == 1
