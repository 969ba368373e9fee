# Vigil: `make demo` and `make test` work on a fresh machine (Debian 12, Python 3.11, root or sudo-less apt).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: setup test-setup prometheus alertmanager postgresql demo test lint bench constraints clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# nannyml (dev: parity tests) pulls FLAML[automl] -> xgboost, whose default Linux wheel is
	# 224 MB and needs a 351 MB NCCL wheel (GPU code never run here): two CI runs lost the
	# connection inside them. The CPU-only manylinux2014 build of the same release is 4.5 MB.
	if [ "$$(uname -m)" = x86_64 ]; then \
	  $(PIP) download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11 \
	    -d $(VENV)/wheels 'xgboost==2.1.4' && $(PIP) install -q --no-deps $(VENV)/wheels/xgboost-2.1.4-*.whl; fi
	$(PIP) install -q --retries 10 --resume-retries 10 -e '.[dev,postgres]'
	# drain3 pins cachetools==4.2.1, which conflicts with mlflow; it runs fine on cachetools 5.
	$(PIP) install -q --no-deps 'drain3==0.9.11'
	touch $(STAMP)

# Real servers the demo and the integration tests run: Prometheus (+ promtool) and PostgreSQL.
prometheus:
	@command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null)

# Alertmanager: Vigil's alertmanager receiver pushes to a real one in the tests.
alertmanager:
	@command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null)

postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null)

setup: $(STAMP) prometheus

test-setup: setup postgresql alertmanager

demo: setup
	$(VENV)/bin/vigil demo

test: test-setup
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m benchmarks.nab --data ../shared/data/nab/data --windows ../shared/data/nab/combined_windows.json
	$(PY) -m benchmarks.rca_nezha --data ../shared/data/nezha
	$(PY) -m benchmarks.drift_speed

# The image build installs exactly these versions (deploy/Containerfile): refresh after a
# dependency change in pyproject.toml, from a venv the tests passed in. CI keeps installing
# from pyproject's ranges; tests/unit/deploy/test_constraints.py checks the two agree.
constraints: $(STAMP)
	{ echo "# Frozen from the tested virtualenv by \`make constraints\`: the versions"; \
	  echo "# deploy/Containerfile installs. Dev tools are listed too; the image ignores them."; \
	  echo "# No setuptools: the venv's is older than pyproject's build-system needs (>=68)."; \
	  $(PIP) freeze --all --exclude-editable --exclude setuptools; } > deploy/constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
