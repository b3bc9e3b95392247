"""A tqdm bar as the progress callback of the search services: (done, failed, total)."""

from collections.abc import Callable

from tqdm import tqdm


def tqdm_progress(bar: tqdm) -> Callable[[int, int, int], None]:
    def update(done: int, failed: int, total: int) -> None:
        bar.total = total
        bar.n = done + failed
        bar.set_postfix(failed=failed, refresh=False)
        bar.refresh()

    return update
