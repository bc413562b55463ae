# Estafeta: `make demo` runs it, `make test` tests it. Nothing else is needed but Python 3.11.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
export ESTAFETA_DATA_DIR ?= $(CURDIR)/var

.PHONY: demo serve test lint check bench browser mailserver screenshots constraints clean

$(BIN)/estafeta: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

## demo: install, build the demo dealership (once) and serve it on http://127.0.0.1:8000/
demo: $(BIN)/estafeta
	$(BIN)/estafeta demo

serve: $(BIN)/estafeta
	$(BIN)/estafeta serve

## browser: Debian's Chromium for the browser tests (installed once, with apt-get)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq --no-install-recommends chromium \
	  || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium; }; }

## mailserver: Debian's dovecot IMAP server for the email intake tests (installed once)
mailserver:
	@test -x /usr/sbin/dovecot || { \
	  echo "installing Debian's dovecot-imapd for the email intake tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq --no-install-recommends dovecot-imapd \
	  || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends dovecot-imapd; }; }

## test: install and run the whole test suite (SQLite; PostgreSQL when DATABASE_URL is set)
test: $(BIN)/estafeta browser mailserver
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure" >&2; exit 1; fi; \
	exit $$rc

## lint: ruff, mypy, the import contract (pure domain) and missing migrations
lint: $(BIN)/estafeta
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/estafeta makemigrations --check --dry-run

## bench: the core benchmarks (see bench/README.md for sizes and databases)
bench: $(BIN)/estafeta
	$(BIN)/python bench/core.py

## bench-large: only the million-ticket figures (base seeded, then grown by bench/grow.py)
.PHONY: bench-large
bench-large: $(BIN)/estafeta
	$(BIN)/python bench/core.py --large-only --fresh-large --seed-rss 20000

## bench-analytics: dashboards' time to first byte over 1,000,000 fully-historied tickets (PostgreSQL)
.PHONY: bench-analytics
BENCH_ANALYTICS_DB ?= postgres://postgres@127.0.0.1:5432/estafeta_bench_analytics
bench-analytics: $(BIN)/estafeta
	DATABASE_URL=$(BENCH_ANALYTICS_DB) $(BIN)/python bench/analytics.py all

## screenshots: pictures of the main pages for the README (docs/screenshots/)
screenshots: $(BIN)/estafeta browser
	$(BIN)/python scripts/screenshots.py

constraints:
	rm -rf /tmp/estafeta-constraints && $(PYTHON) -m venv /tmp/estafeta-constraints
	/tmp/estafeta-constraints/bin/pip install --quiet -e '.[dev]'
	/tmp/estafeta-constraints/bin/pip freeze --exclude-editable | grep -v '^estafeta' \
	  | sed '1i # Every package of the dev and runtime install, pinned (pip install -c constraints.txt).\n# Regenerate after changing pyproject.toml: make constraints' > constraints.txt

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
