"""The model server's process runs TensorFlow without building its public API
(model_server/bare_tensorflow.py): a model loads, replays its warm-up records and predicts with
TensorFlow 2 behaviour, and `tensorflow` stays the bare package."""

from __future__ import annotations

import json
import subprocess
import sys

from scripts.example_models import write_warmup
from tests.model_server.test_warmup import image_copy, image_request  # noqa: F401 (a fixture)

# What `python -m model_server` does before it serves: install the bare package, import the
# server, load, warm up; then a prediction, and what the process's `tensorflow` is.
AS_THE_SERVER_DOES = """
import json, sys
from pathlib import Path
import numpy as np
from model_server import bare_tensorflow
installed = bare_tensorflow.install()
import model_server.server
from model_server import model, warmup
from tensorflow.python import tf2
from tensorflow.python.eager import context

loaded = model.load_model("image", Path(sys.argv[1]))
replayed = warmup.replay(loaded)
outputs = loaded.signatures["serving_default"].run({"image": np.zeros((2, 32, 32, 3), "float32")})
print(json.dumps({
    "installed": installed,
    "replayed": replayed,
    "shapes": [list(value.shape) for value in outputs.values()],
    "public_api": hasattr(sys.modules["tensorflow"], "__version__"),
    "tf2": tf2.enabled(),
    "eager": context.executing_eagerly(),
}))
"""


def test_a_model_loads_warms_up_and_predicts_on_the_bare_package(image_copy):  # noqa: F811
    write_warmup(image_copy / "1", [image_request(1), image_request(2)])
    done = subprocess.run(
        [sys.executable, "-c", AS_THE_SERVER_DOES, str(image_copy)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["installed"] is True
    assert result["replayed"] == 2
    assert result["shapes"] == [[2, 10]]
    assert result["public_api"] is False
    assert result["tf2"] is True and result["eager"] is True
