# Every target bootstraps its own virtual environment, so on a fresh machine
# `make verify` and `make test` are all a user types.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install codegen-extra lint verify test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@# the optional cluster executor (dask.distributed), so that its tests run here and in CI; timed
	$(BIN)/python -c 'import subprocess, sys, time; t = time.monotonic(); \
	  subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "-e", ".[cluster]"]); \
	  print(f"verify[cluster] (dask.distributed) installed in {time.monotonic() - t:.1f} s")'
	touch $(STAMP)

# the optional extra verify[codegen] (torch, triton): tests/test_codegen.py and the bench's kernel section need it
codegen-extra: $(VENV)/.codegen

$(VENV)/.codegen: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,codegen]'
	touch $(VENV)/.codegen

# ruff (style, imports, likely bugs) and mypy (lenient: see [tool.mypy] in pyproject.toml)
lint: $(VENV)/.lint
	$(BIN)/ruff check .
	$(BIN)/mypy

$(VENV)/.lint: $(STAMP)
	$(BIN)/pip install --quiet -e '.[lint]'
	touch $(VENV)/.lint

verify: $(STAMP)
	$(BIN)/verify check rules proofs --jobs 2 --certificates proofs/certificates

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the tests that take under a second or so each (no `slow` marker): a check in seconds while editing
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP) codegen-extra
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build .verify-cache .mypy_cache .ruff_cache
