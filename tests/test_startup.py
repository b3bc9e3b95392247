"""Every process of the site starts without the image model's libraries: `manage.py migrate`, `shell`,
the web server and the Celery worker load torch (about 3 s of CPU here) only when a photo is
embedded. Checked in a fresh process, as a deployment starts one."""

import json
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

START_UP = """
import json, sys, django
django.setup()  # every installed app, its admin and AppConfig.ready hooks
from django.urls import get_resolver
get_resolver().url_patterns  # every view, the API and its serializers
import shop_search.celery, catalog.tasks, search.tasks  # what a worker loads before its first task
print(json.dumps(sorted(name for name in ("torch", "torchvision") if name in sys.modules)))
"""


def test_starting_the_site_does_not_import_torch(tmp_path):
    env = {
        key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "CELERY_BROKER_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="shop_search.settings.base",
        DJANGO_DEBUG="1",
        SHOP_SEARCH_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "-c", START_UP], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
