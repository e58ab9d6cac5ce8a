"""The server's life: validate everything, load, bind, serve, and stop cleanly on a signal.

Order matters and follows tensorflow_model_server 2.19 (model_servers/server.cc,
Server::BuildAndStart): ServerCore::Create loads the model (waiting until it is available)
before the gRPC server is built and the REST server started, so nothing listens while the
model loads and a failed initial load ends the process (main.cc returns -1: exit code 255)
without ever binding. A bad batching file or a port in use fails before the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable

import grpc
import numpy as np
import psutil
import uvicorn

from model_server import pauses, warmup
from model_server.batching_parameters import BatchingParameters
from model_server.flags import EXIT_CANNOT_START, Flags
from model_server.grpc_api import add_services
from model_server.metrics import ServerMetrics
from model_server.model import LoadedModel, ModelLoadError, load_model
from model_server.preflight import (
    StartupError,
    check_port_free,
    port_unavailable,
    servable_versions,
)
from model_server.rest_api import create_app
from model_server.servable import Servable, State

log = logging.getLogger("model_server")
GRACE_S = 10.0


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: this process has one shutdown path."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def _listening_socket(host: str, port: int) -> socket.socket:
    """The REST API's socket. Created with proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY
    on accepted connections only for such sockets (asyncio.base_events._set_nodelay), and
    without it uvicorn's two writes per response (headers, then body) meet the client's
    delayed ACK: ~44 ms per request on a kept-alive connection instead of ~1 ms (a 64 KB image
    request: 47.9 ms, then 1.27 ms). TF Serving answers with one write (evhttp_send_reply with
    the body buffer, tensorflow_serving/util/net_http/server/internal/evhttp_request.cc)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(port_unavailable(host, port, "REST API", exc)) from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _warm_up(model: LoadedModel) -> None:
    """One call per signature, so the first client does not pay for the first run's setup.

    Only for models without a warm-up file of their own (TF Serving would do nothing there).

    Zeros (empty strings) may be inputs a model rejects; that only costs the warm-up, as
    with TF Serving's optional warm-up records, so it is logged and serving goes on.
    """
    for signature in model.signatures.values():
        specs = signature.inputs.values()
        if any(s.shape is None or not s.shape or any(d < 0 for d in s.shape[1:]) for s in specs):
            continue
        inputs = {
            s.name: np.full((1, *s.shape[1:]), b"" if s.dtype.kind == "O" else 0, s.dtype)
            for s in specs
        }
        try:
            signature.run(inputs)
        except Exception as exc:
            log.warning("event=warm_up_failed signature=%s error=%r", signature.name, str(exc))


def batching_summary(batching: BatchingParameters | None) -> str:
    """The effective batching settings as key=value pairs, so a log shows what a run used."""
    if batching is None:
        return "batching=off"
    pairs = {
        "batching": "on",
        "max_batch_size": batching.effective_max_batch_size,
        "batch_timeout_micros": batching.effective_batch_timeout_micros,
        "max_enqueued_batches": batching.effective_max_enqueued_batches,
        "num_batch_threads": batching.effective_num_batch_threads,
        "allowed_batch_sizes": ",".join(map(str, batching.allowed_batch_sizes)) or "-",
        "pad_variable_length_inputs": str(batching.pad_variable_length_inputs).lower(),
        "max_execution_batch_size": batching.effective_max_execution_batch_size,
    }
    return " ".join(f"{key}={value}" for key, value in pairs.items())


def configure_tensorflow(flags: Flags) -> None:
    from model_server import tensorflow_runtime

    if flags.tensorflow_intra_op_parallelism:
        tensorflow_runtime.set_intra_op_parallelism_threads(flags.tensorflow_intra_op_parallelism)
    if flags.tensorflow_inter_op_parallelism:
        tensorflow_runtime.set_inter_op_parallelism_threads(flags.tensorflow_inter_op_parallelism)


