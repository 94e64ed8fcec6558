# marginwatch: `make run` starts the product, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench soak lint audit lock clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The locked versions, every file checked against its hash (requirements/, made by
# `make lock`), then the project itself; again only when the lock or the project change.
$(STAMP): pyproject.toml requirements/test.txt | $(PY)
	$(PY) -m pip install -q --require-hashes -r requirements/test.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/marginwatch demo

test: lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench

# The long load run (10 minutes; see bench/soak.py for the sizes): not part of `make test`.
soak: $(STAMP)
	$(PY) -m bench.soak_run

# Known vulnerabilities in the locked requirements (pip-audit; needs the PyPI or OSV
# vulnerability service: --strict fails loudly when a package could not be audited).
audit: $(STAMP)
	$(PY) -m pip install -q pip-audit
	$(VENV)/bin/pip-audit -r requirements/test.txt --no-deps --disable-pip --strict --progress-spinner off

# The lock: every dependency pinned with the hashes of its files, the runtime set and the
# test set (pip-tools). Versions move only when this is run; `make` installs from it.
LOCK_FLAGS := --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links --quiet
lock: | $(PY)
	$(PY) -m pip install -q pip-tools
	$(VENV)/bin/pip-compile $(LOCK_FLAGS) -o requirements/runtime.txt pyproject.toml
	$(VENV)/bin/pip-compile $(LOCK_FLAGS) --extra test -o requirements/test.txt pyproject.toml

# ruff (lint and format), the import contract (layers only point down) and the type
# checker (mypy), each configured in pyproject.toml; .pre-commit-config.yaml runs the same
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
