"""The one tqdm adapter for the services' progress callbacks: ``(done, total)`` from the catalog import,
``(done, failed, total)`` from embedding and index builds. Search's commands use it too."""

from collections.abc import Callable

from tqdm import tqdm


def tqdm_progress(bar: tqdm) -> Callable[..., None]:
    def update(done: int, *counts: int) -> None:
        *failed, total = counts
        bar.total = total
        bar.n = done + sum(failed)
        if failed:
            bar.set_postfix(failed=failed[0], refresh=False)
        bar.refresh()

    return update
