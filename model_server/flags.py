"""tensorflow_model_server's command-line flags, with the same names, forms and defaults.

Booleans accept `--enable_batching` or `--enable_batching=true|false`, as with the real
binary's flags. Every flag name of the 2.19 binary is accepted (binary_flags.py); those this
server has no use for are ignored. As in main.cc, an argument that is no flag at all is
printed ("unknown argument: ...") and ignored, and a flag with a bad value ends the process
with the binary's code, 255 (main returns -1). Unlike the binary, `--flag value` (with a
space) also works.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from model_server.binary_flags import TF_SERVING_FLAGS

PROG = "python -m model_server"
EXIT_CANNOT_START = 255  # main.cc returns -1 when flags fail to parse or the server cannot start


@dataclass(frozen=True)
class Flags:
    port: int
    rest_api_port: int
    model_name: str
    model_base_path: Path
    enable_batching: bool
    batching_parameters_file: Path | None
    tensorflow_intra_op_parallelism: int
    tensorflow_inter_op_parallelism: int
    bind_address: str
    monitoring_config_file: Path | None
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (0-65535)")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


# argparse names the type function in its messages ("invalid port value: 'x'").
_bool.__name__ = "boolean"
_port.__name__ = "port"
_non_negative.__name__ = "non-negative integer"
_positive.__name__ = "positive integer"


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error; a launcher wants one line it can show a user."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_CANNOT_START)


_EPILOG = """\
example:
  python -m model_server --port=8500 --rest_api_port=8501 --model_name=sentiment \\
      --model_base_path=models/sentiment --enable_batching \\
      --batching_parameters_file=batching_parameters.txt

exit codes, as tensorflow_model_server's: 0 stopped by SIGTERM/SIGINT (in-flight requests
finished), 255 cannot start (bad flag value, batching file, port in use, no model version,
model fails to load). An unknown argument is printed and ignored, as by the binary.
Native TensorFlow log lines below TF_CPP_MIN_LOG_LEVEL (default 2 = errors only) are
dropped while the model loads; set TF_CPP_MIN_LOG_LEVEL=0 to see everything.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog=PROG,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "A stand-in for tensorflow_model_server on machines without it: the same flags,\n"
            "gRPC and REST APIs, batching parameters and Prometheus metrics, running the\n"
            "SavedModel with TensorFlow. Flags take --flag=value or --flag value."
        ),
        epilog=_EPILOG,
    )
    add = parser.add_argument
    add("--port", type=_port, default=8500, metavar="PORT", help="gRPC port (default 8500)")
    add(
        "--rest_api_port",
        type=_port,
        default=0,
        metavar="PORT",
        help="HTTP port of the REST API and of /monitoring/prometheus/metrics; "
        "0 (default) = no REST API",
    )
    add(
        "--model_name",
        default="default",
        metavar="NAME",
        help="name clients put in model_spec.name and REST paths (default 'default')",
    )
    add(
        "--model_base_path",
        type=Path,
        required=True,
        metavar="DIR",
        help="required; DIR/<N>/saved_model.pb for numeric versions N; the highest is served",
    )
    add(
        "--enable_batching",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        metavar="true|false",
        help="batch requests server-side; without --batching_parameters_file TF Serving's "
        "defaults apply (max_batch_size 1000, batch_timeout_micros 0, max_enqueued_batches "
        "10, num_batch_threads = cores)",
    )
    add(
        "--batching_parameters_file",
        type=Path,
        metavar="FILE",
        help="BatchingParameters in protobuf text format, e.g. 'max_batch_size { value: 32 }'; "
        "needs --enable_batching; checked before any port is bound",
    )
    add(
        "--tensorflow_intra_op_parallelism",
        type=_non_negative,
        default=0,
        metavar="N",
        help="threads one op may use (tf.config.threading); 0 (default) = TensorFlow decides",
    )
    add(
        "--tensorflow_inter_op_parallelism",
        type=_non_negative,
        default=0,
        metavar="N",
        help="ops that may run at once (tf.config.threading); 0 (default) = TensorFlow decides",
    )
    add(
        "--bind_address",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address both ports bind to (default 127.0.0.1); an extension of this server, "
        "the real binary binds all interfaces",
    )
    add(
        "--monitoring_config_file",
        type=Path,
        metavar="FILE",
        help="accepted for compatibility; metrics are always on the REST port",
    )
    add(
        "--enable_model_warmup",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="true|false",
        help="replay the SavedModel's assets.extra/tf_serving_warmup_requests at load "
        "(default true); a failing record fails the load",
    )
    add(
        "--num_request_iterations_for_warmup",
        type=_positive,
        default=1,
        metavar="N",
        help="times each warm-up record is replayed (default 1)",
    )
    known = {a.dest for a in parser._actions}
    for name in TF_SERVING_FLAGS:
        if name not in known:
            add(
                f"--{name}",
                nargs="?",
                const="true",
                metavar="VALUE",
                help=argparse.SUPPRESS,
            )
    parser.epilog = (parser.epilog or "") + (
        "\nEvery other flag of tensorflow_model_server 2.19 is accepted and has no effect here.\n"
    )
    return parser


def parse_flags(argv: list[str]) -> Flags:
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:  # main.cc: `unknown argument: <the first one>`, and the server starts anyway
        sys.stderr.write(f"unknown argument: {unknown[0]}\n")
    if args.batching_parameters_file is not None and not args.enable_batching:
        build_parser().error(
            "--batching_parameters_file was given without --enable_batching; "
            "add --enable_batching or drop the file"
        )
    if args.port == 0:
        build_parser().error("--port must be a port number, not 0")
    if args.rest_api_port == args.port:
        build_parser().error(
            f"--rest_api_port and --port are both {args.port}; give the REST API its own port"
        )
    return Flags(
        port=args.port,
        rest_api_port=args.rest_api_port,
        model_name=args.model_name,
        model_base_path=args.model_base_path,
        enable_batching=args.enable_batching,
        batching_parameters_file=args.batching_parameters_file,
        tensorflow_intra_op_parallelism=args.tensorflow_intra_op_parallelism,
        tensorflow_inter_op_parallelism=args.tensorflow_inter_op_parallelism,
        bind_address=args.bind_address,
        monitoring_config_file=args.monitoring_config_file,
        enable_model_warmup=args.enable_model_warmup,
        num_request_iterations_for_warmup=args.num_request_iterations_for_warmup,
    )
