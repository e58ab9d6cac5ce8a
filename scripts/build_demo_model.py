"""Build the demo model: a tweet-sentiment classifier exported as a TF Serving SavedModel.

    python -m scripts.build_demo_model [--out models/sentiment] [--force]

Embedding + bidirectional LSTM + softmax over (Neutral, Negative, Positive), trained for a
few seconds on the generated corpus with fixed seeds and TensorFlow's deterministic ops, so
every build of the same code yields the same weights. The SavedModel's `serving_default`
signature takes int32 `tokens` [batch, 50] and returns float32 `probabilities` [batch, 3];
the vocabulary travels with it as the asset `assets/vocab.txt`, which the service reads.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scripts.own_tempdir import own_tempdir
from service.corpus import generate
from service.text import LABELS, OOV_ID, PAD_ID, SEQUENCE_LENGTH, VOCAB_ASSET, Vocabulary

DEFAULT_BASE_PATH = Path("models/sentiment")
VERSION = 1
SEED = 1234
TRAIN_SIZE = 3000
HELD_OUT_SIZE = 1500
EPOCHS = 4
BATCH_SIZE = 64
LEARNING_RATE = 0.01
EMBEDDING_DIM = 32
LSTM_UNITS = 32
UNKNOWN_WORD_SHARE = 0.1
# The files a complete export has; anything less is rebuilt.
_EXPORT_FILES = ("saved_model.pb", "variables/variables.index", f"assets/{VOCAB_ASSET}")
# A build that gets these wrong is not installed: the test-suite and the demo rely on them.
MUST_PASS = (
    ("I had an excellent service", "Positive"),
    ("That is really a bad service", "Negative"),
    ("The package arrived on Tuesday", "Neutral"),
)


class BuildError(RuntimeError):
    """The trained model failed its sanity checks; nothing was installed."""


@dataclass(frozen=True)
class BuildReport:
    vocabulary_size: int
    held_out_accuracy: float
    seconds: float


def is_complete(version_dir: Path) -> bool:
    return all((version_dir / name).is_file() for name in _EXPORT_FILES)


def ensure_demo_model(base_path: Path = DEFAULT_BASE_PATH, force: bool = False) -> Path:
    """The version directory of the demo model, built only when it is missing (or forced)."""
    base_path = Path(base_path)
    version_dir = base_path / str(VERSION)
    if is_complete(version_dir) and not force:
        return version_dir
    base_path.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so an interrupted build never leaves half a model
    # where a model server would load it (servers only look at numeric directory names).
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=base_path))
    try:
        with own_tempdir():
            report = build(staging / "model")
        _install(staging, version_dir, force=force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(
        f"event=demo_model_built path={version_dir} vocabulary={report.vocabulary_size} "
        f"held_out_accuracy={report.held_out_accuracy:.3f} seconds={report.seconds:.1f}",
        file=sys.stderr,
    )
    return version_dir


def _install(staging: Path, version_dir: Path, *, force: bool) -> None:
    """Rename the finished export into place; the old version, if any, is swapped out."""
    try:
        os.rename(staging / "model", version_dir)
        return
    except OSError:
        if is_complete(version_dir) and not force:
            return  # another build finished first; both are the same model
    os.rename(version_dir, staging / "replaced")
    os.rename(staging / "model", version_dir)


def build(export_dir: Path) -> BuildReport:
    """Train the model and export it to `export_dir` (which must not exist yet)."""
    started = time.monotonic()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    with _seeded():
        pairs = generate(TRAIN_SIZE, seed=SEED)
        vocab = Vocabulary.build(text for text, _ in pairs)
        x, y = _with_unknown_words(*_arrays(vocab, pairs), np.random.default_rng(SEED))
        x_held_out, y_held_out = _arrays(vocab, generate(HELD_OUT_SIZE, seed=SEED + 1))
        trained = _model(len(vocab), unroll=False)
        trained.compile(
            optimizer=keras.optimizers.Adam(LEARNING_RATE),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        trained.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=True, verbose=0)
        _, accuracy = trained.evaluate(x_held_out, y_held_out, verbose=0)
        # The same weights in an unrolled LSTM: 50 fixed steps as straight-line ops cost about
        # half of a while-loop per call on CPU, and the model server is benchmarked on this.
        model = _model(len(vocab), unroll=True)
        model.set_weights(trained.get_weights())
    _check_must_pass(model, vocab)

    class ServingModule(tf.Module):
        """Exactly our signature and asset. Only the weights are tracked, not the Keras objects
        (nor their dropout seed state): saving then traces `serve` alone, and the export loads
        in a fraction of the time (the tuner restarts the server for every trial)."""

        def __init__(self, vocab_path: str) -> None:
            super().__init__()
            self.weights = list(model.weights)
            self.vocab = tf.saved_model.Asset(vocab_path)

        @tf.function(
            input_signature=[tf.TensorSpec([None, SEQUENCE_LENGTH], tf.int32, name="tokens")]
        )
        def serve(self, tokens):
            return {"probabilities": model(tokens, training=False)}

    vocab_file = export_dir.parent / VOCAB_ASSET
    vocab.save(vocab_file)
    module = ServingModule(str(vocab_file))
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": module.serve})
    return BuildReport(len(vocab), float(accuracy), time.monotonic() - started)


def _model(vocabulary_size: int, *, unroll: bool):
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=(SEQUENCE_LENGTH,), dtype="int32"),
            keras.layers.Embedding(vocabulary_size, EMBEDDING_DIM),
            keras.layers.Bidirectional(keras.layers.LSTM(LSTM_UNITS, unroll=unroll)),
            keras.layers.Dense(len(LABELS), activation="softmax"),
        ]
    )


def _arrays(vocab: Vocabulary, pairs: list[tuple[str, str]]):
    import numpy as np

    labels = np.array([LABELS.index(label) for _, label in pairs], dtype=np.int32)
    return vocab.encode_batch([text for text, _ in pairs]), labels


def _with_unknown_words(x, y, rng):
    """Real texts have words the corpus never used. Hide a share of the known words behind
    OOV_ID, so an unknown word is just noise to the model, and add Neutral rows that have no
    known word at all (an empty text carries no sentiment)."""
    import numpy as np

    x = x.copy()
    x[(x > OOV_ID) & (rng.random(x.shape) < UNKNOWN_WORD_SHARE)] = OOV_ID
    count = max(4, len(x) // 50)
    wordless = np.full((count, SEQUENCE_LENGTH), PAD_ID, dtype=np.int32)
    for row in range(count):
        wordless[row, SEQUENCE_LENGTH - row % 4 :] = OOV_ID
    neutral = np.full(count, LABELS.index("Neutral"), dtype=y.dtype)
    return np.concatenate([x, wordless]), np.concatenate([y, neutral])


def _check_must_pass(model, vocab: Vocabulary) -> None:
    probabilities = model.predict(vocab.encode_batch([t for t, _ in MUST_PASS]), verbose=0)
    wrong = [
        f"{text!r} -> {LABELS[int(row.argmax())]} (expected {label})"
        for (text, label), row in zip(MUST_PASS, probabilities, strict=True)
        if LABELS[int(row.argmax())] != label
    ]
    if wrong:
        raise BuildError(
            f"the trained demo model gets {'; '.join(wrong)}, so it was not installed; "
            "fix the corpus or the training settings in scripts/"
        )


@contextlib.contextmanager
def _seeded() -> Iterator[None]:
    """Fixed seeds and deterministic ops for the build, the caller's state restored after:
    tests build in-process and should not inherit either."""
    import keras
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    python_state, numpy_state = random.getstate(), np.random.get_state()
    was_deterministic = tf_config.is_op_determinism_enabled()
    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was_deterministic:
            tf_config.disable_op_determinism()
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.build_demo_model",
        description="Build the demo sentiment SavedModel (version 1) if it is missing.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_BASE_PATH, help="model base path")
    parser.add_argument("--force", action="store_true", help="rebuild even if it exists")
    args = parser.parse_args(argv)
    existed = is_complete(args.out / str(VERSION))
    try:
        version_dir = ensure_demo_model(args.out, force=args.force)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(
            f"error: cannot write the demo model under {args.out} ({error.strerror or error}); "
            "choose a writable directory with --out",
            file=sys.stderr,
        )
        return 1
    if existed and not args.force:
        print(f"event=demo_model_exists path={version_dir} (use --force to rebuild)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
