"""One settings module switched by environment variables, checked the way a deployment runs it: each
case starts a fresh Python process with `shop_search.settings.base` and only the variables under
test, then reads back what Django resolved. The PostgreSQL and Redis cases use the real servers that
.ci/run starts (skipped locally without them, failing in CI)."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import require_service

BASE_DIR = Path(__file__).resolve().parent.parent
# Variables a developer's shell or `make test-postgres` may set; every case starts without them.
CLEARED = {
    "DATABASE_URL",
    "SEARCH_MILVUS_URI",
    "SEARCH_MILVUS_INDEX",
    "CELERY_BROKER_URL",
    "SECRET_KEY",
    "DJANGO_DEBUG",
    "ALLOWED_HOSTS",
    "SHOP_SEARCH_VAR_DIR",
    "CACHE_URL",
    "MEDIA_STORAGE",
    "AWS_STORAGE_BUCKET_NAME",
    "AWS_S3_ENDPOINT_URL",
    "AWS_S3_CUSTOM_DOMAIN",
    "AWS_QUERYSTRING_AUTH",
    "SEARCH_INDEX_STORAGE",
    "SEARCH_TORCH_THREADS",
    "WEB_CONCURRENCY",
}

PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "host": db.get("HOST", ""), "port": db.get("PORT", ""),
    "user": db.get("USER", ""), "debug": settings.DEBUG, "secret_key": settings.SECRET_KEY,
    "allowed_hosts": settings.ALLOWED_HOSTS, "broker": settings.CELERY_BROKER_URL,
}))
"""

# Connects to the configured broker and sends one message through a fresh queue and back.
BROKER_ROUND_TRIP = """
import json, sys, django
django.setup()
from shop_search.celery import app
conn = app.connection_for_write()
conn.ensure_connection(max_retries=1)
with conn.SimpleQueue(sys.argv[1]) as queue:
    queue.put({"probe": sys.argv[1]})
    message = queue.get(timeout=10)
    message.ack()
    queue.queue.delete()
print(json.dumps({"transport": conn.transport.driver_type, "body": message.payload,
                  "options": app.conf.broker_transport_options}))
"""


def run_python(code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in CLEARED}
    clean["DJANGO_SETTINGS_MODULE"] = "shop_search.settings.base"
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def resolved(**env: str) -> dict:
    result = run_python(PRINT_SETTINGS, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_database_defaults_to_sqlite_under_var(tmp_path):
    values = resolved(DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path))

    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["name"] == str(tmp_path / "db.sqlite3")


def test_database_default_var_dir_is_in_the_project():
    values = resolved(DJANGO_DEBUG="1")

    assert values["name"] == str(BASE_DIR / "var" / "db.sqlite3")


def test_postgres_database_url_selects_postgresql(tmp_path):
    url = "postgres://shop:s3cret@db.example.internal:6543/shop_prod"

    values = resolved(DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path), DATABASE_URL=url)

    assert values["engine"] == "django.db.backends.postgresql"
    assert (values["name"], values["host"], values["port"], values["user"]) == (
        "shop_prod",
        "db.example.internal",
        6543,
        "shop",
    )


def test_secret_key_is_required_when_debug_is_off(tmp_path):
    result = run_python(PRINT_SETTINGS, DJANGO_DEBUG="0", SHOP_SEARCH_VAR_DIR=str(tmp_path))

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DJANGO_DEBUG is off" in result.stderr


def test_debug_off_is_the_default_and_uses_the_given_secret(tmp_path):
    values = resolved(SECRET_KEY="from-the-environment", SHOP_SEARCH_VAR_DIR=str(tmp_path))

    assert values["debug"] is False
    assert values["secret_key"] == "from-the-environment"
    assert values["allowed_hosts"] == []


def test_dev_secret_key_only_in_debug(tmp_path):
    values = resolved(DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path))

    assert values["debug"] is True
    assert values["secret_key"].startswith("dev-only-insecure")
    assert values["allowed_hosts"] == ["127.0.0.1", "localhost"]


def test_unreadable_boolean_is_refused_with_its_name(tmp_path):
    result = run_python(PRINT_SETTINGS, DJANGO_DEBUG="maybe", SHOP_SEARCH_VAR_DIR=str(tmp_path))

    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr


