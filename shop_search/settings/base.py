"""One settings module, switched by environment variables.

Every value a deployment may change is read from the environment with a safe embedded default:
SQLite under var/, a filesystem Celery broker under var/ (no server needed), media under var/media.
Production sets DATABASE_URL=postgres://…, CELERY_BROKER_URL=redis://…, SECRET_KEY and ALLOWED_HOSTS.
"""

import ipaddress
import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from whitenoise.compress import Compressor

from shop_search.cpu import torch_threads_per_process
from shop_search.object_storage import s3_storages

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("SHOP_SEARCH_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105 (debug only)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "catalog",
    "search",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Right after security: static files are answered before sessions or the database are touched.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "shop_search.urls"
WSGI_APPLICATION = "shop_search.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
# SQLite (the demo): the web server and the Celery worker write to one file. WAL lets readers go on
# while one writes; "timeout" waits up to 30 s for the write lock instead of failing; IMMEDIATE takes
# the write lock when a transaction starts, because a deferred transaction that reads first and then
# writes cannot wait (SQLite answers "database is locked" at once to avoid a deadlock).
SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


def database_settings(url: str) -> dict:
    database = dj_database_url.parse(url, conn_max_age=60)
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database["CONN_MAX_AGE"] = 0
        database.setdefault("OPTIONS", {}).update(SQLITE_OPTIONS)
    return database


DATABASES = {"default": database_settings(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ------------------------------------------------------------------------------------
# The search throttle counts requests in the cache: with several web processes it must be shared,
# so production sets CACHE_URL=redis://… (the same Redis as the broker works, e.g. another db number).
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
elif CACHE_URL:
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r}: only redis:// URLs are supported")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files ----------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Every photo, thumbnail, kept query photo, import upload and shipped index build goes through these
# storages (shop_search/storage.py), never through paths: MEDIA_STORAGE=s3 moves them all to one
# S3-compatible bucket (django-storages; docs/deployment.md), under the prefixes media/, private/imports/
# and index/. The defaults keep them on this machine's disk (media under MEDIA_ROOT, import uploads
# under CATALOG_IMPORT_DIR/uploads).
MEDIA_STORAGE = os.environ.get("MEDIA_STORAGE", "filesystem")
if MEDIA_STORAGE == "filesystem":
    _media = {"BACKEND": "shop_search.storage.AtomicFileSystemStorage"}
    _imports = {"BACKEND": "catalog.models.ImportFilesStorage"}
    _index_storage: dict = {}
elif MEDIA_STORAGE == "s3":
    if not os.environ.get("AWS_STORAGE_BUCKET_NAME"):
        raise ImproperlyConfigured("MEDIA_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME")
    _s3 = s3_storages(
        bucket=os.environ["AWS_STORAGE_BUCKET_NAME"],
        endpoint_url=os.environ.get("AWS_S3_ENDPOINT_URL") or None,
        region=os.environ.get("AWS_S3_REGION_NAME") or None,
        custom_domain=os.environ.get("AWS_S3_CUSTOM_DOMAIN") or None,
        # Signed, expiring URLs unless a CDN domain serves the media (then plain URLs), or as set.
        querystring_auth=env_bool("AWS_QUERYSTRING_AUTH", not os.environ.get("AWS_S3_CUSTOM_DOMAIN")),
    )
    _media, _imports, _index_storage = _s3["default"], _s3["imports"], _s3["index"]
else:
    raise ImproperlyConfigured(f"MEDIA_STORAGE={MEDIA_STORAGE!r}: use filesystem or s3")
STORAGES = {
    "default": _media,
    "imports": _imports,
    # `collectstatic` writes content-hashed names (cached for a year by browsers) with gzip and
    # brotli copies; WhiteNoise serves them from the web process, so no separate web server is needed.
    "staticfiles": {"BACKEND": "shop_search.staticfiles.StaticFilesStorage"},
}
if _index_storage:
    STORAGES["index"] = _index_storage
# Source maps (7 MB of the API docs' bundles) are only read by browser developer tools: compressing
# them at brotli's highest level was a third of collectstatic's time.
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = [*Compressor.SKIP_COMPRESS_EXTENSIONS, "map"]
# The single-machine shape serves MEDIA_ROOT from Django itself (shop_search.media). Turn it off when
# media lives on object storage or a CDN, or when a web server in front serves MEDIA_ROOT.
SERVE_MEDIA = env_bool("SERVE_MEDIA", True)
# Folders of the media storage anyone may read: content-addressed product photos and their thumbnails.
# Everything else (flagged uploads, import files, kept query photos) is served to staff only.
SERVE_MEDIA_PUBLIC_PREFIXES = env_list("SERVE_MEDIA_PUBLIC_PREFIXES", ["products/", "thumbs/"])
SERVE_MEDIA_MAX_AGE = env_int("SERVE_MEDIA_MAX_AGE", 7 * 24 * 3600)
# Uploads bigger than this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 15 * 1024 * 1024)

# --- Catalog images -------------------------------------------------------------------------
CATALOG_IMAGE_MAX_BYTES = env_int("CATALOG_IMAGE_MAX_BYTES", 20 * 1024 * 1024)
CATALOG_IMAGE_MAX_PIXELS = env_int("CATALOG_IMAGE_MAX_PIXELS", 40_000_000)
CATALOG_IMAGE_FORMATS = env_list("CATALOG_IMAGE_FORMATS", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
CATALOG_DEFAULT_CURRENCY = os.environ.get("CATALOG_DEFAULT_CURRENCY", "EUR")
# Import ZIP limits (admin bulk import).
CATALOG_IMPORT_MAX_FILES = env_int("CATALOG_IMPORT_MAX_FILES", 5000)
CATALOG_IMPORT_MAX_UNPACKED_BYTES = env_int("CATALOG_IMPORT_MAX_UNPACKED_BYTES", 1024 * 1024 * 1024)
CATALOG_IMPORT_DIR = Path(os.environ.get("CATALOG_IMPORT_DIR", VAR_DIR / "imports"))
# Near-duplicates and flagged images.
CATALOG_PHASH_MAX_DISTANCE = env_int("CATALOG_PHASH_MAX_DISTANCE", 6)
CATALOG_DUPLICATE_MIN_SIMILARITY = float(os.environ.get("CATALOG_DUPLICATE_MIN_SIMILARITY", "0.95"))
CATALOG_FLAGGED_MIN_SIMILARITY = float(os.environ.get("CATALOG_FLAGGED_MIN_SIMILARITY", "0.92"))

# --- Search ---------------------------------------------------------------------------------
SEARCH_BACKBONE = os.environ.get("SEARCH_BACKBONE", "resnet50")
SEARCH_WEIGHTS_PATH = os.environ.get("SEARCH_WEIGHTS_PATH", "")
# torchvision's weight cache ($TORCH_HOME/hub/checkpoints); same default as torch.hub.
SEARCH_TORCH_HOME = os.environ.get("TORCH_HOME") or str(Path.home() / ".cache" / "torch")
SEARCH_ALLOW_DOWNLOAD = env_bool("SEARCH_ALLOW_DOWNLOAD", True)
SEARCH_DOWNLOAD_TIMEOUT = env_int("SEARCH_DOWNLOAD_TIMEOUT", 30)
# Only for tests of the plumbing: use randomly initialised weights and say so everywhere.
SEARCH_UNTRAINED = env_bool("SEARCH_UNTRAINED", False)
# Torch threads per process: the cores shared out among the processes that run the model on this
# machine (shop_search/cpu.py). WEB_CONCURRENCY is the number of gunicorn workers (gunicorn.conf.py sets
# it to the count it starts); a Celery worker shares the cores among its pool processes (shop_search/
# celery.py); one process alone (runserver, a command) takes every core. Set it to pin a value.
SEARCH_TORCH_THREADS = env_int(
    "SEARCH_TORCH_THREADS", torch_threads_per_process(env_int("WEB_CONCURRENCY", 1))
)
# A gunicorn worker loads the model, opens the index and runs one query's worth of work before it
# takes its first request (gunicorn.conf.py, search/services/warm_up.py): no shopper waits for a cold
# start. Off: the model loads in the background and the first searches wait for it.
SEARCH_WARM_UP = env_bool("SEARCH_WARM_UP", True)
SEARCH_IMAGE_SIZE = env_int("SEARCH_IMAGE_SIZE", 224)
SEARCH_RESIZE = env_int("SEARCH_RESIZE", 256)
SEARCH_CENTER_CROP = env_bool("SEARCH_CENTER_CROP", True)
SEARCH_BATCH_SIZE = env_int("SEARCH_BATCH_SIZE", 16)
# Which catalog-adapted projection is in use is read from the database at most this often per process
# (0: on every call). The process that switches follows at once, the others within this time
# (search/embedder.py).
SEARCH_PROJECTION_CHECK_SECONDS = float(os.environ.get("SEARCH_PROJECTION_CHECK_SECONDS", "5"))
SEARCH_INDEX_DIR = Path(os.environ.get("SEARCH_INDEX_DIR", VAR_DIR / "index"))
# Several machines without a shared SEARCH_INDEX_DIR: the STORAGES alias builds are shipped through
# ("index" under MEDIA_STORAGE=s3; "" = none). The worker uploads each build it publishes; every process
# downloads and verifies a newer published build into its local SEARCH_INDEX_DIR, checking for one at
# most every SEARCH_INDEX_SYNC_SECONDS (search.services.index_shipping).
SEARCH_INDEX_STORAGE = os.environ.get("SEARCH_INDEX_STORAGE", "index" if "index" in STORAGES else "")
SEARCH_INDEX_SYNC_SECONDS = float(os.environ.get("SEARCH_INDEX_SYNC_SECONDS", "10"))
if SEARCH_INDEX_STORAGE and SEARCH_INDEX_STORAGE not in STORAGES:
    raise ImproperlyConfigured(f"SEARCH_INDEX_STORAGE={SEARCH_INDEX_STORAGE!r} is not a name in STORAGES")
SEARCH_INDEX_KEEP_BUILDS = env_int("SEARCH_INDEX_KEEP_BUILDS", 3)
# Index defaults measured by bench/bench_index.py (docs/benchmarks.md, "Index"): exact search (recall 1)
# costs ~0.3-0.5 us per vector at 2048-d, as much as Annoy at search_k 80k around 50k vectors; at 100k x
# 2048-d, 50 trees, search_k 80k gives recall@10 0.97 (40k: 0.948). With SEARCH_PCA_DIM=256, 40k gives 0.97.
SEARCH_EXACT_THRESHOLD = env_int("SEARCH_EXACT_THRESHOLD", 50_000)
SEARCH_ANNOY_TREES = env_int("SEARCH_ANNOY_TREES", 50)
SEARCH_ANNOY_SEARCH_K = env_int("SEARCH_ANNOY_SEARCH_K", 80_000)
# PCA before Annoy (search.index.pca; results are still re-ranked on the full vectors): "auto" projects
# catalogs of at least SEARCH_PCA_MIN_VECTORS vectors to SEARCH_PCA_DIM dimensions, "on" every build, "off"
# none (SEARCH_PCA_DIM=0 too). The threshold was measured (docs/benchmarks.md, "Annoy with and without PCA").
SEARCH_PCA = os.environ.get("SEARCH_PCA", "auto")
if SEARCH_PCA not in {"auto", "on", "off"}:
    raise ImproperlyConfigured(f"SEARCH_PCA must be auto, on or off, not {SEARCH_PCA!r}")
SEARCH_PCA_DIM = env_int("SEARCH_PCA_DIM", 256)
SEARCH_PCA_MIN_VECTORS = env_int("SEARCH_PCA_MIN_VECTORS", 50_000)
# The vector store (search.index.store): "annoy" (published builds + an in-memory delta per process),
# "hnsw" (hnswlib: adds and deletes in place, one writer = the worker) or "milvus" (a Milvus server, or
# Milvus Lite in a local folder). docs/search_index.md compares them.
SEARCH_VECTOR_BACKEND = os.environ.get("SEARCH_VECTOR_BACKEND", "annoy")
if SEARCH_VECTOR_BACKEND not in {"annoy", "hnsw", "milvus"}:
    raise ImproperlyConfigured(
        f"SEARCH_VECTOR_BACKEND must be annoy, hnsw or milvus, not {SEARCH_VECTOR_BACKEND!r}"
    )
# milvus: the server (http://host:19530, a cluster's proxy) or a Milvus Lite folder (a path ending in
# .db, opened by one process at a time: `manage.py run_demo` serves it to its worker and web server);
# its token (user:password or an API key); the prefix of this shop's collection names (one collection
# per model, the alias <prefix>_serving); the vector index (HNSW, FLAT, IVF_FLAT, ...) and HNSW's ef.
# Default index: FLAT on Milvus Lite (its filtered HNSW kept recall@10 0.55 at 1 % passing, FLAT 1.0 at
# the same cost: docs/benchmarks.md, "Vector backends"), HNSW on a server.
SEARCH_MILVUS_URI = os.environ.get("SEARCH_MILVUS_URI", str(VAR_DIR / "milvus.db"))
SEARCH_MILVUS_TOKEN = os.environ.get("SEARCH_MILVUS_TOKEN", "")
SEARCH_MILVUS_PREFIX = os.environ.get("SEARCH_MILVUS_PREFIX", "shop")
SEARCH_MILVUS_INDEX = (
    os.environ.get("SEARCH_MILVUS_INDEX") or ("FLAT" if SEARCH_MILVUS_URI.endswith(".db") else "HNSW")
).upper()
SEARCH_MILVUS_EF = env_int("SEARCH_MILVUS_EF", 128)
if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,100}", SEARCH_MILVUS_PREFIX):
    raise ImproperlyConfigured(
        "SEARCH_MILVUS_PREFIX must be letters, digits and underscores (Milvus names), "
        f"not {SEARCH_MILVUS_PREFIX!r}"
    )
if not (SEARCH_MILVUS_URI.endswith(".db") or re.match(r"(https?|tcp|unix)://|unix:", SEARCH_MILVUS_URI)):
    raise ImproperlyConfigured(
        f"SEARCH_MILVUS_URI must be http://host:19530 (a Milvus server) or a path ending in .db "
        f"(Milvus Lite), not {SEARCH_MILVUS_URI!r}"
    )
# When the vectors passing a filter hold at most this many components (rows x dimensions), they are
# scored exactly instead of searched inside Annoy / hnswlib (measured cut-overs: docs/benchmarks.md,
# "Vector backends"; 8M is ~30k rows at 256-d or ~6k at 1280-d).
SEARCH_ANNOY_FILTER_EXACT_FLOATS = env_int("SEARCH_ANNOY_FILTER_EXACT_FLOATS", 8_000_000)
SEARCH_HNSW_FILTER_EXACT_FLOATS = env_int("SEARCH_HNSW_FILTER_EXACT_FLOATS", 3_000_000)
# hnsw: graph degree, build and query breadth (ef 64 gave recall@10 0.978 at 500k x 256-d, 0.976 at
# 200k x 1280-d; ef 128 is sub-millisecond: docs/benchmarks.md), and
# how many logged changes make the worker write a new snapshot (readers replay the log up to it).
SEARCH_HNSW_M = env_int("SEARCH_HNSW_M", 16)
SEARCH_HNSW_EF_CONSTRUCTION = env_int("SEARCH_HNSW_EF_CONSTRUCTION", 100)
SEARCH_HNSW_EF = env_int("SEARCH_HNSW_EF", 128)
SEARCH_HNSW_SNAPSHOT_CHANGES = env_int("SEARCH_HNSW_SNAPSHOT_CHANGES", 10_000)
# Stores read only what changed since their last look; rows of the last SEARCH_SYNC_OVERLAP_SECONDS are
# listed again (ids only) for writers whose commit came after their timestamp. Deleted photos are
# remembered for SEARCH_REMOVALS_KEEP_SECONDS (a store that looked longer ago starts over).
SEARCH_SYNC_OVERLAP_SECONDS = env_int("SEARCH_SYNC_OVERLAP_SECONDS", 10)
SEARCH_REMOVALS_KEEP_SECONDS = env_int("SEARCH_REMOVALS_KEEP_SECONDS", 24 * 3600)
# Object-aware search (search.embedding.objects): a query without a crop finds up to this many things
# in the photo (0 turns it off), decodes at least SEARCH_OBJECTS_DETAIL pixels on the shorter side for
# finding and cropping them, and returns SEARCH_OBJECT_RESULTS hits per object. The finder reads the
# backbone's feature map of the photo at SEARCH_OBJECTS_LONG_SIDE pixels on its longer side, with at most
# SEARCH_OBJECTS_MAX_AREA x that side squared pixels (a square photo is mapped with a 4:3 photo's pixels,
# 544 x 544: the map pass costs the same for any shape; 1 = no budget), and keeps boxes (after the main
# one) scoring at least SEARCH_OBJECTS_MIN_SCORE; all measured by bench/bench_scenes.py
# (docs/benchmarks.md, "Product in a scene": 448 is ~30 % faster, R@1 0.79 vs 0.81).
SEARCH_MAX_OBJECTS = env_int("SEARCH_MAX_OBJECTS", 5)
SEARCH_OBJECTS_DETAIL = env_int("SEARCH_OBJECTS_DETAIL", 1024)
SEARCH_OBJECTS_LONG_SIDE = env_int("SEARCH_OBJECTS_LONG_SIDE", 640)
SEARCH_OBJECTS_MAX_AREA = float(os.environ.get("SEARCH_OBJECTS_MAX_AREA", "0.75"))
# The feature-map pass's precision: "auto" runs it in bfloat16 where the CPU does that natively (AVX-512
# BF16 or AMX: ~2.6x faster, scene search no worse in bench_scenes), else float32; "bfloat16" or
# "float32" force one. Only the map: the photo and its box crops are always embedded in float32, like the
# catalog.
SEARCH_OBJECTS_MAP_PRECISION = os.environ.get("SEARCH_OBJECTS_MAP_PRECISION", "auto")
SEARCH_OBJECTS_MIN_SCORE = float(os.environ.get("SEARCH_OBJECTS_MIN_SCORE", "0.02"))
SEARCH_OBJECT_RESULTS = env_int("SEARCH_OBJECT_RESULTS", 4)
# Honest scores: a hit scoring at least SEARCH_CLOSE_MATCH is a "close match", at least
# SEARCH_SIMILAR_MATCH "looks similar"; below that it is only the nearest item (no green "match") and the
# page says nothing close was found. Measured by bench/bench_thresholds.py (docs/benchmarks.md) for the
# model the site runs; re-measure when changing the model.
SEARCH_CLOSE_MATCH = float(os.environ.get("SEARCH_CLOSE_MATCH", "0.70"))
SEARCH_SIMILAR_MATCH = float(os.environ.get("SEARCH_SIMILAR_MATCH", "0.55"))
SEARCH_QUERY_MAX_BYTES = env_int("SEARCH_QUERY_MAX_BYTES", 10 * 1024 * 1024)
SEARCH_QUERY_MAX_PIXELS = env_int("SEARCH_QUERY_MAX_PIXELS", 40_000_000)
SEARCH_URL_TIMEOUT = float(os.environ.get("SEARCH_URL_TIMEOUT", "5"))
# One wall-clock limit (seconds) over a whole URL fetch, redirects included: a host trickling bytes
# never trips the per-read timeout above.
SEARCH_URL_DEADLINE = float(os.environ.get("SEARCH_URL_DEADLINE", "10"))
SEARCH_URL_MAX_REDIRECTS = env_int("SEARCH_URL_MAX_REDIRECTS", 3)
# Hosts allowed even when they resolve to private addresses (tests serve photos on 127.0.0.1).
SEARCH_URL_ALLOWED_HOSTS = env_list("SEARCH_URL_ALLOWED_HOSTS", [])
# Query photos are not kept unless a retention period (days) is set.
SEARCH_KEEP_QUERY_PHOTOS_DAYS = env_int("SEARCH_KEEP_QUERY_PHOTOS_DAYS", 0)
# Relevance self-test (search.services.relevance): photos sampled per run by default (seeded, so the
# same seed takes the same photos), and the folder of real scene photos catalog photos are pasted
# into. The default folder ships with the project; an empty value means drawn clutter instead.
SEARCH_RELEVANCE_PHOTOS = env_int("SEARCH_RELEVANCE_PHOTOS", 200)
SEARCH_RELEVANCE_SCENES_DIR = os.environ.get(
    "SEARCH_RELEVANCE_SCENES_DIR", str(BASE_DIR / "search" / "relevance" / "scenes")
)

# --- Celery ---------------------------------------------------------------------------------
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL in ("filesystem://", "memory://"):
    # These transports ignore the host, but kombu warns "No hostname was supplied" on every
    # connection without one: name it, so the demo's log carries no false alarm.
    CELERY_BROKER_URL += "localhost/"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("out", "processed", "control"):
        (_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "out"),
        "data_folder_out": str(_BROKER_DIR / "out"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Crash safety (docs/search_index.md, "When a worker dies"): a worker running an index build or an
# import renews a lease every lease/4 seconds; work whose lease ran out was lost (worker killed) and is
# failed or run again by the reapers, which Celery beat runs every REAP_EVERY_SECONDS
# (`celery -A shop_search beat`, or `worker -B` on one machine).
SEARCH_LEASE_SECONDS = env_int("SEARCH_LEASE_SECONDS", 120)
CATALOG_IMPORT_LEASE_SECONDS = env_int("CATALOG_IMPORT_LEASE_SECONDS", SEARCH_LEASE_SECONDS)
REAP_EVERY_SECONDS = env_int("REAP_EVERY_SECONDS", 60)
for _name in ("SEARCH_LEASE_SECONDS", "CATALOG_IMPORT_LEASE_SECONDS", "REAP_EVERY_SECONDS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1 second")
# The time-based fold-in (docs/search_index.md, "Freshness"): new photos are searched exactly at once;
# a build that folds them into the index is requested when one has waited longer than this (0: never),
# besides the size-based trigger. Checked by Celery beat on the reapers' schedule.
SEARCH_FOLD_IN_AFTER_SECONDS = env_int("SEARCH_FOLD_IN_AFTER_SECONDS", 600)
if SEARCH_FOLD_IN_AFTER_SECONDS < 0:
    raise ImproperlyConfigured("SEARCH_FOLD_IN_AFTER_SECONDS must be 0 (off) or a number of seconds")
CELERY_BEAT_SCHEDULE = {
    name: {"task": task, "schedule": float(REAP_EVERY_SECONDS), "options": {"expires": REAP_EVERY_SECONDS}}
    for name, task in [
        ("reap-index-builds", "search.reap"),
        ("reap-import-jobs", "catalog.reap_imports"),
        ("fold-in-fresh-photos", "search.fold_in"),
        # hnsw: catches what no signal announced (e.g. a bulk update); prunes old photo deletions.
        ("sync-vector-stores", "search.sync_vectors"),
    ]
}
CELERY_BEAT_SCHEDULE_FILENAME = os.environ.get(
    "CELERY_BEAT_SCHEDULE_FILENAME", str(VAR_DIR / "celerybeat-schedule")
)

# --- Health and metrics (docs/operations.md) --------------------------------------------------
# /metrics answers requests from these addresses or networks (loopback by default) that came straight
# to the web process (no X-Forwarded-For / Forwarded / X-Real-IP header: behind a proxy on the same
# machine every request would look like loopback), or any request carrying
# "Authorization: Bearer <METRICS_BEARER_TOKEN>" when that token is set. Everyone else gets a 403.
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
METRICS_BEARER_TOKEN = os.environ.get("METRICS_BEARER_TOKEN", "")
for _network in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_IPS: {_network!r} is not an address or network"
        ) from _exc

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["catalog.api.permissions.CatalogWritePermission"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 24,
    "DEFAULT_THROTTLE_RATES": {
        "search_anon": os.environ.get("SEARCH_ANON_RATE", "30/minute"),
        # Shopper feedback ("this one" / "not what I'm looking for"), per client IP: the API and the page.
        "search_feedback": os.environ.get("SEARCH_FEEDBACK_RATE", "20/minute"),
    },
    # One error shape for the whole API: {"detail", "code"} (+ "errors" for invalid fields).
    "EXCEPTION_HANDLER": "search.api.exceptions.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "shop_search API",
    "DESCRIPTION": "Visual product search: find products that look like a photo.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Milvus Lite (SEARCH_VECTOR_BACKEND=milvus on a .db folder) narrates its start, flushes and FAISS's
    # CPU probing at INFO: their warnings and errors are enough.
    "loggers": {name: {"level": "WARNING"} for name in ("milvus_lite", "faiss")},
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
