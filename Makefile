# sre-agent: `make demo` runs the demo, `make test` runs the whole test suite.
# Both create .venv and install everything first (Python deps and the pinned MCP servers).

VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp

.PHONY: install demo test lint pytest serve studio clean soak

$(STAMP): pyproject.toml package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,providers,postgres,mcp-servers]'
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --loglevel=error; \
	else \
		echo "WARNING: npm not found: install Node.js 20+ and npm, then run 'npm ci'" \
		     "(the real kubernetes-mcp-server is an npm package)"; \
	fi
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/sre-agent demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check graph nodes server prompts tests
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: lint pytest

serve: install
	$(BIN)/sre-agent serve

bench: install          # a few minutes: bench/results/latest.json and latest.md
	$(BIN)/python -m bench.run

bench-smoke: install    # seconds: every benchmark at tiny sizes (numbers not meaningful)
	$(BIN)/python -m bench.run --smoke

# Fault-injection soak: 1000 alerts through `sre-agent serve` with 429/500 model answers,
# failing MCP calls and two SIGKILLs; fails when any alert is lost (tests/soak/soak.py).
SOAK_ARGS ?= --alerts 1000
soak: install
	$(BIN)/python -m tests.soak.soak $(SOAK_ARGS)

# The graph in `langgraph dev` (LangGraph Studio's API) on http://127.0.0.1:2024; open
# https://smith.langchain.com/studio/?baseUrl=http://127.0.0.1:2024 in a browser.
STUDIO_ARGS ?=
studio: install
	LANGGRAPH_CLI_NO_ANALYTICS=1 $(BIN)/langgraph dev --no-browser $(STUDIO_ARGS)

clean:
	rm -rf $(VENV) node_modules data .pytest_cache .mypy_cache .ruff_cache .langgraph_api
