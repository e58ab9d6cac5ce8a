# Two commands on a fresh machine (Python 3.11, pip, make, git): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL := models/sentiment/1/saved_model.pb
# TensorFlow's C++ start-up chatter hides the lines a user needs to read.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: help venv model browser test test-fast test-docker lint docs demo bench bench-capacity bench-demo-winners bench-any-model bench-docker bench-parallel bench-faults clean

help:
	@echo "make demo   - install, build the demo model, run a short study, export the winner"
	@echo "make test   - install (if needed, and Chromium for the report's test), lint, the test-suite"
	@echo "make docs   - build the docs site (MkDocs, --strict) into build/site"
	@echo "make test-fast  - the test-suite without the end-to-end studies (marked slow)"
	@echo "make bench  - the performance benchmarks (results under bench/out/)"
	@echo "make bench-capacity [BENCH_ARGS=--short] - capacity at the SLO: tuned vs references, noise, cost"
	@echo "make bench-demo-winners [BENCH_ARGS=--short] - three demo studies, their winners re-measured side by side"
	@echo "make test-docker  - the images and the docker backend against a real engine (podman if none)"
	@echo "make bench-any-model [BENCH_ARGS=--short] - the image model: tuned vs references at its own SLO"
	@echo "make bench-parallel - 1, 2 and 3 tuners sharing a study on PostgreSQL; storage per trial"
	@echo "make bench-docker - image sizes, build, start-to-AVAILABLE and stop times in a container"
	@echo "make bench-faults [BENCH_ARGS=--short] - a study with parts of the bench killed mid-step"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	@touch $(STAMP)

venv: $(STAMP)

# Rebuilt when the code that defines it changes: a model trained on other token ids is wrong.
MODEL_SOURCES := service/text.py service/corpus.py scripts/build_demo_model.py

$(MODEL): $(MODEL_SOURCES) | $(STAMP)
	$(PY) -m scripts.build_demo_model --out models/sentiment $(if $(wildcard $(MODEL)),--force)

model: $(MODEL)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# The report is tested in a real headless Chromium: Debian's, installed when none is found.
browser:
	@scripts/chromium.sh

# One pytest-xdist worker per core and two more: the whole-study tests wait on load windows and
# restarts (2 workers: 14 min 40 s, 3: 11 min 12 s, 4: see bench/RESULTS.md, on 2 cores), a
# module's tests on one worker (they share its servers), modules with `alone` tests first, then
# those with slow tests; tests marked `alone` run beside nothing but each other. PYTEST_ARGS adds
# to it, e.g. PYTEST_ARGS="tests/service -x" (or "-n 2"). pytest's exit code 5 (no test
# collected) fails the target as any other non-zero code does.
# PYTHONDONTWRITEBYTECODE (set on some CI machines, and on ours) is cleared for the suite: its
# hundreds of Python processes would each compile the checkout's modules again, and pytest rewrite
# every test module in each worker (collection 2.6 -> 1.2 CPU-s per process).
PYTEST := PYTHONDONTWRITEBYTECODE= $(VENV)/bin/pytest -n $$(( $$(nproc) + 2 )) --dist loadscope --no-loadscope-reorder
PYTEST_ARGS ?=

test: $(STAMP) $(MODEL) lint browser
	$(PYTEST) $(PYTEST_ARGS)

test-fast: $(STAMP) $(MODEL) browser
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

# The docs site; --strict fails on a broken link, a page left out of the nav, or a tuner.toml
# key without a description (the reference is generated from tuner/config.py).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# A real Docker-API engine (podman from Debian's packages when none answers), the Dockerfile's
# targets built on it, then tests/docker/; the podman service it started is stopped after.
test-docker: $(STAMP) $(MODEL)
	TUNER_TEST_DOCKER=1 scripts/docker_engine.sh run $(VENV)/bin/pytest tests/docker

bench-docker: $(STAMP) $(MODEL)
	scripts/docker_engine.sh run $(PY) bench/container_bench.py

demo: $(STAMP) $(MODEL)
	$(VENV)/bin/tuner optimize --config tuner.toml
	$(VENV)/bin/tuner export --config tuner.toml --out batching_parameters.txt
	@echo
	@echo "Review every trial:  $(VENV)/bin/optuna-dashboard sqlite:///tuning.db --artifact-dir artifacts"
	@echo "The study as one page: $(VENV)/bin/tuner report --out report.html"

bench: $(STAMP) $(MODEL)
	$(PY) bench/model_bench.py
	$(PY) bench/server_overhead.py
	$(PY) bench/model_server_bench.py
	$(PY) bench/server_start_bench.py
	$(PY) bench/service_bench.py
	$(PY) bench/client_bench.py
	$(PY) bench/load_generator_bench.py
	$(PY) bench/load_workers_bench.py
	$(PY) bench/tuner_bench.py
	$(PY) bench/interval_coverage.py
	$(PY) bench/capacity_bench.py
	$(PY) bench/capacity_precision.py
	$(PY) bench/parallel_tuners_bench.py
	$(PY) bench/review_bench.py

# Parallel tuners on one PostgreSQL study (a few minutes).
bench-parallel: $(STAMP) $(MODEL)
	$(PY) bench/parallel_tuners_bench.py $(BENCH_ARGS)

# The capacity benchmarks alone (the search on a queue of known capacity, tuned vs references,
# then precision: pauses, interleaved searches, probes); BENCH_ARGS=--short checks they work
# in a few minutes.
bench-capacity: $(STAMP) $(MODEL)
	$(PY) bench/interval_coverage.py $(BENCH_ARGS)
	$(PY) bench/capacity_bench.py $(BENCH_ARGS)
	$(PY) bench/capacity_precision.py $(BENCH_ARGS)

bench-demo-winners: $(STAMP) $(MODEL)
	$(PY) bench/demo_winners.py $(BENCH_ARGS)

bench-any-model: $(STAMP)
	$(PY) bench/any_model_bench.py $(BENCH_ARGS)

# A 12-trial study with a fault every 3 trials; BENCH_ARGS=--short checks it in a few minutes.
bench-faults: $(STAMP) $(MODEL)
	$(PY) bench/faults.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) models artifacts runs tuning.db tuning.db-* tuning.db.lock-* batching_parameters.txt batching_parameters.recheck.toml report.html bench/out build
