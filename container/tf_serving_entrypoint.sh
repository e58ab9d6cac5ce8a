#!/bin/bash
# The same entrypoint as the tensorflow/serving image (written by the RUN step in
# tensorflow_serving/tools/docker/Dockerfile, TF Serving 2.19): fixed ports, the model named by
# MODEL_NAME under MODEL_BASE_PATH, and the container's arguments appended as extra flags.
# Like the original, the server runs as bash's child (no exec).
tensorflow_model_server --port=8500 --rest_api_port=8501 \
  --model_name=${MODEL_NAME} --model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME} \
  "$@"