# --- Real PostgreSQL --------------------------------------------------------------------------


@pytest.fixture
def throwaway_postgres_url():
    """A fresh database on the CI PostgreSQL server, dropped afterwards."""
    import psycopg

    admin_url = require_service("TEST_DATABASE_URL")
    name = f"shop_search_settings_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in CLEARED}
    clean["DJANGO_SETTINGS_MODULE"] = "shop_search.settings.base"
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.postgres
def test_migrate_check_and_a_product_round_trip_on_real_postgres(throwaway_postgres_url, tmp_path):
    env = {
        "DATABASE_URL": throwaway_postgres_url,
        "SECRET_KEY": "settings-test-" + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "shop.example.com",
        "SHOP_SEARCH_VAR_DIR": str(tmp_path),
    }

    migrated = manage("migrate", "--no-input", **env)
    assert migrated.returncode == 0, migrated.stderr
    checked = manage("check", "--deploy", "--database", "default", **env)
    assert checked.returncode == 0, checked.stderr
    created = manage(
        "shell",
        "-c",
        "from catalog.models import Product;"
        "Product.objects.create(sku='PG-1', name='Claw hammer', price='12.50')",
        **env,
    )
    assert created.returncode == 0, created.stderr
    read = manage(
        "shell",
        "-c",
        "from django.db import connection; from catalog.models import Product;"
        "p = Product.objects.get(sku='PG-1'); print(connection.vendor, p.name, p.price)",
        **env,
    )

    assert read.returncode == 0, read.stderr
    # Django's shell may print a line about auto-imports first: the answer is the last line.
    assert read.stdout.strip().splitlines()[-1].split() == ["postgresql", "Claw", "hammer", "12.50"]


@pytest.mark.postgres
def test_real_postgres_enforces_the_price_constraint(throwaway_postgres_url, tmp_path):
    env = {"DATABASE_URL": throwaway_postgres_url, "DJANGO_DEBUG": "1", "SHOP_SEARCH_VAR_DIR": str(tmp_path)}
    assert manage("migrate", "--no-input", **env).returncode == 0

    refused = manage(
        "shell",
        "-c",
        "from catalog.models import Product; Product.objects.create(sku='NEG', name='x', price='-1')",
        **env,
    )

    assert refused.returncode != 0
    assert "product_price_not_negative" in refused.stderr


# --- Celery brokers ---------------------------------------------------------------------------


def test_default_broker_is_the_filesystem_under_var(tmp_path):
    result = run_python(
        BROKER_ROUND_TRIP, f"probe-{uuid.uuid4().hex}", DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path)
    )

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["transport"] == "filesystem"
    assert out["options"]["data_folder_in"] == str(tmp_path / "broker" / "out")
    assert out["body"]["probe"].startswith("probe-")
    assert (tmp_path / "broker" / "out").is_dir()


@pytest.mark.redis
def test_redis_broker_url_connects_and_round_trips(tmp_path):
    redis_url = require_service("TEST_REDIS_URL")
    name = f"probe-{uuid.uuid4().hex}"

    result = run_python(
        BROKER_ROUND_TRIP,
        name,
        DJANGO_DEBUG="1",
        SHOP_SEARCH_VAR_DIR=str(tmp_path),
        CELERY_BROKER_URL=redis_url,
    )

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["transport"] == "redis"
    assert out["body"] == {"probe": name}
    assert not (tmp_path / "broker").exists()


def test_unreachable_redis_broker_fails_to_connect(tmp_path):
    # Port 9 (discard) is closed on 127.0.0.1: the connection must fail loudly, not silently queue.
    result = run_python(
        BROKER_ROUND_TRIP,
        "never-sent",
        DJANGO_DEBUG="1",
        SHOP_SEARCH_VAR_DIR=str(tmp_path),
        CELERY_BROKER_URL="redis://127.0.0.1:9/0",
    )

    assert result.returncode != 0
    assert "Connection refused" in result.stderr or "OperationalError" in result.stderr


