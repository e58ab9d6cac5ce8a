"""Running a study: open or resume it, start the service and model server, run the trials,
confirm the winner, and leave every process stopped and the database intact.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import optuna

from search_spaces.loader import SearchSpace, SearchSpaceError, load_space
from tuner.capacity.pauses import pause_log
from tuner.capacity.search_run import CapacityMeasurer
from tuner.capacity.settings import load_profile, objective_text, search_settings, step_criteria
from tuner.config import TunerConfig
from tuner.coordination.leftovers import marking_children, stop_leftovers
from tuner.coordination.private_tmpdir import private_tmpdir
from tuner.coordination.resume import (
    INTERRUPTED,
    counted_trials,
    fail_reason,
    heartbeat_settings,
    is_bench_fault,
)
from tuner.coordination.shared_trials import SharedTrials, confirmation_claim, requeue
from tuner.coordination.slot import study_key, take_slot
from tuner.coordination.study_lock import StudyLock
from tuner.coordination.worker_name import worker_name
from tuner.errors import ConfigError, StorageLost, TrialFailed, TunerError
from tuner.interrupts import signals_held
from tuner.load import LoadProfile
from tuner.measure.fixed_load import Measurer
from tuner.measure.model_signature import check_batchable
from tuner.measure.request_source import for_target, request_bodies, with_requests
from tuner.measure.server_start import port_mover
from tuner.measure.service_process import service_for
from tuner.process import free_port
from tuner.review.dashboard import annotate_study, attach_trial_curve, name_objective
from tuner.review.images import browser_session
from tuner.servers import ModelServerError, ServerConfigError, ServerSpec, create_backend
from tuner.servers.cpus import parse_cpus
from tuner.servers.reservations import PortReservations
from tuner.servers.study_ports import ports_again, study_ports
from tuner.storage import (
    SampleStore,
    StorageError,
    StorageURLError,
    open_artifact_store,
    open_storage,
    safe_url,
)
from tuner.study.confirm import confirm, planned_searches
from tuner.study.objective import Objective
from tuner.study.progress import RunProgress, trial_line
from tuner.study.samplers import make_sampler
from tuner.study.warm_start import WarmPoint, enqueue_warm_points, warm_points
from tuner.trial_record import (
    CONFIG_FILE_ATTR,
    MODEL_PATH_ATTR,
    NO_BATCHING,
    REFERENCE_ATTR,
    TF_SERVING_RECOMMENDED,
    WINNER_ATTR,
)

log = logging.getLogger("tuner")
SPACE_ATTR = "search_space"
MODE_ATTR = "load_mode"  # capacity values (req/s within the SLO) and closed-loop req/s differ


@dataclass(frozen=True)
class OptimizeResult:
    study_name: str
    storage: str
    trials_run: int
    winner: dict | None


@dataclass(frozen=True)
class Parts:
    """What optimize() builds its measurements from: the configured backend, service and
    measurers. Tests pass tests/support/fake_measurer.py's (`fake_parts`), so the study logic runs
    with no server, service or load generator."""

    create_backend: Callable[..., tuple] = create_backend
    service_for: Callable[..., object] = service_for
    measurer: Callable[..., object] = Measurer
    capacity_measurer: Callable[..., object] = CapacityMeasurer


REAL_PARTS = Parts()


def study_dir(config: TunerConfig) -> Path:
    """The study's working directory: every slot's is in it (tuner/coordination/slot.py), and what
    its tuners leave running is marked with it (tuner/coordination/leftovers.py)."""
    return config.path(config.study.workdir) / config.study.name


def load_search_space(config: TunerConfig) -> SearchSpace:
    name = config.search.space
    candidate = config.path(name)
    try:
        return load_space(candidate if candidate.exists() else name)
    except SearchSpaceError as exc:
        raise ConfigError(str(exc)) from None


def open_study(config: TunerConfig, space: SearchSpace | None = None) -> optuna.Study:
    """The configured study, created when missing (with a sampler when `space` is given), on a
    storage whose trials beat, so a tuner that dies without a word leaves no trial RUNNING,
    and whose calls ride out a database away for up to `study.storage_retry_s`."""
    storage = _open_storage(
        config,
        retry_s=config.study.storage_retry_s,
        **heartbeat_settings(config.study.stale_after_s),
    )
    sampler = make_sampler(config, space) if space is not None else None
    return optuna.create_study(
        study_name=config.study.name,
        storage=storage,
        sampler=sampler,
        # Early stopping is tuner/study/trial_pruning.py's job: it knows the SLO, Optuna's
        # pruners do not.
        pruner=optuna.pruners.NopPruner(),
        direction="maximize",
        load_if_exists=True,
    )


def load_existing_study(config: TunerConfig) -> optuna.Study:
    """The configured study for show/export, which must not create an empty database."""
    url = config.study.storage
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:"):
        db = Path(url.removeprefix("sqlite:///").partition("?")[0])
        if not db.exists():
            raise TunerError(
                f"there is no database at {db}; run `tuner optimize` first, "
                "or pass --config / --storage to point at your study"
            )
    storage = _open_storage(config)
    try:
        return optuna.load_study(study_name=config.study.name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise TunerError(
            f"there is no study named {config.study.name!r} in {safe_url(config.study.storage)}"
            + (f" (it holds: {', '.join(names)})" if names else " (it holds no study)")
            + "; run `tuner optimize` first or pass --study-name"
            + (
                " (no config file was read: no --config and no ./tuner.toml)"
                if config.file is None
                else ""
            )
        ) from None


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    """A database error as the CLI reports it: a wrong URL is the config's fault (exit 2), a
    database down or missing right now is not (exit 1)."""
    try:
        yield
    except StorageURLError as exc:
        raise ConfigError(str(exc)) from None
    except StorageError as exc:
        raise TunerError(str(exc)) from None


def _open_storage(config: TunerConfig, **heartbeat: object) -> optuna.storages.BaseStorage:
    with _storage_errors():
        return open_storage(config.study.storage, **heartbeat)


def prepare_new_study(
    study: optuna.Study,
    space: SearchSpace,
    config: TunerConfig,
    warm: Sequence[WarmPoint] = (),
) -> None:
    """The study's attrs, then its first trials: a warm start's points (tuner/study/warm_start.py),
    then the two reference points."""
    study.set_user_attr(SPACE_ATTR, space.name)
    study.set_user_attr(MODE_ATTR, config.load.mode)
    study.set_user_attr("objective", objective_text(config))
    study.set_user_attr(MODEL_PATH_ATTR, str(config.model_dir.resolve()))
    if config.file is not None:
        study.set_user_attr(CONFIG_FILE_ATTR, str(config.file.resolve()))
    name_objective(study, config.load.mode == "capacity")
    enqueue_warm_points(study, list(warm))
    study.enqueue_trial({}, user_attrs={REFERENCE_ATTR: NO_BATCHING})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    study.enqueue_trial(
        space.reference_params(cores or 1), user_attrs={REFERENCE_ATTR: TF_SERVING_RECOMMENDED}
    )


def say_requeued(trial: optuna.trial.FrozenTrial, config: TunerConfig, say: Callable[[str], None]):
    reason = fail_reason(trial)
    if reason == INTERRUPTED:
        say(f"trial {trial.number} was interrupted: it runs again")
    elif is_bench_fault(trial):
        say(
            f"trial {trial.number} failed for a fault of the bench ({fail_reason(trial)}), not "
            "of its configuration: it runs again and counts only then"
        )
    else:
        say(
            f"trial {trial.number} was abandoned (its tuner stopped without recording it, "
            f"no heartbeat for {config.study.stale_after_s} s): it runs again"
        )


def requeue_and_say(study: optuna.Study, config: TunerConfig, say: Callable[[str], None]) -> None:
    """Queue again what was cut short (interrupted, or abandoned by a killed tuner), and say
    what this run will do about every trial that did not finish. Hold the study lock."""
    for trial in requeue(study):
        say_requeued(trial, config, say)
    for trial in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.RUNNING]):
        say(
            f"trial {trial.number} is still running: another tuner has it, or its tuner stopped "
            f"less than {config.study.stale_after_s} s ago (then it runs again once it is stale)"
        )


def join_study(
    study: optuna.Study,
    space: SearchSpace,
    config: TunerConfig,
    say: Callable[[str], None],
    warm: Sequence[WarmPoint] = (),
) -> int:
    """With the study lock held: the first tuner of a new study queues the reference points
    (once per study, however many tuners start at once); every tuner checks the study was run
    as configured and re-queues what was cut short. Returns the trials that count so far."""
    if not study.trials:
        prepare_new_study(study, space, config, warm)
        if warm:
            say(
                f"warm start from {config.study.warm_start}: its winner and best trials "
                f"({len(warm)}) are measured first"
            )
    _check_study(study, space, config)
    requeue_and_say(study, config, say)
    return counted_trials(study)


def _check_study(study: optuna.Study, space: SearchSpace, config: TunerConfig) -> None:
    if study.user_attrs.get(SPACE_ATTR) not in (None, space.name):
        raise ConfigError(
            f"study {config.study.name!r} was run with the search space "
            f"{study.user_attrs[SPACE_ATTR]!r}, not {space.name!r}; use the same space to "
            "resume it, or another --study-name"
        )
    study_mode = study.user_attrs.get(MODE_ATTR, "closed")  # studies from before it: closed
    if study_mode != config.load.mode:
        raise ConfigError(
            f"study {config.study.name!r} was run with load.mode = {study_mode!r}, not "
            f"{config.load.mode!r}, and their values are not comparable; set load.mode = "
            f'"{study_mode}" to resume it, or use another --study-name'
        )


def optimize(
    config: TunerConfig, say: Callable[[str], None] = print, parts: Parts = REAL_PARTS
) -> OptimizeResult:
    """Run this tuner's share of the study: alone, every trial; beside other tuners on the
    same storage, the trials it claims (tuner/coordination/shared_trials.py), the study's total
    staying `n_trials`."""
    space = load_search_space(config)
    profile = load_profile(config)
    model_base_path = config.model_dir
    if not model_base_path.is_dir():
        raise ConfigError(
            f"{config.source}: server.model_base_path {model_base_path} does not exist; "
            "build the demo model with `make model` or point it at your model"
        )
    check_batchable(model_base_path)
    bodies = request_bodies(
        config.load.requests, config.load.generate_rows, model_base_path, config.path
    )
    grpc_bodies = for_target(config.load.target, bodies, model_base_path, config.server.model_name)
    worker = worker_name(config.study.worker)
    warm = warm_points(config, space)  # a missing study is said before anything starts
    with _storage_errors():
        lock = StudyLock(
            config.study.storage, config.study.name, retry_s=config.study.storage_retry_s
        )
    with contextlib.ExitStack() as stack:
        stack.callback(lock.close)
        with _storage_errors(), lock:  # the lock meets the database first
            # Under the lock: tuners started at once on a new database would race to create
            # Optuna's tables and ours.
            study = open_study(config, space)
            samples = SampleStore(
                config.study.storage, worker=worker, retry_s=config.study.storage_retry_s
            )
            stack.callback(samples.close)
            done = join_study(study, space, config, say, warm)
            remaining = config.study.n_trials - done
            say(
                f"study {config.study.name!r} in {safe_url(config.study.storage)}: "
                f"{objective_text(config)}"
            )
            say(f"search space {space.name!r}; {done} trials so far, {max(remaining, 0)} to run")
            slot = stack.enter_context(
                take_slot(study_dir(config), study_key(config.study.storage, config.study.name))
            )
            reservations = stack.enter_context(PortReservations(slot.owner))
            grpc, rest = config.server.grpc_port, config.server.rest_port
            ports = study_ports(
                study, grpc, rest, free_port, slot=slot.index, reservations=reservations
            )

        def choose_again(taken: int) -> tuple[int, int] | None:
            with lock:
                return ports_again(
                    study, grpc, rest, free_port, taken, slot=slot.index, reservations=reservations
                )

        if slot.index:
            say(f"working directory {slot.workdir} (another tuner of this study runs on this host)")
        return _run(
            config,
            study,
            lock,
            _Plan(
                space,
                profile,
                samples,
                slot.workdir,
                worker,
                ports,
                choose_again,
                done,
                remaining,
                bodies,
                grpc_bodies,
            ),
            say,
            parts,
        )


@dataclass(frozen=True)
class _Plan:
    """What this tuner settled with the study lock held, for the run itself."""

    space: SearchSpace
    profile: LoadProfile
    samples: SampleStore
    workdir: Path
    worker: str
    ports: tuple[int, int]
    # the ports again once `taken` turned out held by another process (None: configured)
    choose_again: Callable[[int], tuple[int, int] | None]
    done: int
    remaining: int
    requests: list[bytes] | None = None  # the load's REST bodies; None = the demo's texts
    grpc_requests: list[bytes] | None = None  # the same as PredictRequests, for target grpc


def _run(
    config: TunerConfig,
    study: optuna.Study,
    lock: StudyLock,
    plan: _Plan,
    say: Callable[[str], None],
    parts: Parts,
) -> OptimizeResult:
    space, profile, samples = plan.space, plan.profile, plan.samples
    workdir, worker = plan.workdir, plan.worker
    (grpc_port, rest_port), done, remaining = plan.ports, plan.done, plan.remaining
    profile = with_requests(
        profile, plan.requests, workdir, config.server.model_name, plan.grpc_requests
    )
    model_base_path = config.model_dir
    for process in stop_leftovers(study_dir(config)):
        say(f"stopped process {process}, left running by a tuner of this study that was killed")
    try:
        spec = ServerSpec(
            model_name=config.server.model_name,
            model_base_path=model_base_path,
            grpc_port=grpc_port,
            rest_port=rest_port,
            extra_flags=config.server.extra_flags,
            ready_timeout_s=config.server.ready_timeout_s,
            cpus=parse_cpus(config.server.cpus),
        )
        backend, why = parts.create_backend(
            config.server.backend,
            spec,
            binary_path=config.server.binary_path,
            docker_image=config.server.docker_image,
        )
        for line in backend.prepare(study_dir(config)):
            say(line)
    except (ServerConfigError, ModelServerError) as exc:
        raise ConfigError(f"{config.source}: {exc}") from None
    say(f"model server: {why}")

    service = parts.service_for(config, backend.grpc_target, model_base_path, workdir)
    trials_run = 0
    winner = study.user_attrs.get(WINNER_ATTR)
    # Marked with the study's directory, not the slot's: a tuner restarted into another slot
    # still finds what it left running. Every process of the bench reports its pauses to one
    # file (tuner/capacity/pauses.py). Their temporary files go to a directory of this
    # tuner's, which the next tuner removes if this one is killed
    # (tuner/coordination/private_tmpdir.py).
    with (
        private_tmpdir(),
        marking_children(study_dir(config)),
        browser_session(),
        pause_log(workdir / "pauses.jsonl"),
    ):
        try:
            service.start(config.service.ready_timeout_s)
            say(f"prediction service: {service.url}")
            measurer = parts.measurer(
                backend,
                service,
                profile,
                config.server.model_name,
                config.server.warmup_requests,
                move_ports=port_mover(
                    plan.choose_again,
                    backend,
                    lambda target: service.point_at(target, config.service.ready_timeout_s),
                ),
            )
            capacity = (
                parts.capacity_measurer(
                    measurer, profile, search_settings(config), step_criteria(config)
                )
                if config.load.mode == "capacity"
                else None
            )
            artifact_store = open_artifact_store(config.path(config.study.artifact_dir))
            objective = Objective(
                config=config,
                space=space,
                measurer=measurer,
                capacity=capacity,
                samples=samples,
                storage=study._storage,
                artifact_store=artifact_store,
                workdir=workdir,
                worker=worker,
                draw_curve=partial(
                    _draw_curve, config=config, samples=samples, artifact_store=artifact_store
                ),
            )
            # Always: with nothing left, it returns at once, unless a trial of another tuner
            # still runs (it may die and leave its trial to this one).
            progress = RunProgress(max(remaining, 1), planned_searches(config))

            def after(s: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
                line = progress.after_trial(counted_trials(s) - done)
                say(f"{line} {trial_line(s, t, config)}")

            shared = SharedTrials(
                study,
                lock,
                config.study.n_trials,
                sampler_for=lambda number: make_sampler(config, space, number),
                on_requeued=lambda t: say_requeued(t, config, say),
                on_wait=lambda n: say(
                    f"n_trials reached with {n} trial(s) still running on other tuners: "
                    "waiting for them (one whose tuner stops runs again here)"
                ),
                max_bench_faults_in_a_row=config.study.max_bench_faults_in_a_row,
            )
            trials_run = shared.run(
                objective,
                timeout_s=config.study.timeout_s,
                catch=(TrialFailed,),
                callbacks=[after],
            )
            if config.confirm.top_k and (trials_run or winner is None):
                with confirmation_claim(config.study.storage, study, worker) as why_not:
                    if why_not is None:
                        winner = confirm(study, config, capacity or measurer, samples, workdir, say)
                    else:
                        say(why_not)
                        winner = study.user_attrs.get(WINNER_ATTR)
            annotate_study(study, config, samples)
        except (StorageError, StorageLost) as exc:
            raise TunerError(str(exc)) from None
        finally:
            with signals_held():  # a second Ctrl-C must not leave a server behind
                backend.stop()
                service.stop()
                samples.close()
    return OptimizeResult(config.study.name, config.study.storage, trials_run, winner)


def _draw_curve(
    trial: optuna.Trial,
    workdir: Path,
    *,
    config: TunerConfig,
    samples: SampleStore,
    artifact_store: object,
) -> None:
    attach_trial_curve(trial, config, samples, artifact_store, workdir)
