# Three images from one file (see docs/how-to/docker.md):
#   service       the Starlette prediction service   docker build --target service -t tuner-service .
#   model-server  the embedded model server with the tensorflow/serving image's contract
#   tuner         the tuner CLI and optuna-dashboard
# BASE_IMAGE is any Debian-based image with python3.11 and its venv module: an official Python
# slim image by default; `make test-docker` passes one it builds locally with debootstrap.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app
# Every image runs as this unprivileged user.
RUN groupadd --system --gid 10001 tuner \
 && useradd --system --uid 10001 --gid tuner --create-home --home-dir /home/tuner \
      --shell /usr/sbin/nologin tuner
WORKDIR /app

# The requirement sets, from pyproject.toml's dependencies and extras (container/requirements.py).
# Each venv stage copies only its own set, so a
# code change invalidates none of the (large) venv layers, and a dependency change only those
# whose set changed.
FROM base AS requirements
COPY pyproject.toml container/requirements.py /src/
RUN python3 /src/requirements.py sets /src/pyproject.toml /src/req

# pip's cache is a build cache mount: TensorFlow's ~570 MB wheel is downloaded once per machine.
FROM base AS service-venv
COPY container/requirements.py /src/
COPY --from=requirements /src/req/service.txt /src/req/service-nodeps.txt /src/req/tensorflow.txt /src/req/
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -m venv /opt/venv \
 && pip install -r /src/req/service.txt \
 && pip install --no-deps -r /src/req/service-nodeps.txt \
 && pip download --no-deps --dest /tmp/tf -r /src/req/tensorflow.txt \
 && python3 /src/requirements.py protos /tmp/tf/tensorflow-*.whl \
      "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && rm -rf /tmp/tf

FROM base AS model-server-venv
COPY --from=requirements /src/req/model-server.txt /src/req/
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -m venv /opt/venv \
 && pip install -r /src/req/model-server.txt

FROM model-server-venv AS tuner-venv
COPY --from=requirements /src/req/tuner.txt /src/req/
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r /src/req/tuner.txt

# --- The prediction service: configured by its SERVICE_* variables. -----------------------
# The final stages build on their venv stage rather than copying /opt/venv out of it: a copy of
# TensorFlow's ~1.5 GB would be a second layer, and this way the tuner image shares the model
# server's layers. No compiler or pip cache is in any stage to leave behind.
FROM service-venv AS service
COPY service/ /app/service/
# The generic endpoint checks request bodies with the model server's own REST and signature
# code (model_server/rest_json.py, signature_spec.py); they need only numpy, orjson, grpc and
# TensorFlow's protos, which this venv has.
COPY model_server/ /app/model_server/
# The vocabulary is read from the model directory (MODEL_BASE_PATH/<newest version>/assets);
# mount the model read-only at /models/<name>.
ENV SERVICE_HOST=0.0.0.0 \
    SERVICE_PORT=8080 \
    SERVICE_MODEL_SERVER=model-server:8500 \
    SERVICE_MODEL_NAME=sentiment \
    SERVICE_MODEL_BASE_PATH=/models/sentiment
USER tuner
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SERVICE_PORT', '8080') + '/healthz', timeout=2)"]
CMD ["python3", "-m", "service"]

# --- The embedded model server, a drop-in for the tensorflow/serving image. ----------------
# Same contract as tensorflow_serving/tools/docker/Dockerfile: tensorflow_model_server on
# PATH taking the real flags, gRPC 8500, REST 8501, MODEL_BASE_PATH=/models, MODEL_NAME=model
# and the same entrypoint script (container arguments become extra flags).
FROM model-server-venv AS model-server
COPY model_server/ /app/model_server/
COPY container/tensorflow_model_server container/tf_serving_entrypoint.sh /usr/bin/
ENV MODEL_BASE_PATH=/models \
    MODEL_NAME=model
RUN mkdir -p ${MODEL_BASE_PATH}
USER tuner
EXPOSE 8500 8501
ENTRYPOINT ["/usr/bin/tf_serving_entrypoint.sh"]

# --- The tuner CLI (and optuna-dashboard: --entrypoint optuna-dashboard). ------------------
# Mount the study directory (tuner.toml, models, the database) at /work.
FROM tuner-venv AS tuner
COPY tuner/ /app/tuner/
COPY service/ /app/service/
COPY model_server/ /app/model_server/
COPY search_spaces/ /app/search_spaces/
COPY tuner.toml /app/
RUN mkdir /work && chown tuner:tuner /work
USER tuner
WORKDIR /work
EXPOSE 8080
ENTRYPOINT ["python3", "-m", "tuner"]
CMD ["--help"]
