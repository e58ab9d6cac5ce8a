"""Errors a user can cause or fix: each carries the one sentence the CLI prints."""

from __future__ import annotations


class TunerError(Exception):
    """A problem the user can act on; `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(TunerError):
    """tuner.toml, a CLI flag or a search space is wrong."""

    exit_code = 2


class TrialFailed(Exception):
    """One trial could not be measured; the study goes on. `reason` is the fail_reason slug."""

    def __init__(self, reason: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.reason = reason
        self.details = details


class StorageLost(BaseException):
    """The study's database stopped answering in the middle of a trial (its retries spent).
    Not the trial's failure, and not an Exception: Optuna would try to record the trial as
    failed in the very database that is gone. It leaves the trial RUNNING, for the next run
    to resume once its heartbeat is stale; the CLI prints its one sentence."""
