"""`python -m model_server`: a tensorflow_model_server stand-in (same flags and APIs)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

# Before TensorFlow is imported: its C++ start-up chatter would bury the server's own log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from model_server import bare_tensorflow
from model_server.batching_parameters import (
    BatchingConfigError,
    BatchingParameters,
    load_file,
)
from model_server.flags import EXIT_CANNOT_START, parse_flags
from model_server.native_logs import NativeLogFilter
from model_server.preflight import StartupError, check_model_base_path, check_port_free


def main(argv: list[str] | None = None) -> int:
    flags = parse_flags(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="ts=%(asctime)s level=%(levelname)s %(message)s",
    )
    batching = None
    if flags.enable_batching:
        try:
            batching = (
                load_file(flags.batching_parameters_file)
                if flags.batching_parameters_file is not None
                else BatchingParameters()
            )
        except BatchingConfigError as exc:
            print(f"model_server: error: {exc}", file=sys.stderr)
            return EXIT_CANNOT_START
    try:
        check_port_free(flags.bind_address, flags.port, "gRPC")
        if flags.rest_api_port:
            check_port_free(flags.bind_address, flags.rest_api_port, "REST API")
        check_model_base_path(flags.model_base_path)
    except StartupError as exc:
        print(f"model_server: error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    native_logs = NativeLogFilter(_tf_min_log_level())
    native_logs.start()
    try:
        # Imported only now: this pulls in TensorFlow, seconds a bad flag should not wait for;
        # its runtime only, without the public API (model_server/bare_tensorflow.py).
        bare_tensorflow.install()
        from model_server.server import serve

        return asyncio.run(serve(flags, batching, after_load=native_logs.stop))
    except StartupError as exc:
        native_logs.stop()
        print(f"model_server: error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    finally:
        native_logs.stop()


def _tf_min_log_level() -> int:
    """The level below which native lines are dropped; 0 (keep all) when verbose logging is
    asked for, since a flood through the filter's pipe is exactly what is wanted then."""
    if os.environ.get("TF_CPP_MAX_VLOG_LEVEL") or os.environ.get("TF_CPP_VMODULE"):
        return 0
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def exit_now(code: int) -> None:
    """Exit once the server has stopped cleanly, skipping the interpreter's teardown:
    unwinding TensorFlow's modules takes seconds, which every trial's restart would pay
    and tensorflow_model_server does not. Logs and streams are flushed first."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
