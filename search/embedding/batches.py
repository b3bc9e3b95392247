"""Decode and preprocess the next batch in threads while the model works on the current one.

The model is the floor of indexing time (ResNet-50 ~11-15 img/s on 2 cores), so decoding must
hide behind it. Pillow releases the GIL while decoding and resizing, so a small thread pool is
enough. Typical use (what ``Embedder.embed_sources`` does)::

    for batch in iter_batches(paths, prepare, batch_size=16, workers=2):
        vectors = model(batch.tensor)          # rows follow batch.items
        for item, error in batch.failures:     # bad files are reported, never abort the run
            ...
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Generic, TypeVar

import torch

T = TypeVar("T")

# Problems with one item (bad image, unreadable file) that must not stop the others.
ITEM_ERRORS = (ValueError, OSError)


@dataclass
class PreparedBatch(Generic[T]):
    items: list[T]  # the items that were prepared, in input order
    tensor: torch.Tensor | None  # (len(items), 3, H, W), None when every item failed
    failures: list[tuple[T, Exception]] = field(default_factory=list)


def iter_batches(
    items: Iterable[T],
    prepare: Callable[[T], torch.Tensor],
    *,
    batch_size: int,
    workers: int = 2,
    prefetch: int = 1,
) -> Iterator[PreparedBatch[T]]:
    """Yield batches in input order; ``prefetch`` more batches are being prepared meanwhile."""
    if batch_size < 1 or workers < 1:
        raise ValueError("batch_size and workers must be at least 1")
    source = iter(items)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed-prepare")
    pending: deque[list[tuple[T, Future]]] = deque()
    try:
        for _ in range(prefetch + 1):
            _submit_next(pool, source, prepare, batch_size, pending)
        while pending:
            chunk = pending.popleft()
            _submit_next(pool, source, prepare, batch_size, pending)
            yield _collect(chunk)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _submit_next(pool, source, prepare, batch_size, pending) -> None:
    chunk = [(item, pool.submit(prepare, item)) for item in islice(source, batch_size)]
    if chunk:
        pending.append(chunk)


def _collect(chunk: list[tuple[T, Future]]) -> PreparedBatch[T]:
    items, tensors, failures = [], [], []
    for item, future in chunk:
        try:
            tensors.append(future.result())
        except ITEM_ERRORS as exc:
            failures.append((item, exc))
            continue
        items.append(item)
    tensor = torch.stack(tensors) if tensors else None
    return PreparedBatch(items=items, tensor=tensor, failures=failures)
