"""A bad search-space file fails on load with one message naming the file, the key and why."""

from __future__ import annotations

from pathlib import Path

import pytest

import search_spaces.validation
from search_spaces import SearchSpaceError, load_space

VALID = """
[batching]
max_batch_size = { low = 1, high = 64, log = true }
batch_timeout_micros = { low = 0, high = 1000, step = 100 }
"""

CASES = [
    # (file text, key named in the message, fragment of the reason)
    ("color = 'red'\n" + VALID, "color", "unknown key"),
    ("[batching]\nmax_batch_sise = 8\n", "batching.max_batch_sise", "unknown key"),
    ("[server_flags]\nport = { choices = [1, 2] }\n", "server_flags.port", "unknown key"),
    ("batching = 3\n", "batching", "must be a table"),
    ("description = 4\n" + VALID, "description", "must be a string"),
    (
        "[batching]\nmax_batch_size = { low = 64, high = 8 }\n",
        "batching.max_batch_size",
        "low (64) is greater than high (8)",
    ),
    (
        "[batching]\nbatch_timeout_micros = { low = -5, high = 8 }\n",
        "batching.batch_timeout_micros.low",
        "negative",
    ),
    (
        "[batching]\nmax_batch_size = { low = 1, high = 8.5 }\n",
        "batching.max_batch_size.high",
        "must be an integer, got 8.5",
    ),
    (
        "[batching]\nmax_batch_size = { low = true, high = 8 }\n",
        "batching.max_batch_size.low",
        "must be an integer, got True",
    ),
    (
        "[batching]\nnum_batch_threads = { choices = [1, '2'] }\n",
        "batching.num_batch_threads",
        "must be an integer, got '2'",
    ),
    (
        "[batching]\nmax_batch_size = { low = 1, high = 8, step = 0 }\n",
        "batching.max_batch_size.step",
        "integer >= 1",
    ),
    (
        "[batching]\nmax_batch_size = { low = 1, high = 10, step = 4 }\n",
        "batching.max_batch_size",
        "use high = 9",
    ),
    (
        "[batching]\nbatch_timeout_micros = { low = 0, high = 100, log = true }\n",
        "batching.batch_timeout_micros",
        "log range needs low >= 1",
    ),
    (
        "[batching]\nmax_batch_size = { low = 1, high = 64, step = 2, log = true }\n",
        "batching.max_batch_size",
        "cannot have a step",
    ),
    (
        "[batching]\nmax_batch_size = { low = 1, high = 8, by = 2 }\n",
        "batching.max_batch_size",
        "unknown field 'by'",
    ),
    ("[batching]\nmax_batch_size = { low = 1 }\n", "batching.max_batch_size", "low and high"),
    ("[batching]\nmax_batch_size = { choices = [] }\n", "batching.max_batch_size", "non-empty"),
    ("[batching]\nmax_batch_size = { choices = [8, 8] }\n", "batching.max_batch_size", "repeat"),
    (
        "[batching]\nmax_batch_size = { choices = [8], low = 1 }\n",
        "batching.max_batch_size",
        "not both",
    ),
    (
        "[batching]\nallowed_batch_sizes = { choices = ['none', 'fibonacci'] }\n",
        "batching.allowed_batch_sizes",
        "unknown strategy 'fibonacci'",
    ),
    (
        "[batching]\nallowed_batch_sizes = 'linear_64'\n",
        "batching.allowed_batch_sizes",
        "unknown strategy 'linear_64'",
    ),
    (
        "[batching]\nallowed_batch_sizes = { low = 1, high = 2 }\n",
        "batching.allowed_batch_sizes",
        "cannot be a range",
    ),
    (
        "[batching]\npad_variable_length_inputs = { choices = [0, 1] }\n",
        "batching.pad_variable_length_inputs",
        "true or false",
    ),
    (
        "[batching]\nnum_batch_threads = { low = 1, high = 100000 }\n",
        "batching.num_batch_threads.high",
        "sane limit of 256",
    ),
    (
        "[server_flags]\nrest_api_num_threads = { choices = [0, 4] }\n",
        "server_flags.rest_api_num_threads",
        "smallest allowed value is 1",
    ),
    ("description = 'nothing to tune'\n", "batching", "no parameters"),
    # Values TF Serving refuses, caught by BatchingParameters when the space loads.
    (
        "[batching]\nnum_batch_threads = { low = 0, high = 4 }\n",
        "batching.num_batch_threads",
        "num_batch_threads must be positive, got 0",
    ),
    (
        "[batching]\nmax_enqueued_batches = { choices = [16, -1] }\n",
        "batching.max_enqueued_batches",
        "the smallest allowed value is 0",
    ),
    (
        "[batching]\nmax_batch_size = 0\n",
        "batching.max_batch_size",
        "max_batch_size must be positive",
    ),
]


@pytest.mark.parametrize(("text", "key", "reason"), CASES, ids=[c[1] for c in CASES])
def test_bad_file_names_file_key_and_reason(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = tmp_path / "bad_space.toml"
    path.write_text(text)
    with pytest.raises(SearchSpaceError) as info:
        load_space(path)
    message = str(info.value)
    assert str(path) in message
    assert f"key {key}:" in message
    assert reason in message
    assert "\n" not in message
    assert info.value.key == key


def test_the_same_ranges_load_when_valid(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(VALID)
    assert load_space(path).param_names == ["max_batch_size", "batch_timeout_micros"]


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[batching\nmax_batch_size = 3\n")
    with pytest.raises(SearchSpaceError, match=r"broken\.toml: not valid TOML .*line 1"):
        load_space(path)


def test_unknown_name_lists_the_shipped_spaces() -> None:
    with pytest.raises(SearchSpaceError, match=r"search space tpu: .*cpu, gpu, quick"):
        load_space("tpu")


def test_a_strategy_that_breaks_tf_serving_rules_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The load-time check builds every strategy against every max_batch_size of the range,
    so a strategy wrong for one size only (here: 48) cannot slip through."""
    real = search_spaces.validation.allowed_batch_sizes

    def off_by_one_at_48(strategy: str, max_batch_size: int) -> tuple[int, ...]:
        sizes = real(strategy, max_batch_size)
        return (*sizes[:-1], 47) if max_batch_size == 48 and sizes else sizes

    monkeypatch.setattr(search_spaces.validation, "allowed_batch_sizes", off_by_one_at_48)
    path = tmp_path / "space.toml"
    path.write_text(
        "[batching]\nmax_batch_size = { low = 1, high = 100 }\n"
        "allowed_batch_sizes = { choices = ['none', 'linear_4'] }\n"
    )
    with pytest.raises(SearchSpaceError) as info:
        load_space(path)
    assert info.value.key == "batching.allowed_batch_sizes"
    assert "strategy 'linear_4' with max_batch_size = 48" in str(info.value)
    assert "must equal max_batch_size (48)" in str(info.value)
