"""Small SavedModels of the shapes real teams serve, built locally in seconds (no downloads).

An image classifier (float32 [None, 32, 32, 3], convolutional, random weights), a tabular
model with several named inputs of mixed dtypes, a text model taking strings, and one without
a batch dimension. The tests and `python -m tuner init` examples build them; each builder
writes `BASE/1/` and returns BASE, the directory `--model_base_path` takes.

    python -m scripts.example_models image /tmp/models/image
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from scripts.own_tempdir import own_tempdir

VERSION = "1"


def _save(module, base: Path, signature) -> Path:
    import tensorflow as tf

    with own_tempdir():  # tracing writes AutoGraph's modules there (scripts/own_tempdir.py)
        tf.saved_model.save(module, str(base / VERSION), signatures={"serving_default": signature})
    return base


def build_image_model(base: Path, seed: int = 0) -> Path:
    """conv 3x3x16 -> relu -> conv 3x3x32 stride 2 -> global mean -> dense 10 -> softmax."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> tf.Variable:
        return tf.Variable(rng.normal(0, 0.1, shape).astype(np.float32))

    class Image(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.k1, self.k2, self.dense = (
                weights(3, 3, 3, 16),
                weights(3, 3, 16, 32),
                weights(32, 10),
            )

        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32, name="image")])
        def serve(self, image):
            x = tf.nn.relu(tf.nn.conv2d(image, self.k1, 1, "SAME"))
            x = tf.nn.relu(tf.nn.conv2d(x, self.k2, 2, "SAME"))
            logits = tf.reduce_mean(x, axis=[1, 2]) @ self.dense
            return {"probabilities": tf.nn.softmax(logits)}

    module = Image()
    return _save(module, base, module.serve)


def build_tabular_model(base: Path) -> Path:
    """Named inputs of four dtypes: a ranking score and a bucket per row."""
    import tensorflow as tf

    class Tabular(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable([0.5, -0.25, 0.1, 0.2], dtype=tf.float32)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.float32, name="age"),
                tf.TensorSpec([None], tf.int64, name="clicks"),
                tf.TensorSpec([None], tf.string, name="country"),
                tf.TensorSpec([None, 4], tf.float32, name="embedding"),
            ]
        )
        def serve(self, age, clicks, country, embedding):
            bucket = tf.strings.to_hash_bucket_fast(country, 8)
            score = (
                age * 0.01
                + tf.cast(clicks, tf.float32) * 0.1
                + tf.cast(bucket, tf.float32) * 0.05
                + tf.linalg.matvec(embedding, self.w)
            )
            return {"score": tf.sigmoid(score), "bucket": bucket}

    module = Tabular()
    return _save(module, base, module.serve)


def build_text_model(base: Path) -> Path:
    """Strings in: hashed words, a mean embedding, two class probabilities out."""
    import tensorflow as tf

    rng = np.random.default_rng(1)

    class Text(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = tf.Variable(rng.normal(0, 0.1, (256, 8)).astype(np.float32))
            self.dense = tf.Variable(rng.normal(0, 0.1, (8, 2)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            words = tf.strings.split(tf.strings.lower(text))
            ids = tf.strings.to_hash_bucket_fast(words, 256)
            vectors = tf.ragged.map_flat_values(tf.nn.embedding_lookup, self.embedding, ids)
            pooled = tf.math.divide_no_nan(
                tf.reduce_sum(vectors, axis=1),
                tf.cast(tf.expand_dims(vectors.row_lengths(), 1), tf.float32),
            )
            return {"probabilities": tf.nn.softmax(pooled @ self.dense)}

    module = Text()
    return _save(module, base, module.serve)


def build_unbatched_model(base: Path) -> Path:
    """One fixed-shape input with no batch dimension: batching cannot apply to it."""
    import tensorflow as tf

    class Unbatched(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([3], tf.float32, name="x")])
        def serve(self, x):
            return {"total": tf.reduce_sum(x)}

    module = Unbatched()
    return _save(module, base, module.serve)


def write_warmup(version_dir: Path, requests: Iterable) -> Path:
    """`assets.extra/tf_serving_warmup_requests`: a TFRecord of PredictionLog, one per request,
    as TF Serving's docs write it."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for request in requests:
            entry = prediction_log_pb2.PredictionLog()
            entry.predict_log.request.CopyFrom(request)
            writer.write(entry.SerializeToString())
    return path


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "image": build_image_model,
    "tabular": build_tabular_model,
    "text": build_text_model,
    "unbatched": build_unbatched_model,
}


def main() -> None:
    parser = argparse.ArgumentParser(description="Build an example SavedModel.")
    parser.add_argument("kind", choices=sorted(BUILDERS))
    parser.add_argument("base", type=Path, help="directory to write (BASE/1/saved_model.pb)")
    args = parser.parse_args()
    print(BUILDERS[args.kind](args.base))


if __name__ == "__main__":
    main()
