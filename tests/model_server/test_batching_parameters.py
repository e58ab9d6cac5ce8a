"""The batching file format and TF Serving's rules for it."""

from __future__ import annotations

import pytest

from model_server.batching_parameters import (
    BatchingConfigError,
    BatchingParameters,
    BatchingParametersProto,
    load_file,
    parse_text,
    render,
    round_to_allowed_batch_size,
)

TF_SERVING_EXAMPLE = """
max_batch_size { value: 32 }
batch_timeout_micros { value: 5000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 4 }
allowed_batch_sizes: 8
allowed_batch_sizes: 16
allowed_batch_sizes: 32
pad_variable_length_inputs: true
"""


def test_parses_the_format_tf_serving_documents() -> None:
    params = parse_text(TF_SERVING_EXAMPLE)
    assert params == BatchingParameters(
        max_batch_size=32,
        batch_timeout_micros=5000,
        max_enqueued_batches=100,
        num_batch_threads=4,
        allowed_batch_sizes=(8, 16, 32),
        pad_variable_length_inputs=True,
    )


def test_render_round_trips_and_uses_wrapper_syntax() -> None:
    params = BatchingParameters(
        max_batch_size=64,
        batch_timeout_micros=0,
        enable_large_batch_splitting=True,
        max_execution_batch_size=16,
        allowed_batch_sizes=(4, 16, 64),
    )
    text = render(params)
    assert "max_batch_size { value: 64 }" in text.splitlines()
    assert "batch_timeout_micros { value: 0 }" in text.splitlines()  # an explicit 0 is kept
    assert "enable_large_batch_splitting { value: true }" in text.splitlines()
    assert parse_text(text) == params


def test_render_quotes_strings_and_renders_nothing_for_defaults() -> None:
    assert render(BatchingParameters()) == ""
    text = render(BatchingParameters(thread_pool_name='pool "a"'))
    assert text == 'thread_pool_name { value: "pool \\"a\\"" }\n'
    assert parse_text(text).thread_pool_name == 'pool "a"'


def test_field_numbers_match_tf_serving() -> None:
    numbers = {f.name: f.number for f in BatchingParametersProto.DESCRIPTOR.fields}
    assert numbers == {
        "max_batch_size": 1,
        "batch_timeout_micros": 2,
        "max_enqueued_batches": 3,
        "num_batch_threads": 4,
        "thread_pool_name": 5,
        "allowed_batch_sizes": 6,
        "pad_variable_length_inputs": 7,
        "enable_large_batch_splitting": 8,
        "max_execution_batch_size": 9,
    }


def test_unset_fields_take_tf_serving_defaults() -> None:
    params = parse_text("")
    assert params.effective_max_batch_size == 1000
    assert params.effective_batch_timeout_micros == 0
    assert params.effective_max_enqueued_batches == 10
    assert params.effective_num_batch_threads >= 1
    assert not params.large_batch_splitting


