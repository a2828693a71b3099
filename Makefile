# Two commands set up a fresh machine:
#   make run   - local venv, install, start the engine on embedded defaults
#   make test  - local venv, install with test extras, start services, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# Bytecode compiled once here: classic AGI starts a Python process per call, and Asterisk's user usually cannot
# write __pycache__ in the checkout, so without it every call would compile the modules again (~30 ms).
install: $(STAMP)
	$(BIN)/python -m compileall -q ivr routing records scripts dialplan supervisor traffic >/dev/null

run: $(STAMP)
	$(BIN)/hotline routes check
	$(BIN)/hotline serve

test: $(STAMP)
	bash scripts/ensure-test-services.sh
	HOTLINE_TEST_PG_URL=$${HOTLINE_TEST_PG_URL-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
	  $(BIN)/python -m pytest $(PYTEST_ARGS)

# BENCH_ARGS go to the FastAGI benchmark, e.g. BENCH_ARGS="--against ed0b046" (that revision's engine beside).
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
