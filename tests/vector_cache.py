"""Vectors (and feature maps) the real model computed once in this test session, reused for the very
same model input.

The model is deterministic: the same input tensor under the same fingerprint (backbone + weights +
preprocessing) gives the same vector, so the suite runs the real forward pass once per distinct input
instead of once per test (most tests embed the same dozen photos over and over). Nothing is faked:
a vector in the cache was computed by the real model, from exactly these pixels, in this session.

Keyed by the bytes of the input row itself (after decoding and preprocessing), not by a photo's
name or stored hash: a damaged file, another crop, a different decoder path or model all give a
different key and run the model. Only the site's process-wide embedder (``search.embedder``) is
wrapped; the engine's own tests build their embedders directly and always run the model, and a
test marked ``@pytest.mark.uncached_vectors`` (e.g. one comparing batched with single vectors) runs
it every time too.

The object finder's feature maps (``Embedder.feature_map``, one forward pass over the whole query
photo at 448 px) are kept the same way, keyed by the photo's pixels and the requested size.
"""

from __future__ import annotations

import hashlib

import numpy as np


class VectorCache:
    def __init__(self) -> None:
        self.vectors: dict[tuple[str, str, tuple[int, ...], bytes], np.ndarray] = {}
        self.feature_maps: dict[tuple, object] = {}
        self.enabled = True
        self.computed = 0  # rows the real model embedded
        self.reused = 0  # rows answered from vectors it embedded earlier

    def wrap(self, embedder):
        """Give ``embedder`` (a search.embedding.Embedder) an embed_tensor and feature_map that remember."""
        cls_method = type(embedder).embed_tensor
        cache = self

        def embed_tensor(batch):
            current = type(embedder).embed_tensor
            if not cache.enabled or current is not cls_method:
                return current(embedder, batch)  # a test patched the class: let it see every call
            keys = [cache._key(embedder.fingerprint, row) for row in batch]
            missing = [i for i, key in enumerate(keys) if key not in cache.vectors]
            if missing:
                fresh = current(embedder, batch if len(missing) == len(keys) else batch[missing])
                for i, vector in zip(missing, fresh, strict=True):
                    cache.vectors[keys[i]] = vector.copy()
            cache.computed += len(missing)
            cache.reused += len(keys) - len(missing)
            if not keys:
                return current(embedder, batch)
            return np.stack([cache.vectors[key] for key in keys]).astype(np.float32)

        map_method = getattr(type(embedder), "feature_map", None)

        def feature_map(image, *, long_side: int = 448, max_pixels: int | None = None, bfloat16=False):
            current = type(embedder).feature_map
            options = {"long_side": long_side, "max_pixels": max_pixels, "bfloat16": bfloat16}
            if not cache.enabled or current is not map_method:
                return current(embedder, image, **options)
            key = (
                embedder.fingerprint,
                long_side,
                max_pixels,
                bfloat16,
                image.mode,
                image.size,
                hashlib.sha256(image.tobytes()).digest(),
            )
            if key not in cache.feature_maps:
                cache.feature_maps[key] = current(embedder, image, **options)
                cache.computed += 1
            else:
                cache.reused += 1
            return cache.feature_maps[key].clone()

        embedder.embed_tensor = embed_tensor
        if map_method is not None:
            embedder.feature_map = feature_map
        return embedder

    @staticmethod
    def _key(fingerprint: str, row) -> tuple[str, str, tuple[int, ...], bytes]:
        data = row.detach().contiguous().cpu().numpy()
        return fingerprint, str(data.dtype), data.shape, hashlib.sha256(data.tobytes()).digest()
