# Every target works as the first command on a fresh machine (Python 3.11, pip, make, git).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-integration demo sandbox sandbox-pr lint check bench clean

install: $(STAMP)

$(STAMP): constraints.txt requirements-dev.txt common/pyproject.toml replicator/pyproject.toml service-router/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt \
		-e ./common -e ./replicator -e ./service-router -r requirements-dev.txt
	touch $(STAMP)

test: install
	$(PY) -m pytest

# Needs Docker: k3s, the GitHub emulator and both controllers from their Dockerfiles (docker-compose.test.yml).
test-integration:
	docker compose -f docker-compose.test.yml up --build --abort-on-container-exit --exit-code-from tests

demo: install
	PYTHONPATH=tests $(PY) -m demo $(DEMO_ARGS)

sandbox: install
	PYTHONPATH=tests $(PY) -m sandbox

# Against a running `make sandbox`: PR=open, PR="push 1", PR="close 1", PR="merge 1" (tests/sandbox_pr.py).
sandbox-pr: install
	PYTHONPATH=tests $(PY) -m sandbox_pr $(PR)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	# mypy --strict on what ships, one project at a time (each is installed on its own).
	cd common/src && ../../$(VENV)/bin/mypy --strict controller_common
	cd replicator/src && ../../$(VENV)/bin/mypy --strict replicator
	cd service-router/src && ../../$(VENV)/bin/mypy --strict service_router

check: lint test

bench: install
	PYTHONPATH=tests $(PY) -m benchmarks

clean:
	rm -rf $(VENV) .sandbox .pytest_cache
