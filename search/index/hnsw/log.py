"""The change log of an hnsw store: what the writer did since the snapshot, replayed by every reader.

Append-only, one record per batch: ``b"HVL1"``, payload length, CRC-32 of the payload, then the payload
(an ``.npz`` of the batch's arrays). A reader applies complete records whose checksum matches and stops
at the first one that is not (yet) complete, so it never sees half a batch; the writer, holding the
writer lock, cuts a torn tail left by a killed writer before appending.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..attrs import Attrs

MAGIC = b"HVL1"
_HEADER = struct.Struct("<4sII")
UPSERT, DELETE, ATTRS = 0, 1, 2


@dataclass(frozen=True)
class LogRecord:
    op: int
    ids: np.ndarray
    vectors: np.ndarray | None = None  # UPSERT only
    attrs: Attrs | None = None  # UPSERT and ATTRS
    mark: float | None = None


def record_bytes(record: LogRecord) -> bytes:
    arrays = {
        "op": np.int8(record.op),
        "ids": record.ids,
        "mark": np.float64(np.nan if record.mark is None else record.mark),
    }
    if record.op == UPSERT:
        a = record.attrs
        arrays.update(
            vectors=record.vectors,
            product=a.product,
            category=a.category,
            price=a.price_cents,
            active=a.active,
        )
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    payload = buf.getvalue()
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def log_append(path: Path, record: LogRecord) -> int:
    """Appends one record durably; returns the new end of the log."""
    data = record_bytes(record)
    with open(path, "ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
        return fh.tell()


def log_read(path: Path, offset: int) -> tuple[list[LogRecord], int]:
    """Complete records after ``offset`` and the offset after the last of them."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    records, pos = [], 0
    while pos + _HEADER.size <= len(data):
        magic, length, crc = _HEADER.unpack_from(data, pos)
        payload = data[pos + _HEADER.size : pos + _HEADER.size + length]
        if magic != MAGIC or len(payload) < length or zlib.crc32(payload) != crc:
            break
        records.append(_parse(payload))
        pos += _HEADER.size + length
    return records, offset + pos


def log_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _parse(payload: bytes) -> LogRecord:
    with np.load(io.BytesIO(payload)) as data:
        mark = float(data["mark"])
        mark_or_none = None if np.isnan(mark) else mark
        op = int(data["op"])
        if op in (UPSERT, ATTRS):
            attrs = Attrs.of(data["product"], data["category"], data["price"], data["active"])
            vectors = data["vectors"] if op == UPSERT else None
            return LogRecord(op, data["ids"], vectors, attrs, mark_or_none)
        return LogRecord(DELETE, data["ids"], mark=mark_or_none)
