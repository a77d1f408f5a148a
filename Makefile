# xorlab: `make demo` and `make test` work from a clean clone with only Python 3.11 installed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
RUNS   := runs

.PHONY: setup demo docs typecheck test test-slow test-browser test-chaos test-mlflow-ui test-cluster test-wheel test-all lint replay experiments bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,launchers,mlflow,browser,docs]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install xorlab with its dev, launcher, mlflow, browser and docs extras

demo: setup  ## the notebook replayed, then a small init comparison end to end with its report
	$(BIN)/xorlab-train experiment=notebook_replay hydra.run.dir=$(RUNS)/demo/notebook_replay
	$(BIN)/xorlab-sweep experiment=demo sweep.dir=$(RUNS)/demo/sweep
	$(BIN)/xorlab-report $(RUNS)/demo/sweep --out $(RUNS)/demo/report
	@echo "demo report: $(RUNS)/demo/report/report.md (and report.html)"

test: setup  ## the default test suite (fast; excludes tests marked slow or browser)
	$(BIN)/pytest

test-slow: setup  ## only the slow tests (multi-process launchers, kill -9 recovery)
	$(BIN)/pytest -m slow

test-browser: setup  ## report.html, compare.html and the docs site checked in headless Chromium (installs Debian's chromium if missing)
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)
	$(BIN)/pytest -m browser -n 0 tests/browser

test-chaos: setup  ## the chaos suite: kill -9, concurrent writers, joblib kill, disk full, corrupt files; paused writer + clean, symlinks, clocks, hostile queries, bytes paths, broken numba cache
	$(BIN)/pytest -m chaos -p no:cacheprovider -n 0

docs: setup  ## the documentation site into site/ (mkdocs build --strict), then the tutorial's commands run as written
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	$(BIN)/pytest -m docs -n 0 tests/test_docs.py

test-mlflow-ui: setup  ## MLflow's UI on an export (installs the mlflow-ui extra into .venv)
	$(BIN)/python -m pip install --quiet -e '.[mlflow-ui]'
	$(BIN)/pytest -m mlflow_ui -n 0 tests/test_mlflow_ui.py

test-cluster:  ## a sharded sweep on a real Ray cluster on this machine (head + worker on 127.0.0.1), in its own venv
	test -x .venv-ray/bin/python || $(PYTHON) -m venv .venv-ray
	.venv-ray/bin/python -m pip install --quiet -e '.[ray]' pytest pytest-xdist pytest-timeout psutil
	.venv-ray/bin/pytest -m cluster -n 0 -p no:cacheprovider tests/test_cluster.py

test-wheel: setup  ## build the wheel, install it into a fresh venv, run every command from an empty folder
	$(BIN)/pytest -m wheel -n 0 -s tests/test_wheel.py

test-all: setup
	$(BIN)/pytest -m 'slow or not slow'

lint: setup  ## ruff's linter and formatter check (CI and pre-commit run them)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup  ## mypy on xorlab/ (pinned in the dev extra: a new mypy may read the same code differently); CI enforces it
	$(BIN)/mypy

replay: setup  ## reproduce the notebook's printed table
	$(BIN)/xorlab-train experiment=notebook_replay hydra.run.dir=$(RUNS)/notebook_replay

experiments: setup  ## regenerate every committed study under experiments/
	bash experiments/run_all.sh

bench: setup  ## speed benchmarks (print ratios side by side; not tests)
	$(BIN)/python benchmarks/bench_sweep.py
	$(BIN)/python benchmarks/bench_report.py
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_startup.py

clean:
	rm -rf $(RUNS) outputs multirun .pytest_cache
