"""SQLite as the demo runs it: the web process and the worker write to one file at once.

Two connections each run a transaction that reads, pauses and then writes, overlapping in time. With
SQLite's default (deferred) transactions the second writer is refused at once with "database is
locked" (SQLite will not wait for a lock it could deadlock on): that was the admin's 500. With the
project's SQLITE_OPTIONS the second one waits for the first and both succeed.
"""

import threading
import time

import pytest
from django.db import OperationalError, connections, transaction
from django.db.utils import ConnectionHandler

from shop_search.settings.base import SQLITE_OPTIONS, database_settings


def _writers(path, options: dict, monkeypatch) -> list[BaseException | None]:
    db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path), "OPTIONS": options}
    configured = ConnectionHandler({"default": db}).settings["default"]
    for alias in ("w0", "w1"):  # two connections as Django opens them, as the web and the worker do
        monkeypatch.setitem(connections.settings, alias, dict(configured))
    with connections["w0"].cursor() as cursor:
        cursor.execute("CREATE TABLE t (n INTEGER)")
    outcomes: list[BaseException | None] = [None, None]
    both_read = threading.Barrier(2)

    def writer(slot: int) -> None:
        alias = f"w{slot}"
        try:
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute("SELECT count(*) FROM t")
                try:
                    both_read.wait(timeout=0.5)  # IMMEDIATE: the second one is still waiting here
                except threading.BrokenBarrierError:
                    pass
                time.sleep(0.2)
                cursor.execute("INSERT INTO t VALUES (%s)", [slot])
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcomes[slot] = exc
        finally:
            connections[alias].close()

    threads = [threading.Thread(target=writer, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    connections["w0"].close()
    for alias in ("w0", "w1"):  # forget this thread's connections: the next test uses another file
        if hasattr(connections._connections, alias):
            delattr(connections._connections, alias)
    return outcomes


@pytest.fixture
def own_databases(django_db_blocker):
    """These tests open their own SQLite files, not the test database."""
    with django_db_blocker.unblock():
        yield


def test_default_sqlite_refuses_the_second_writer(tmp_path, own_databases, monkeypatch):
    outcomes = _writers(tmp_path / "plain.sqlite3", {"timeout": 30}, monkeypatch)
    failures = [exc for exc in outcomes if exc is not None]
    assert len(failures) == 1 and isinstance(failures[0], OperationalError)
    assert "locked" in str(failures[0])


def test_project_sqlite_options_let_both_writers_finish(tmp_path, own_databases, monkeypatch):
    path = tmp_path / "demo.sqlite3"
    assert _writers(path, SQLITE_OPTIONS, monkeypatch) == [None, None]
    import sqlite3

    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert sorted(n for (n,) in check.execute("SELECT n FROM t")) == [0, 1]


def test_demo_database_gets_the_options():
    """The default DATABASE_URL (SQLite under var/) gets every option; PostgreSQL gets none of them."""
    assert database_settings("sqlite:///var/db.sqlite3")["OPTIONS"] == SQLITE_OPTIONS
    assert "transaction_mode" not in database_settings("postgres://u:p@127.0.0.1/db").get("OPTIONS", {})
