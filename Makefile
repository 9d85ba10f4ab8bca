# The two commands of the README: `make test` and `make demo`. Both install what is missing first.
PY := .venv/bin/python

.PHONY: setup test demo lint bench

setup:
	@bash scripts/setup.sh

test: setup
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check mss training listening_study tests app.py

bench: setup
	$(PY) -m mss.bench
	$(PY) -m mss.data.bench
