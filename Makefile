# soranb: two commands a newcomer needs.
#   make lab    JupyterLab on notebooks/generate.ipynb, offline (emulator + local store)
#   make test   lint, types, unit tests, notebooks (nbval), PostgreSQL and browser tests

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The LiteLLM proxy the gateway tests start: its own virtualenv (its httpx and openai pins are not soranb's).
GATEWAY := .venv-litellm/.installed

.PHONY: lab test lint install clean bench

$(STAMP): pyproject.toml jupyter-config/jupyter_server_config.d/soranb.json jupyter-config/lab/overrides.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# A wheel installs this file itself (pyproject's data-files); an editable install does not.
	install -D -m 644 jupyter-config/jupyter_server_config.d/soranb.json \
		$(VENV)/etc/jupyter/jupyter_server_config.d/soranb.json
	install -D -m 644 jupyter-config/lab/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(STAMP)

install: $(STAMP)

$(GATEWAY):
	$(PYTHON) -m venv .venv-litellm
	.venv-litellm/bin/pip install --quiet 'litellm[proxy]==1.108.7'
	touch $(GATEWAY)

lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=. $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/generate.ipynb

lint: $(STAMP)
	$(BIN)/ruff check soranb tests benchmarks conftest.py
	$(BIN)/ruff format --check soranb tests benchmarks conftest.py
	$(BIN)/mypy

test: lint $(GATEWAY)
	$(BIN)/pytest tests --nbval-lax --nbval-current-env notebooks --durations=15

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .venv-litellm soranb-data .pytest_cache .mypy_cache .ruff_cache
