"""A test catalog built once per test module through the real services, laid down again for each test.

Building a catalog (decoding and hashing photos, embedding them with the real model, building and
publishing an index) costs seconds; laying the result down again costs milliseconds. ``snapshot_take``
runs a build function once, in a transaction it rolls back, and keeps what it made: every row of the
project's apps (as Django fixtures keep them: raw, timestamps included) and the media and index
folders. ``snapshot_restore`` inserts those rows in the test's own database transaction (rolled back
after the test like any other) and copies the folders into the test's own MEDIA_ROOT and
SEARCH_INDEX_DIR, so each test starts from the same catalog, may change it freely, and sees nothing
of the others.

Transactional tests (``django_db(transaction=True)``, ``live_server``) run the build itself instead:
there every write commits, so the catalog's after-commit work (embedding new photos, scheduled index
builds) runs while the catalog is made, and such tests may rely on it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.test.utils import override_settings

PROJECT_DIR = Path(settings.BASE_DIR).resolve()


@dataclass(frozen=True)
class CatalogSnapshot:
    rows: list[dict]  # serializers' "python" format, in dependency order
    models: list[type[models.Model]]
    folder: Path  # media/ and index/ as the build left them
    value: Any  # what the build function returned (model instances are fetched again on restore)


def project_models() -> list[type[models.Model]]:
    """Models of the project's own apps (catalog, search, ...), parents before children."""
    own = [
        config
        for config in apps.get_app_configs()
        if Path(config.path).resolve().is_relative_to(PROJECT_DIR)
        and "site-packages" not in Path(config.path).resolve().parts
    ]
    return serializers.sort_dependencies([(config, None) for config in own], allow_cycles=True)


def catalog_for_test(request, snapshot_fixture: str, build: Callable[[], Any]) -> Any:
    """The catalog for this test: restored from the module's snapshot (the fixture named
    ``snapshot_fixture``, built on first use), or built afresh in a transactional test."""
    if is_transactional(request):
        return build()
    return snapshot_restore(request.getfixturevalue(snapshot_fixture))


def is_transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        return True
    return any(name in request.fixturenames for name in ("transactional_db", "live_server"))


def snapshot_take(build: Callable[[], Any], folder: Path, django_db_blocker) -> CatalogSnapshot:
    """Run ``build`` once with media and index under ``folder`` and keep what it made."""
    with (
        django_db_blocker.unblock(),
        override_settings(MEDIA_ROOT=folder / "media", SEARCH_INDEX_DIR=folder / "index"),
        transaction.atomic(),
    ):
        value = build()
        kept = project_models()
        rows = serializers.serialize(
            "python", [obj for model in kept for obj in model._base_manager.order_by("pk")]
        )
        transaction.set_rollback(True)  # the rows live on in the snapshot, not in the database
    return CatalogSnapshot(rows=rows, models=kept, folder=folder, value=value)


def snapshot_restore(snapshot: CatalogSnapshot) -> Any:
    """Lay the snapshot down in the current database and MEDIA_ROOT / SEARCH_INDEX_DIR; returns the
    build's value with fresh model instances from the database."""
    for name, target in (("media", settings.MEDIA_ROOT), ("index", settings.SEARCH_INDEX_DIR)):
        if (snapshot.folder / name).exists():
            # symlinks=True: the index's `current` link is relative and must stay a link.
            shutil.copytree(snapshot.folder / name, target, symlinks=True, dirs_exist_ok=True)
    with transaction.atomic():
        for obj in serializers.deserialize("python", snapshot.rows):
            # Raw inserts, as loaddata does (timestamps kept), and forced: a row already there (a
            # test that made data before this fixture) is an error, never silently overwritten.
            obj.save(force_insert=True)
        reset = connection.ops.sequence_reset_sql(no_style(), snapshot.models)
        if reset:  # PostgreSQL: the next row a test creates must not take a restored id
            with connection.cursor() as cursor:
                for sql in reset:
                    cursor.execute(sql)
    return _fetched_again(snapshot.value)


def _fetched_again(value: Any) -> Any:
    if isinstance(value, models.Model):
        return type(value)._base_manager.get(pk=value.pk)
    if isinstance(value, dict):
        return {key: _fetched_again(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_fetched_again(item) for item in value)
    return value
