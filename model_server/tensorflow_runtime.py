"""The TensorFlow functions the model server runs, from the modules that define them:
`tf.saved_model.load` is `saved_model.load.load`, `tf.constant` is `constant_op.constant`, and
so on. Under `python -m model_server` they come from the bare package
(model_server/bare_tensorflow.py); anywhere else `import tensorflow` is the usual full import."""

from __future__ import annotations

import tensorflow  # noqa: F401 (the package first: bare in the server, full elsewhere)
from tensorflow.python.data.ops.readers import TFRecordDatasetV2 as TFRecordDataset
from tensorflow.python.framework.config import (
    set_inter_op_parallelism_threads,
    set_intra_op_parallelism_threads,
)
from tensorflow.python.framework.constant_op import constant
from tensorflow.python.framework.errors import DataLossError, OpError
from tensorflow.python.saved_model.load import load as load_saved_model

__all__ = [
    "DataLossError",
    "OpError",
    "TFRecordDataset",
    "constant",
    "load_saved_model",
    "set_inter_op_parallelism_threads",
    "set_intra_op_parallelism_threads",
]
