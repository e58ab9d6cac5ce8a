"""The command-line flags of `tensorflow_model_server` 2.19, as main.cc declares them.

tensorflow_serving/model_servers/main.cc (tag 2.19.0) builds its flag list with
tensorflow::Flag(name, ...); these are those names, in its order. The binary prints an
unknown `--name` ("unknown argument: ...") and keeps running without it, so a misspelt flag
silently changes nothing: the tuner checks `server.extra_flags` against this list, and the
embedded server accepts every name on it.
"""

from __future__ import annotations

import difflib

__all__ = ["TF_SERVING_FLAGS", "closest_flag"]

TF_SERVING_VERSION = "2.19"

TF_SERVING_FLAGS: tuple[str, ...] = (
    "port",
    "grpc_socket_path",
    "rest_api_port",
    "rest_api_num_threads",
    "rest_api_timeout_in_ms",
    "rest_api_enable_cors_support",
    "enable_batching",
    "allow_version_labels_for_unavailable_models",
    "batching_parameters_file",
    "enable_per_model_batching_parameters",
    "model_config_file",
    "model_config_file_poll_wait_seconds",
    "model_name",
    "model_base_path",
    "num_load_threads",
    "num_unload_threads",
    "max_num_load_retries",
    "load_retry_interval_micros",
    "file_system_poll_wait_seconds",
    "flush_filesystem_caches",
    "tensorflow_session_parallelism",
    "tensorflow_session_config_file",
    "tensorflow_intra_op_parallelism",
    "tensorflow_inter_op_parallelism",
    "use_alts_credentials",
    "ssl_config_file",
    "platform_config_file",
    "per_process_gpu_memory_fraction",
    "saved_model_tags",
    "grpc_channel_arguments",
    "grpc_max_threads",
    "enable_model_warmup",
    "num_request_iterations_for_warmup",
    "version",
    "monitoring_config_file",
    "remove_unused_fields_from_bundle_metagraph",
    "prefer_tflite_model",
    "num_tflite_pools",
    "num_tflite_interpreters_per_pool",
    "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",
    "enable_profiler",
    "thread_pool_factory_config_file",
    "mixed_precision",
    "skip_initialize_tpu",
    "enable_grpc_healthcheck_service",
    "enable_serialization_as_tensor_content",
)


def closest_flag(name: str) -> str | None:
    """The real flag a misspelt `name` most likely meant (None when nothing is close)."""
    matches = difflib.get_close_matches(name, TF_SERVING_FLAGS, n=1, cutoff=0.6)
    return matches[0] if matches else None
