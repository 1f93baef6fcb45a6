# Two commands on a fresh machine: `make run` (demo pipeline + UI) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test test-fast bench services install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# constraints.txt pins the CPU build of torch (see the comment inside it).
	# openvino: the faster embedding backend `auto` picks where it keeps the vectors (pyproject.toml).
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,openvino]'
	touch $(STAMP)

install: $(STAMP)

# The real servers the tests and the benchmark start (Dovecot, PostgreSQL, mbsync from isync),
# the tools their harness uses (openssl for the test certificate, pgrep from procps), and the
# browser the search page is tested in (Playwright drives the apt Chromium).
services:
	@command -v dovecot >/dev/null && [ -x /usr/lib/postgresql/15/bin/initdb ] && command -v mbsync >/dev/null \
		&& command -v openssl >/dev/null && command -v pgrep >/dev/null && [ -x /usr/bin/chromium ] || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			dovecot-imapd postgresql isync openssl procps chromium >/dev/null; }

run: $(STAMP)
	$(BIN)/mail-pipeline run $(ARGS)

test: $(STAMP) services
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration and not e2e"

bench: $(STAMP) services
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .pytest_cache