async def serve(
    flags: Flags,
    batching: BatchingParameters | None,
    *,
    after_load: Callable[[], None] = lambda: None,
) -> int:
    """Run until SIGTERM/SIGINT (returns 0); StartupError when the model cannot be served.

    `after_load` runs once the model has loaded or failed to.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "event=starting pid=%d model=%s base_path=%s intra_op_threads=%d inter_op_threads=%d %s",
        os.getpid(),
        flags.model_name,
        flags.model_base_path,
        flags.tensorflow_intra_op_parallelism,
        flags.tensorflow_inter_op_parallelism,
        batching_summary(batching),
    )
    host = flags.bind_address
    check_port_free(host, flags.port, "gRPC")
    if flags.rest_api_port:
        check_port_free(host, flags.rest_api_port, "REST API")
    configure_tensorflow(flags)

    metrics = ServerMetrics(flags.model_name)
    servable = Servable(flags.model_name, batching, metrics)
    versions = servable_versions(flags.model_base_path)
    servable.version = versions[0] if versions else None
    servable.state = State.LOADING
    load = asyncio.create_task(asyncio.to_thread(_load, flags))
    await asyncio.wait([load, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED")
    after_load()
    if not load.done():  # stopped while loading: nothing was bound, nothing to undo
        load.cancel()
        log.info("event=stopped exit_code=0 during=load")
        return 0
    try:
        model = load.result()
    except Exception as exc:
        failure = str(exc) if isinstance(exc, ModelLoadError) else f"loading failed: {exc!r}"
        servable.state, servable.error = State.END, failure
        log.error(
            "event=load_failed model=%s reason=%r",
            flags.model_name,
            failure,
            exc_info=not isinstance(exc, ModelLoadError),  # a bug: keep the traceback
        )
        log.info("event=stopped exit_code=%d", EXIT_CANNOT_START)
        raise StartupError(failure) from None  # the last line of the log, as the one to read
    servable.set_loaded(model)
    # TF Serving has no collector: ours must not pause where it would not (pauses.py). Tuned
    # before anything listens, so its one full collection delays no request.
    lag_probe = pauses.start("model_server")

    # The REST socket first: if the gRPC bind then fails, closing one socket undoes everything.
    rest_socket = _listening_socket(host, flags.rest_api_port) if flags.rest_api_port else None
    grpc_server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    add_services(grpc_server, servable)
    try:
        bound = grpc_server.add_insecure_port(f"{host}:{flags.port}")
    except RuntimeError:
        bound = 0
    if bound == 0:
        if rest_socket is not None:
            rest_socket.close()
        # Stopped while the loop runs: a server left to the garbage collector prints tracebacks.
        await grpc_server.stop(None)
        await servable.close()
        raise StartupError(f"could not bind the gRPC port {flags.port} on {host}")
    await grpc_server.start()

    rest_server = rest_task = None
    if rest_socket is not None:
        config = uvicorn.Config(
            create_app(servable), log_level="warning", access_log=False, lifespan="off"
        )
        rest_server = _Uvicorn(config)
        rest_task = asyncio.create_task(rest_server.serve(sockets=[rest_socket]))
    log.info(
        "event=listening grpc=%s:%d rest=%s batching=%s",
        host,
        flags.port,
        f"{host}:{flags.rest_api_port}" if flags.rest_api_port else "off",
        "on" if batching is not None else "off",
    )
    log.info(
        "event=available model=%s version=%d signatures=%s since_process_start_s=%.2f",
        model.name,
        model.version,
        ",".join(model.signatures),
        time.time() - psutil.Process().create_time(),
    )
    await stop.wait()
    lag_probe.cancel()

    log.info("event=stopping grace_s=%g", GRACE_S)
    if rest_server is not None:
        rest_server.should_exit = True
    await grpc_server.stop(grace=GRACE_S)
    if rest_task is not None:
        await rest_task
    await servable.close()
    log.info("event=stopped exit_code=0")
    return 0


def _load(flags: Flags) -> LoadedModel:
    log.info("event=loading model=%s base_path=%s", flags.model_name, flags.model_base_path)
    model = load_model(flags.model_name, flags.model_base_path.resolve())
    if flags.enable_model_warmup and warmup.warmup_path(model.path).is_file():
        warmup.replay(model, flags.num_request_iterations_for_warmup)
    else:
        _warm_up(model)
    return model
