"""Celery application. Broker and options come from Django settings (CELERY_* names)."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_search.settings.base")

app = Celery("shop_search")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _share_cores_among_pool_processes(sender=None, **kwargs) -> None:
    """Each prefork pool process loads its own model: the cores are shared out among them, as among
    gunicorn's workers (shop_search/cpu.py), unless SEARCH_TORCH_THREADS says otherwise. Runs in the
    worker's main process before the pool forks, so every pool process inherits the value."""
    if os.environ.get("SEARCH_TORCH_THREADS"):
        return
    from django.conf import settings

    from shop_search.cpu import torch_threads_per_process, usable_cores

    pool = getattr(sender, "pool_cls", "prefork")  # a name ("prefork", "solo", "threads") or a class
    prefork = "prefork" in (pool if isinstance(pool, str) else getattr(pool, "__module__", ""))
    concurrency = getattr(sender, "concurrency", 1)
    processes = concurrency if isinstance(concurrency, int) else usable_cores()  # "auto": one per core
    settings.SEARCH_TORCH_THREADS = torch_threads_per_process(processes if prefork else 1)
