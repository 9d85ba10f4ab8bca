# The two commands of the README: `make test` and `make demo`. Both install what is missing first.
PY := .venv/bin/python

.PHONY: setup test demo lint bench

setup:
	@bash scripts/setup.sh

test: setup
	$(PY) -m pytest

# The app on the embedded default: the generated dataset (built on first run, a few minutes) and the
# committed checkpoints. PORT=7860 by default; extra app options through ARGS="...".
PORT ?= 7860
demo: setup
	$(PY) app.py --port $(PORT) $(ARGS)

lint: setup
	$(PY) -m ruff check mss mss_app training listening_study tests app.py
	$(PY) -m ruff format --check mss mss_app training listening_study tests app.py

bench: setup
	$(PY) -m mss.bench
	$(PY) -m mss.data.bench
