"""server.extra_flags are checked against tensorflow_model_server 2.19's flag list (main.cc)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_server.binary_flags import TF_SERVING_FLAGS, closest_flag
from tuner.commands.cli import main
from tuner.servers.base import ServerConfigError
from tuner.servers.flags import check_known_flags, model_server_flags, unknown_flag_message


def test_every_flag_of_the_binary_passes() -> None:
    assert unknown_flag_message(dict.fromkeys(TF_SERVING_FLAGS, "1"), "server.extra_flags") is None


def test_a_typo_names_the_closest_real_flag() -> None:
    message = unknown_flag_message({"tensorflow_intra_op_paralelism": "2"}, "server.extra_flags")
    assert message is not None
    assert "'tensorflow_intra_op_paralelism'" in message
    assert "did you mean tensorflow_intra_op_parallelism?" in message
    assert "2.19" in message and "ignore" in message


def test_a_name_nothing_like_a_flag_points_at_help() -> None:
    assert closest_flag("zzzz") is None
    message = unknown_flag_message({"zzzz": "1"}, "server.extra_flags")
    assert message is not None and "--help" in message


def test_backends_refuse_unknown_flags_too() -> None:
    with pytest.raises(ServerConfigError, match="did you mean rest_api_num_threads"):
        model_server_flags(
            grpc_port=1,
            rest_port=2,
            model_name="m",
            model_base_path="/m",
            batching_file=None,
            server_flags={},
            extra_flags={"rest_api_num_thread": "4"},
        )
    check_known_flags({"grpc_max_threads": "8"}, "server.extra_flags")  # a real one passes


def test_the_cli_exits_2_with_one_sentence(tmp_path: Path, capsys) -> None:
    config = tmp_path / "tuner.toml"
    config.write_text('[server]\nextra_flags = { enable_model_warmpu = "true" }\n')
    code = main(["show", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "did you mean enable_model_warmup?" in err and str(config) in err
