"""The generated corpus: deterministic, balanced, varied, tweet-like."""

from __future__ import annotations

import re
from collections import Counter

from service.corpus import NEGATIVE_EMOTICONS, POSITIVE_EMOTICONS, generate
from service.text import LABELS, tokenize


def test_same_seed_same_corpus_other_seed_other_corpus() -> None:
    assert generate(200, seed=7) == generate(200, seed=7)
    assert generate(200, seed=7) != generate(200, seed=8)


def test_a_longer_corpus_starts_with_the_shorter_one() -> None:
    assert generate(500, seed=3)[:100] == generate(100, seed=3)


def test_classes_are_balanced_and_labelled_with_the_model_labels() -> None:
    counts = Counter(label for _, label in generate(300))
    assert set(counts) == set(LABELS)
    assert max(counts.values()) - min(counts.values()) <= 1


def test_texts_vary_in_wording_and_length() -> None:
    texts = [text for text, _ in generate(1000)]
    assert len(set(texts)) > 950
    lengths = [len(tokenize(text)) for text in texts]
    assert min(lengths) >= 2
    assert max(lengths) >= 20
    assert len(set(lengths)) >= 15


def test_texts_look_like_tweets() -> None:
    texts = [text for text, _ in generate(1000)]

    def share(pattern: str) -> float:
        return sum(bool(re.search(pattern, text)) for text in texts) / len(texts)

    assert 0.1 < share(r"(^|\s)@\w") < 0.5
    assert 0.05 < share(r"#\w") < 0.4
    assert 0.02 < share(r"https?://|www\.") < 0.2
    assert 0.02 < share(r"(\w)\1\1") < 0.3  # letter runs: "sooo"
    assert share(r"^[^a-z]+$") > 0.005  # shouting


def test_emoticons_agree_with_the_label_and_neutral_texts_have_none() -> None:
    for text, label in generate(1500):
        words = text.split()
        smiles = any(e in words for e in POSITIVE_EMOTICONS)
        frowns = any(e in words for e in NEGATIVE_EMOTICONS)
        assert not (smiles and label != "Positive"), text
        assert not (frowns and label != "Negative"), text


def test_negations_are_a_small_share() -> None:
    pairs = generate(3000)
    negated = [t for t, label in pairs if label != "Neutral" and re.search(r"\bnot\b", t, re.I)]
    assert 0.02 < len(negated) / len(pairs) < 0.1
