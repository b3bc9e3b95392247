# One command each. Both create/reuse the virtual environment at .venv and install requirements.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-16)

.PHONY: venv demo test test-postgres lint format bench clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

## Run the site with the demo catalog on embedded defaults (SQLite, filesystem broker, var/).
demo: venv
	DJANGO_DEBUG=1 $(MANAGE) migrate --no-input
	DJANGO_DEBUG=1 $(MANAGE) load_demo
	DJANGO_DEBUG=1 $(MANAGE) run_demo

## Run the whole test suite. With TEST_DATABASE_URL / TEST_REDIS_URL set (as .ci/run does), the
## catalog and task tests run a second time on real PostgreSQL and Redis.
test: venv
	$(PY) -m pytest
	@if [ -n "$$TEST_DATABASE_URL" ]; then $(MAKE) --no-print-directory test-postgres; fi

test-postgres: venv
	DATABASE_URL="$$TEST_DATABASE_URL" CELERY_BROKER_URL="$$TEST_REDIS_URL" \
		$(PY) -m pytest tests/catalog tests/search/test_tasks.py tests/search/test_worker_crash.py \
		-m "not browser" -p no:cacheprovider

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf var/
