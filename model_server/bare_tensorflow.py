"""TensorFlow's runtime without its public API, for the model server's own process.

`import tensorflow` runs `tensorflow/__init__.py`, which builds the whole public API
(tf.compat.v1, tf.distribute, feature columns, Keras hooks...): ~0.8 s of the ~2.9 s of CPU a
model server spent from its start to serving the demo model (bench/RESULTS.md), paid at every
trial's restart. The server needs none of it: it loads a SavedModel, calls its signatures and
reads TFRecord warm-up files, all from modules inside the wheel (`tensorflow.python...`), which
import each other by those full paths and never the public API.

So `python -m model_server` makes `tensorflow` a bare namespace over the wheel's directory for
its whole life (TensorFlow's C++ helpers import submodules of it while a model loads), then does
what `tensorflow/__init__.py` does besides building the API: TensorFlow 2 behaviour (eager
execution, resource variables, v2 control flow) and the kernels of `tensorflow-plugins`
directories. Not done: Keras' eager import, which registers Keras classes (optimizers) for
`tf.saved_model.load`; an unregistered object loads as a plain trackable, and serving
signatures do not call it. Any other process imports TensorFlow as usual.
"""

from __future__ import annotations

import importlib.util
import os
import site
import sys
import types
from pathlib import Path


def install() -> bool:
    """Make `tensorflow` the bare namespace in this process; False (nothing done) when
    TensorFlow is imported already or not installed."""
    spec = None if "tensorflow" in sys.modules else importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return False
    package = types.ModuleType("tensorflow", "TensorFlow's modules, without its public API")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["tensorflow"] = package
    os.environ["TF2_BEHAVIOR"] = "1"
    from tensorflow.python import tf2
    from tensorflow.python.compat import v2_compat
    from tensorflow.python.framework import load_library

    tf2.enable()
    v2_compat.enable_v2_behavior()
    for directory in _plugin_directories():
        load_library.load_library(str(directory))
        load_library.load_pluggable_device_library(str(directory))
    if os.environ.get("TF_PLUGGABLE_DEVICE_LIBRARY_PATH"):
        load_library.load_pluggable_device_library(os.environ["TF_PLUGGABLE_DEVICE_LIBRARY_PATH"])
    return True


def _plugin_directories() -> list[Path]:
    """`tensorflow-plugins` under every site-packages directory this interpreter reads."""
    roots = {Path(p) for p in sys.path if "site-packages" in p}
    roots.update(Path(p) for p in site.getsitepackages())
    if site.ENABLE_USER_SITE and site.USER_SITE:
        roots.add(Path(site.USER_SITE))
    return sorted(r / "tensorflow-plugins" for r in roots if (r / "tensorflow-plugins").is_dir())
