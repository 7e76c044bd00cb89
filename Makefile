PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-cluster test-ssh bench lint clean

# Create .venv on first use; torch is pinned through constraints.txt (CPU build on these machines).
$(STAMP): pyproject.toml constraints.txt tui/log/_scanc.c
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

# The Slurm tests against a real one-node cluster (root and apt: installs slurm-wlm and munge if
# missing), started in a temporary folder and stopped again whatever the tests do.
test-cluster: $(STAMP)
	@P=$$(mktemp -d /tmp/runctl-slurm.XXXXXX); \
	tests/cluster/slurm.sh start $$P || { tests/cluster/slurm.sh stop $$P; exit 1; }; \
	SLURM_CONF=$$P/slurm.conf $(BIN)/python -m pytest -q -m slurm tests/test_slurm.py; rc=$$?; \
	tests/cluster/slurm.sh stop $$P; exit $$rc

# The ssh tests against two real OpenSSH servers the tests start on 127.0.0.1 (free ports, keys in
# temp folders) and stop again (root and apt: installs openssh-server if sshd is missing, without
# starting the system's ssh service).
test-ssh: $(STAMP)
	tests/cluster/sshd.sh install
	RUNCTL_SSH_TESTS=1 $(BIN)/python -m pytest -q -m ssh tests/test_ssh.py tests/test_ssh_app.py

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check engine tui tests bench
	$(BIN)/mypy engine tui bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV)
