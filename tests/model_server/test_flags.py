"""tensorflow_model_server's flags: both forms, booleans, defaults, and one-line errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from model_server.binary_flags import TF_SERVING_FLAGS
from model_server.flags import EXIT_CANNOT_START, Flags, build_parser, parse_flags

PORTS = {"port", "rest_api_port"}  # "=1" for both would be the same port twice


def parse(*argv: str) -> Flags:
    return parse_flags(["--model_base_path=/models/x", *argv])


def test_defaults_match_tensorflow_model_server() -> None:
    flags = parse()
    assert flags == Flags(
        port=8500,
        rest_api_port=0,
        model_name="default",
        model_base_path=Path("/models/x"),
        enable_batching=False,
        batching_parameters_file=None,
        tensorflow_intra_op_parallelism=0,
        tensorflow_inter_op_parallelism=0,
        bind_address="127.0.0.1",
        monitoring_config_file=None,
    )


def test_equals_and_space_forms_are_the_same() -> None:
    joined = parse_flags(
        [
            "--port=9000",
            "--rest_api_port=9001",
            "--model_name=sentiment",
            "--model_base_path=/m",
            "--enable_batching=true",
            "--batching_parameters_file=/b.txt",
            "--tensorflow_intra_op_parallelism=2",
            "--tensorflow_inter_op_parallelism=1",
            "--bind_address=0.0.0.0",
        ]
    )
    spaced = parse_flags(
        [
            *("--port", "9000", "--rest_api_port", "9001", "--model_name", "sentiment"),
            *("--model_base_path", "/m", "--enable_batching", "true"),
            *("--batching_parameters_file", "/b.txt", "--tensorflow_intra_op_parallelism", "2"),
            *("--tensorflow_inter_op_parallelism", "1", "--bind_address", "0.0.0.0"),
        ]
    )
    assert joined == spaced
    assert (joined.port, joined.rest_api_port, joined.model_name) == (9000, 9001, "sentiment")
    assert joined.batching_parameters_file == Path("/b.txt")
    assert joined.enable_batching is True
    assert joined.tensorflow_intra_op_parallelism == 2
    assert joined.tensorflow_inter_op_parallelism == 1
    assert joined.bind_address == "0.0.0.0"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--enable_batching"], True),
        (["--enable_batching", "--port=9000"], True),  # a bare boolean before another flag
        (["--enable_batching=true"], True),
        (["--enable_batching=True"], True),
        (["--enable_batching=1"], True),
        (["--enable_batching=false"], False),
        (["--enable_batching=0"], False),
        (["--enable_batching=no"], False),
        ([], False),
    ],
)
def test_boolean_forms(argv: list[str], expected: bool) -> None:
    assert parse(*argv).enable_batching is expected


def test_the_last_occurrence_of_a_flag_wins() -> None:
    assert parse("--port=9000", "--port=9100").port == 9100


def test_flags_the_tuner_passes_to_the_real_binary_are_accepted() -> None:
    flags = parse(
        "--max_num_load_retries=0",
        "--grpc_channel_arguments=grpc.max_concurrent_streams=1000",
        "--rest_api_num_threads=4",
        "--file_system_poll_wait_seconds=0",
        "--monitoring_config_file=/etc/monitoring.config",
    )
    assert flags.monitoring_config_file == Path("/etc/monitoring.config")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--port=http"], "--port"),
        (["--port=65536"], "--port"),
        (["--port=0"], "--port"),
        (["--rest_api_port=-1"], "--rest_api_port"),
        (["--enable_batching=maybe"], "--enable_batching"),
        (["--tensorflow_inter_op_parallelism=-2"], "--tensorflow_inter_op_parallelism"),
        (["--tensorflow_intra_op_parallelism=two"], "--tensorflow_intra_op_parallelism"),
        (["--batching_parameters_file=/b.txt"], "--enable_batching"),
        (["--enable_batching=false", "--batching_parameters_file=/b.txt"], "--enable_batching"),
        (["--port=9000", "--rest_api_port=9000"], "--rest_api_port"),
    ],
)
def test_errors_exit_255_with_one_line_naming_the_flag(capsys, argv, fragment) -> None:
    # main.cc: a flag that fails to parse ends main with -1, i.e. exit code 255.
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == EXIT_CANNOT_START == 255
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if not line.startswith("unknown argument")]
    assert len(lines) == 1 and fragment in lines[-1], captured.err
    assert captured.out == ""


def test_unknown_arguments_are_printed_and_ignored_like_the_binary(capsys) -> None:
    # main.cc: `if (argc != 1) std::cout << "unknown argument: " << argv[1]`, then it runs.
    flags = parse("--no_such_flag=1", "positional")
    assert flags.port == 8500
    assert capsys.readouterr().err == "unknown argument: --no_such_flag=1\n"


def test_every_flag_of_the_2_19_binary_is_accepted(capsys) -> None:
    argv = [f"--{name}=1" for name in TF_SERVING_FLAGS if name not in PORTS]
    parse(*argv)
    assert "unknown argument" not in capsys.readouterr().err


def test_model_base_path_is_required(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_flags(["--port=9000"])
    assert exited.value.code == EXIT_CANNOT_START
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--model_base_path" in err


def test_help_explains_every_flag(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_flags(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    for action in build_parser()._actions:
        if action.help == argparse.SUPPRESS:  # the binary's other flags, covered by the epilog
            continue
        assert action.help and " ".join(action.help.split()) in flat
        assert all(option in text for option in action.option_strings)
    assert "exit codes" in text and "--flag=value" in text
