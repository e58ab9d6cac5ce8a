"""Preprocessing: the one module training and serving share."""

from __future__ import annotations

import numpy as np
import pytest

from service.corpus import generate
from service.text import (
    FROWN_TOKEN,
    OOV_ID,
    PAD_ID,
    PAD_TOKEN,
    SEQUENCE_LENGTH,
    SMILE_TOKEN,
    Vocabulary,
    clean,
    tokenize,
)


def test_clean_drops_urls_mentions_hashes_and_punctuation() -> None:
    assert clean("@Airline THE flight was sooooo GOOD!!! http://t.co/abc #happy") == (
        "the flight was soo good happy"
    )
    assert clean("Don't &amp; won’t") == "don't won't"
    assert clean("   ") == ""
    assert clean("SEE WWW.EXAMPLE.ORG/X or HTTPS://T.CO/Y") == "see or"
    assert clean("'quoted' rock'n'roll, 10:30 (ok)") == "quoted rock'n'roll 10 30 ok"


def test_emoticons_become_words() -> None:
    assert clean("great :) :-) :D ;) <3 😊 👍") == " ".join(["great"] + [SMILE_TOKEN] * 7)
    assert clean("bad :( :-( >:( :'( 😡 👎") == " ".join(["bad"] + [FROWN_TOKEN] * 6)
    assert clean("a:b :Do http://t.co/a:)") == "a b do"


def test_tokenize_splits_cleaned_text() -> None:
    assert tokenize("Hello, world") == ["hello", "world"]


def test_vocabulary_is_ordered_by_frequency_then_alphabet() -> None:
    vocab = Vocabulary.build(["b a", "a c", "a"])
    assert vocab.tokens[:2] == [PAD_TOKEN, "<unk>"]
    assert vocab.tokens[2:] == ["a", "b", "c"]


def test_encode_pre_pads_and_maps_unknown_tokens() -> None:
    vocab = Vocabulary.build(["good service"])
    row = vocab.encode("good unknown service")
    assert row.dtype == np.int32
    assert row.shape == (SEQUENCE_LENGTH,)
    assert list(row[-3:]) == [vocab.tokens.index("good"), OOV_ID, vocab.tokens.index("service")]
    assert set(row[:-3]) == {PAD_ID}


def test_encode_keeps_the_last_tokens_of_long_texts() -> None:
    vocab = Vocabulary.build(["a b"])
    row = vocab.encode("a " * 60 + "b")
    assert row[-1] == vocab.tokens.index("b")
    assert PAD_ID not in row


def test_ids_agree_with_tokenize_on_letter_runs_and_unknown_words() -> None:
    vocab = Vocabulary.build(["so good", "goood"])
    texts = ["Sooooo GOOOOD", "good goooood stuff", "xxxxx", "@a #so :) it's"]
    texts += [text for text, _ in generate(300, seed=11)]
    get = vocab.tokens.index
    for text in texts:
        expected = [get(t) if t in vocab.tokens else OOV_ID for t in tokenize(text)]
        assert vocab.ids(text) == expected, text


def test_encode_batch_of_nothing_is_empty() -> None:
    batch = Vocabulary.build(["a"]).encode_batch([])
    assert batch.shape == (0, SEQUENCE_LENGTH)
    assert batch.dtype == np.int32


def test_encode_batch_matches_encode_row_by_row() -> None:
    vocab = Vocabulary.build(["the food was great", "bad service"])
    texts = ["the food was great", "", "bad service today"]
    batch = vocab.encode_batch(texts)
    assert batch.shape == (3, SEQUENCE_LENGTH)
    for row, text in zip(batch, texts, strict=True):
        assert np.array_equal(row, vocab.encode(text))
    assert not batch[1].any()


def test_vocabulary_round_trips_through_its_file(tmp_path) -> None:
    vocab = Vocabulary.build(["one two two"])
    vocab.save(tmp_path / "vocab.txt")
    assert Vocabulary.from_file(tmp_path / "vocab.txt").tokens == vocab.tokens


def test_from_model_dir_picks_the_highest_version(tmp_path) -> None:
    for version, word in ((1, "old"), (10, "new"), (2, "mid")):
        assets = tmp_path / str(version) / "assets"
        assets.mkdir(parents=True)
        Vocabulary.build([word]).save(assets / "vocab.txt")
    (tmp_path / "notes").mkdir()
    assert "new" in Vocabulary.from_model_dir(tmp_path).tokens


def test_from_model_dir_without_versions_says_so(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no numeric model version"):
        Vocabulary.from_model_dir(tmp_path)


def test_a_vocabulary_must_reserve_padding_and_unknown() -> None:
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(["a", "b"])
