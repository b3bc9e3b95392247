# One command each. Both create/reuse the virtual environment at .venv and install requirements.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-16)

.PHONY: venv demo demo-data serve test test-postgres lint format bench clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

## Run the site with the demo catalog on embedded defaults (SQLite, filesystem broker, var/).
## `make demo PORT=8001 HOST=0.0.0.0`; the port is checked before the slow steps.
## Only the loading part (no server): `make demo-data`.
HOST ?= 127.0.0.1
PORT ?= 8000
demo: venv
	@DJANGO_DEBUG=1 $(MANAGE) run_demo --check-port --host "$(HOST)" --port "$(PORT)"
	DJANGO_DEBUG=1 $(MANAGE) migrate --no-input
	DJANGO_DEBUG=1 $(MANAGE) load_demo
	DJANGO_DEBUG=1 $(MANAGE) run_demo --host "$(HOST)" --port "$(PORT)"

demo-data: venv
	DJANGO_DEBUG=1 $(MANAGE) migrate --no-input
	DJANGO_DEBUG=1 $(MANAGE) load_demo

## The production shape on this machine: gunicorn (gunicorn.conf.py) with DJANGO_DEBUG=0, static files
## hashed and compressed by collectstatic and served by WhiteNoise, media by Django, and a Celery worker.
## `make serve HOST=0.0.0.0 PORT=8001`. SECRET_KEY: yours if set, else one generated once into
## var/secret_key (local use only: production sets its own). Secure cookies are off unless you set
## SESSION_COOKIE_SECURE=1 CSRF_COOKIE_SECURE=1, because this serves plain http (behind TLS: set both).
SERVE_VAR := $${SHOP_SEARCH_VAR_DIR:-var}
serve: venv
	@mkdir -p "$(SERVE_VAR)"
	@test -n "$$SECRET_KEY" || test -s "$(SERVE_VAR)/secret_key" || \
		(umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > "$(SERVE_VAR)/secret_key")
	export DJANGO_DEBUG=0 SECRET_KEY="$${SECRET_KEY:-$$(cat "$(SERVE_VAR)/secret_key")}" \
		ALLOWED_HOSTS="$${ALLOWED_HOSTS:-$(HOST),127.0.0.1,localhost}" \
		SESSION_COOKIE_SECURE="$${SESSION_COOKIE_SECURE:-0}" CSRF_COOKIE_SECURE="$${CSRF_COOKIE_SECURE:-0}" && \
	$(MANAGE) migrate --no-input && \
	$(MANAGE) collectstatic --no-input -v 0 && \
	exec $(MANAGE) run_demo --server gunicorn --host "$(HOST)" --port "$(PORT)"

## Run the whole test suite. With TEST_DATABASE_URL / TEST_REDIS_URL set (as .ci/run does), the
## catalog and task tests run a second time on real PostgreSQL and Redis.
test: venv
	$(PY) -m pytest
	@if [ -n "$$TEST_DATABASE_URL" ]; then $(MAKE) --no-print-directory test-postgres; fi

test-postgres: venv
	DATABASE_URL="$$TEST_DATABASE_URL" CELERY_BROKER_URL="$$TEST_REDIS_URL" \
		$(PY) -m pytest tests/catalog tests/search/test_tasks.py tests/search/test_worker_crash.py \
		tests/search/test_vector_backends.py tests/search/test_index_shipping.py \
		-m "not browser" -p no:cacheprovider

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Lighthouse (npm, pinned in bench/lighthouse/package-lock.json) is for bench/bench_lighthouse.py only.
bench/lighthouse/node_modules: bench/lighthouse/package-lock.json
	cd bench/lighthouse && npm ci --no-audit --no-fund
	touch $@

bench: venv bench/lighthouse/node_modules
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf var/