# Sets a key through Django's configured cache and reads it back with a plain Redis client.
CACHE_ROUND_TRIP = """
import json, sys, django
django.setup()
from django.conf import settings
from django.core.cache import cache
cache.set(sys.argv[1], "seen", 30)
print(json.dumps({"backend": settings.CACHES["default"]["BACKEND"], "value": cache.get(sys.argv[1])}))
"""


def test_cache_is_per_process_memory_by_default(tmp_path):
    result = run_python(CACHE_ROUND_TRIP, "k", DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path))

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["backend"].endswith("LocMemCache")


def test_cache_url_puts_the_throttle_counters_in_real_redis(tmp_path):
    # The search throttle must count across web processes: a key written through Django's cache in
    # one process is visible in the Redis server itself.
    import redis

    redis_url = require_service("TEST_REDIS_URL")
    key = f"probe-{uuid.uuid4().hex}"
    result = run_python(
        CACHE_ROUND_TRIP, key, DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path), CACHE_URL=redis_url
    )

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["backend"].endswith("RedisCache")
    assert out["value"] == "seen"
    client = redis.Redis.from_url(redis_url)
    stored = [name for name in client.scan_iter(f"*{key}*")]
    assert stored, "the key was not written to the Redis server"
    client.delete(*stored)


def test_cache_url_of_unknown_kind_is_refused(tmp_path):
    result = run_python(
        CACHE_ROUND_TRIP, "k", DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path), CACHE_URL="memcache://x"
    )

    assert result.returncode != 0
    assert "CACHE_URL" in result.stderr


# --- Crash safety: leases and the beat schedule ---------------------------------------------------

BEAT_SCHEDULE = """
import json, django
django.setup()
from shop_search.celery import app
app.loader.import_default_modules()  # autodiscovers the apps' tasks, as a worker does
schedule = app.conf.beat_schedule.items()
print(json.dumps({name: {"task": e["task"], "every": e["schedule"], "known": e["task"] in app.tasks}
                  for name, e in schedule}))
"""


def test_beat_runs_the_reapers_the_fold_in_and_the_store_sync_at_the_configured_interval(tmp_path):
    result = run_python(
        BEAT_SCHEDULE, DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path), REAP_EVERY_SECONDS="15"
    )

    assert result.returncode == 0, result.stderr
    schedule = json.loads(result.stdout.strip().splitlines()[-1])
    assert {entry["task"] for entry in schedule.values()} == {
        "search.reap",
        "catalog.reap_imports",
        "search.fold_in",
        "search.sync_vectors",
    }
    assert all(entry["every"] == 15 and entry["known"] for entry in schedule.values()), schedule


def test_a_lease_shorter_than_a_second_is_refused_with_its_name(tmp_path):
    result = run_python(
        PRINT_SETTINGS, DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path), SEARCH_LEASE_SECONDS="0"
    )

    assert result.returncode != 0
    assert "SEARCH_LEASE_SECONDS must be at least 1 second" in result.stderr


def test_a_bad_metrics_address_or_a_negative_fold_in_period_is_refused_with_its_name(tmp_path):
    bad_address = run_python(
        PRINT_SETTINGS,
        DJANGO_DEBUG="1",
        SHOP_SEARCH_VAR_DIR=str(tmp_path),
        METRICS_ALLOWED_IPS="10.0.0.0/8,localhost",
    )
    negative = run_python(
        PRINT_SETTINGS, DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path), SEARCH_FOLD_IN_AFTER_SECONDS="-1"
    )

    assert bad_address.returncode != 0
    assert "METRICS_ALLOWED_IPS: 'localhost' is not an address or network" in bad_address.stderr
    assert negative.returncode != 0 and "SEARCH_FOLD_IN_AFTER_SECONDS must be 0 (off)" in negative.stderr


PRINT_STORAGES = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({"storages": settings.STORAGES, "index_storage": settings.SEARCH_INDEX_STORAGE,
                  "torch_threads": settings.SEARCH_TORCH_THREADS}))
