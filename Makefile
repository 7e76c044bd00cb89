PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean

# Create .venv on first use; torch is pinned through constraints.txt (CPU build on these machines).
$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' 2>&1 | grep -v 'is ignored: it is neither' || true
	$(BIN)/python -c "import torch, lightning, textual, polars" 
	touch $(STAMP)

# The main job: the `smoke` preset on the default synthetic market, in the TUI when there is a
# terminal, else headless with progress on stdout (CI, pipes).
run: $(STAMP)
	@if [ -t 0 ] && [ -t 1 ]; then $(BIN)/runctl tui --launch smoke; \
	else $(BIN)/runctl launch smoke --follow; fi

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check engine tui tests bench
	$(BIN)/mypy engine tui bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV)
