# sre-agent: `make demo` runs the demo, `make test` runs the whole test suite.
# Both create .venv and install everything first (Python deps and the pinned npm MCP server).

VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp

.PHONY: install demo test lint pytest serve clean

$(STAMP): pyproject.toml package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,providers,postgres]'
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

clean:
	rm -rf $(VENV) node_modules data .pytest_cache .mypy_cache .ruff_cache .langgraph_api
