"""iter_batches: preparation runs ahead in threads, order is kept, a bad item never stops the rest."""

import threading
import time

import pytest
import torch

from search.embedding import ImageDecodeError, iter_batches


def prepare(value: int) -> torch.Tensor:
    if value % 5 == 3:
        raise ImageDecodeError(f"item {value} is broken")
    time.sleep(0.001 * (value % 3))  # finish out of order on purpose
    return torch.full((3, 2, 2), float(value))


def test_batches_keep_input_order_and_report_failures():
    batches = list(iter_batches(range(23), prepare, batch_size=4, workers=3))
    assert [len(b.items) + len(b.failures) for b in batches] == [4, 4, 4, 4, 4, 3]
    items = [item for b in batches for item in b.items]
    assert items == [v for v in range(23) if v % 5 != 3]
    for batch in batches:
        assert batch.tensor[:, 0, 0, 0].tolist() == [float(v) for v in batch.items]
    failures = [(item, str(error)) for b in batches for item, error in b.failures]
    assert failures == [
        (3, "item 3 is broken"),
        (8, "item 8 is broken"),
        (13, "item 13 is broken"),
        (18, "item 18 is broken"),
    ]


def test_a_batch_where_everything_failed_has_no_tensor():
    (batch,) = iter_batches([3, 8], prepare, batch_size=4)
    assert batch.items == [] and batch.tensor is None and len(batch.failures) == 2


def test_bugs_are_not_swallowed_as_bad_photos():
    def buggy(value):
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        list(iter_batches([1, 2], buggy, batch_size=2))


def test_next_batch_is_prepared_while_the_caller_works():
    started: list[int] = []
    lock = threading.Lock()

    def record(value):
        with lock:
            started.append(value)
        return torch.zeros(1)

    batches = iter_batches(range(8), record, batch_size=2, workers=2)
    next(batches)
    time.sleep(0.2)  # the caller "runs the model" on batch 0
    with lock:
        assert {2, 3} <= set(started), "batch 1 was decoded during the model's turn"
    batches.close()