"""


def storages_resolved(**env: str) -> dict:
    result = run_python(PRINT_STORAGES, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_media_on_this_disk_by_default_and_no_index_shipping(tmp_path):
    values = storages_resolved(DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path))

    assert values["storages"]["default"]["BACKEND"] == "shop_search.storage.AtomicFileSystemStorage"
    assert values["storages"]["imports"]["BACKEND"] == "catalog.models.ImportFilesStorage"
    assert "index" not in values["storages"] and values["index_storage"] == ""


def test_media_storage_s3_puts_media_imports_and_index_in_one_bucket(tmp_path):
    values = storages_resolved(
        DJANGO_DEBUG="1",
        SHOP_SEARCH_VAR_DIR=str(tmp_path),
        MEDIA_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME="shop-media",
        AWS_S3_ENDPOINT_URL="https://minio.example.internal:9000",
    )

    storages = values["storages"]
    assert {storages[alias]["BACKEND"] for alias in ("default", "imports", "index")} == {
        "storages.backends.s3.S3Storage"
    }
    options = {alias: storages[alias]["OPTIONS"] for alias in ("default", "imports", "index")}
    assert {o["bucket_name"] for o in options.values()} == {"shop-media"}
    assert [options[a]["location"] for a in ("default", "imports", "index")] == [
        "media",
        "private/imports",
        "index",
    ]
    assert options["default"]["endpoint_url"] == "https://minio.example.internal:9000"
    assert options["default"]["querystring_auth"] is True  # private photos: signed URLs
    assert options["default"]["file_overwrite"] is False and options["index"]["file_overwrite"] is True
    assert "access_key" not in options["default"]  # credentials come from boto3's chain, never settings
    assert values["index_storage"] == "index"


def test_a_cdn_domain_makes_media_urls_plain(tmp_path):
    values = storages_resolved(
        DJANGO_DEBUG="1",
        SHOP_SEARCH_VAR_DIR=str(tmp_path),
        MEDIA_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME="shop-media",
        AWS_S3_CUSTOM_DOMAIN="media.example.com",
    )

    options = values["storages"]["default"]["OPTIONS"]
    assert options["custom_domain"] == "media.example.com" and options["querystring_auth"] is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MEDIA_STORAGE": "s3"}, "MEDIA_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME"),
        ({"MEDIA_STORAGE": "nfs"}, "MEDIA_STORAGE='nfs': use filesystem or s3"),
        ({"SEARCH_INDEX_STORAGE": "nowhere"}, "SEARCH_INDEX_STORAGE='nowhere' is not a name in STORAGES"),
    ],
)
def test_a_storage_setting_that_cannot_work_is_refused(tmp_path, env, message):
    result = run_python(PRINT_STORAGES, DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path), **env)

    assert result.returncode != 0 and message in result.stderr


def test_torch_threads_share_the_cores_among_web_workers(tmp_path):
    from shop_search.cpu import torch_threads_per_process

    alone = storages_resolved(DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path))
    shared = storages_resolved(DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path), WEB_CONCURRENCY="2")
    pinned = storages_resolved(
        DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path), WEB_CONCURRENCY="2", SEARCH_TORCH_THREADS="3"
    )

    assert alone["torch_threads"] == torch_threads_per_process(1)
    assert shared["torch_threads"] == torch_threads_per_process(2)
    assert pinned["torch_threads"] == 3


MILVUS_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps([settings.SEARCH_MILVUS_URI, settings.SEARCH_MILVUS_INDEX]))
"""


def test_milvus_defaults_to_a_lite_folder_under_var_with_a_flat_index_and_hnsw_on_a_server(tmp_path):
    def milvus(**env):
        result = run_python(MILVUS_SETTINGS, DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(tmp_path), **env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1]), result

    assert milvus()[0] == [str(tmp_path / "milvus.db"), "FLAT"]
    assert milvus(SEARCH_MILVUS_URI="http://milvus.internal:19530")[0][1] == "HNSW"
    assert milvus(SEARCH_MILVUS_URI="http://m:19530", SEARCH_MILVUS_INDEX="ivf_flat")[0][1] == "IVF_FLAT"
    result = run_python(MILVUS_SETTINGS, DJANGO_DEBUG="1", SEARCH_MILVUS_URI="milvus.internal:19530")
    assert result.returncode != 0 and "SEARCH_MILVUS_URI must be http://host:19530" in result.stderr