SPLIT = "enable_large_batch_splitting { value: true }\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # shared_batch_scheduler.h, SharedBatchScheduler::Create.
        ("num_batch_threads { value: 0 }", "num_batch_threads must be positive, got 0"),
        # shared_batch_scheduler.h, AddQueueAfterRewritingOptions: input_batch_size_limit.
        ("max_batch_size { value: 0 }", "max_batch_size must be positive, got 0 (TF Serving"),
        # Stricter: TF checks only == 0.
        ("max_batch_size { value: -4 }", "stricter than TF Serving"),
        # AddQueueAfterRewritingOptions: batch_timeout_micros must be non-negative.
        ("batch_timeout_micros { value: -1 }", "batch_timeout_micros must be >= 0"),
        # AddQueue keeps 0 only with splitting, where AddQueueAfterRewritingOptions refuses it.
        (
            "max_batch_size { value: 8 }\n" + SPLIT + "max_enqueued_batches { value: 0 }",
            "max_enqueued_batches must be positive with enable_large_batch_splitting",
        ),
        ("max_enqueued_batches { value: -1 }", "compares it as unsigned"),
        # AddQueueAfterRewritingOptions: input_batch_size_limit >= max_execution_batch_size.
        (
            "max_batch_size { value: 8 }\n" + SPLIT + "max_execution_batch_size { value: 16 }",
            "max_execution_batch_size (16) must not exceed max_batch_size (8)",
        ),
        # bundle_factory_util.h, GetQueueOptions: the default comes from max_batch_size's value.
        (SPLIT, "enable_large_batch_splitting needs max_batch_size or max_execution_batch_size"),
        (
            "max_batch_size { value: 8 }\n" + SPLIT + "max_execution_batch_size { value: 0 }",
            "max_execution_batch_size must be positive, got 0",
        ),
        # bundle_factory_util.cc, WrapSessionForBatching: last entry == max_batch_size...
        (
            "max_batch_size { value: 32 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 16",
            "the last entry of allowed_batch_sizes (16) must equal max_batch_size (32)",
        ),
        # ...or 1000 (QueueOptions' default input_batch_size_limit) when it is unset...
        ("allowed_batch_sizes: 8", "must equal max_batch_size (1000)"),
        # ...also with splitting: max_execution_batch_size plays no part in the rule.
        (
            "max_batch_size { value: 64 }\n" + SPLIT + "max_execution_batch_size { value: 16 }\n"
            "allowed_batch_sizes: 16",
            "must equal max_batch_size (64)",
        ),
    ],
)
def test_rule_violations_name_the_rule(text: str, message: str) -> None:
    with pytest.raises(BatchingConfigError, match=r"^batch\.txt: ") as info:
        parse_text(text, source="batch.txt")
    assert message in str(info.value)


def test_files_tf_serving_accepts_are_accepted() -> None:
    # With splitting, the list ends at max_batch_size, not max_execution_batch_size
    # (WrapSessionForBatching), and max_execution_batch_size defaults to max_batch_size.
    split = parse_text(
        "max_batch_size { value: 64 }\n" + SPLIT + "max_execution_batch_size { value: 16 }\n"
        "allowed_batch_sizes: 8\nallowed_batch_sizes: 16\nallowed_batch_sizes: 64"
    )
    assert split.effective_max_execution_batch_size == 16
    assert (
        parse_text("max_batch_size { value: 8 }\n" + SPLIT).effective_max_execution_batch_size == 8
    )
    # The model-server path never checks the list's order (only CreateBasicBatchingSession
    # does); padding then takes the first entry that fits (RoundToLowestAllowedBatchSize).
    odd = parse_text(
        "max_batch_size { value: 16 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 4\n"
        "allowed_batch_sizes: 16"
    )
    assert round_to_allowed_batch_size(odd.allowed_batch_sizes, 3) == 8
    assert round_to_allowed_batch_size(odd.allowed_batch_sizes, 20) == 20
    # AddQueue rewrites max_enqueued_batches 0 to 1 without splitting.
    assert parse_text("max_enqueued_batches { value: 0 }").effective_max_enqueued_batches == 1


def test_syntax_errors_name_file_and_line() -> None:
    with pytest.raises(BatchingConfigError) as info:
        parse_text("max_batch_size { value: 8 }\nmax_batch_sise { value: 8 }", source="b.txt")
    assert str(info.value).startswith("b.txt, line 2: ")
    assert "max_batch_sise" in str(info.value)


def test_load_file_reports_a_missing_file(tmp_path) -> None:
    with pytest.raises(BatchingConfigError, match="cannot read batching parameters file"):
        load_file(tmp_path / "nope.txt")


def test_load_file_reads_a_file(tmp_path) -> None:
    path = tmp_path / "batching_parameters.txt"
    path.write_text(TF_SERVING_EXAMPLE)
    assert load_file(path).allowed_batch_sizes == (8, 16, 32)
