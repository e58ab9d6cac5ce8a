"""Names the config, the backends and the export share: defined here once, so a new backend or
image version is one edit (no imports of its own, so tuner/config.py can use it cheaply)."""

from __future__ import annotations

BACKENDS = ("auto", "embedded", "binary", "docker")
DEFAULT_BINARY = "tensorflow_model_server"  # the binary's name, on PATH and in the image
DEFAULT_IMAGE = "tensorflow/serving:2.19.0"
METRICS_PATH = "/monitoring/prometheus/metrics"  # as the monitoring config we write says
