# marginwatch: `make run` starts the product, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench soak lint audit lock clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Reinstall only when the project's declared dependencies change.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
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
	$(VENV)/bin/pip-audit -r requirements.lock --no-deps --disable-pip --strict --progress-spinner off

# The exact versions the suite ran with, for `make audit` and reproducible installs.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v -E '^(pip-audit|pip-api|pip-requirements-parser|cyclonedx-python-lib|license-expression|boolean\.py|CacheControl|packageurl-python|py-serializable|defusedxml|msgpack|toml|line_profiler)==' > requirements.lock

# ruff (lint and format), the import contract (layers only point down) and the type
# checker (mypy), each configured in pyproject.toml; .pre-commit-config.yaml runs the same
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
