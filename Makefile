# Two commands on a fresh machine: `make run` (demo pipeline + UI) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test test-fast check docs bench services install lock clean

# Every distribution at the version and hash the tests passed with (requirements-dev.lock: the
# product, its `openvino` and `dev` extras; requirements.lock: the product alone, for the image).
# The package itself goes in without dependencies, so nothing outside the lock is resolved.
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# Re-resolve both locks to the newest releases pyproject.toml allows: the one way upgrades happen
# (then `make test`, and fix what the new releases broke). constraints.txt keeps torch's CPU build.
LOCK_TOOL := .venv-lock/bin/pip-compile
# Extras stay on the pinned lines (gql[requests]): pip's hash checking refuses a requirement
# with extras whose pin it cannot see. The dev lock starts from the product's lock, so the two
# agree on every shared pin (mail_pipeline_tests/test_lock.py checks).
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --no-strip-extras --no-emit-find-links --no-emit-index-url
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q pip-tools==7.6.2
	$(LOCK_TOOL) $(LOCK_FLAGS) --upgrade --extra openvino -c constraints.txt -o requirements.lock pyproject.toml
	cp requirements.lock requirements-dev.lock
	$(LOCK_TOOL) $(LOCK_FLAGS) --extra openvino --extra dev -c constraints.txt -o requirements-dev.lock pyproject.toml

# The real servers the tests and the benchmark start (Dovecot, PostgreSQL, mbsync from isync),
# the tools their harness uses (openssl for the test certificate, pgrep from procps), and the
# browser the search page is tested in (Playwright drives the apt Chromium), and notmuch, which
# reads the Maildir an export writes; redis-server is the broker the Celery workers are tested with.
services:
	@command -v dovecot >/dev/null && [ -x /usr/lib/postgresql/15/bin/initdb ] && command -v mbsync >/dev/null \
		&& command -v openssl >/dev/null && command -v pgrep >/dev/null && [ -x /usr/bin/chromium ] \
		&& command -v notmuch >/dev/null && command -v redis-server >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			dovecot-imapd postgresql isync openssl procps chromium notmuch redis-server >/dev/null; }

run: $(STAMP)
	$(BIN)/mail-pipeline run $(ARGS)

test: $(STAMP) services
	$(BIN)/python -m pytest -q --durations=25

# Lint, format and types ([tool.ruff] and [tool.mypy] in pyproject.toml).
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The documentation site (mkdocs.yml), built offline; a warning (a broken link, a missing
# included file) fails it. build/ is ignored by git.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d build/site

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration and not e2e"

bench: $(STAMP) services
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-lock data .pytest_cache
