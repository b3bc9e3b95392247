"""The Embedder: one loaded backbone + its preprocessing, turning photos into unit vectors. Loading one
(from a config or from the spec an index recorded) is search.embedding.loading."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from catalog.imaging import ImageSource, load_image

from .backbones import feature_map
from .batches import iter_batches
from .preprocess import Preprocessing
from .weights import ResolvedWeights

T = TypeVar("T")

# One forward pass at a time per process. Its torch threads (EmbedderConfig.threads, e.g. cores // web
# workers) are the process's share of the cores; a web worker serving several requests at once (gunicorn
# threads) would otherwise run one pass per request thread, each with those threads, and oversubscribe
# the cores again. Queued passes finish sooner on average, and cost less CPU, than interleaved ones.
_forward_lock = threading.Lock()


@dataclass
class EmbeddedBatch:
    """Vectors for the items of one batch that decoded, and the items that did not (with why)."""

    items: list
    vectors: np.ndarray  # (len(items), dim) float32, L2-normalised
    failures: list[tuple[object, Exception]]


class Embedder:
    """A backbone loaded once, in eval mode, with the preprocessing its vectors depend on."""

    projection = None  # a ProjectedEmbedder (search.embedding.projected) has one

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        dim: int,
        weights: ResolvedWeights,
        preprocessing: Preprocessing,
        batch_size: int = 16,
        device: str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device, memory_format=torch.channels_last)
        self.dim = dim
        self.weights = weights
        self.preprocessing = preprocessing
        self.batch_size = max(1, batch_size)

    # -- what the rest of the site shows about the model -----------------------------------
    @property
    def name(self) -> str:
        """The model actually used, e.g. "resnet50" or "efficientnet_lite0"."""
        return self.weights.name

    @property
    def requested(self) -> str:
        """The backbone asked for (SEARCH_BACKBONE)."""
        return self.weights.requested

    @property
    def pretrained(self) -> bool:
        return self.weights.pretrained

    @property
    def fallback(self) -> bool:
        return self.weights.fallback

    @property
    def untrained(self) -> bool:
        return not self.weights.pretrained

    @property
    def weights_source(self) -> str:
        return self.weights.source

    @property
    def weights_sha256(self) -> str:
        return self.weights.sha256

    @property
    def backbone(self) -> Embedder:
        """The model without any catalog-adapted projection (itself here)."""
        return self

    @property
    def fingerprint(self) -> str:
        """Backbone + weights hash + preprocessing: vectors are comparable only within one fingerprint."""
        return f"{self.name}-{self.weights_sha256[:12]}-{self.preprocessing.tag}"

    @property
    def label(self) -> str:
        """One line for pages and logs that never hides a fallback or untrained weights."""
        if self.untrained:
            return f"{self.name} with UNTRAINED weights (SEARCH_UNTRAINED): results are meaningless"
        if self.fallback:
            return f"{self.name} (ImageNet-trained offline fallback for {self.requested})"
        return f"{self.name} (ImageNet weights)"

    def describe(self) -> dict[str, object]:
        keys = (
            "name",
            "requested",
            "pretrained",
            "fallback",
            "untrained",
            "weights_source",
            "fingerprint",
            "dim",
        )
        projection = self.projection.fingerprint if self.projection is not None else ""
        return {key: getattr(self, key) for key in keys} | {"label": self.label, "projection": projection}

    # -- vectors -----------------------------------------------------------------------------
    def prepare(self, image: Image.Image) -> torch.Tensor:
        """The (3, H, W) model input for an RGB image."""
        return self.preprocessing(image)

    def load_and_prepare(self, source: ImageSource, *, max_pixels: int) -> torch.Tensor:
        """Decode (large JPEGs in draft mode) and prepare one photo."""
        return self.prepare(self.load(source, max_pixels=max_pixels))

    def load_pixels(self, source: ImageSource, *, max_pixels: int) -> torch.Tensor:
        """Decode and fit one photo to (3, H, W) uint8, for decoding threads: ``embed_tensor`` of
        a batch of these normalises it once, which keeps torch's float ops off those threads."""
        return self.preprocessing.pixels(self.load(source, max_pixels=max_pixels))

    def load(self, source: ImageSource, *, max_pixels: int) -> Image.Image:
        """Decode a photo exactly as ``load_and_prepare`` does (e.g. to crop it first)."""
        return load_image(source, max_pixels=max_pixels, draft_size=self.preprocessing.resize)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, dim) float32 L2-normalised vectors, computed in batches of ``batch_size``."""
        chunks = [
            self.embed_tensor(
                torch.stack(
                    [self.preprocessing.pixels(image) for image in images[start : start + self.batch_size]]
                )
            )
            for start in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dim), dtype=np.float32)

    def embed_one(self, image: Image.Image) -> np.ndarray:
        return self.embed([image])[0]

    def embed_tensor(self, batch: torch.Tensor) -> np.ndarray:
        """Vectors for an (n, 3, H, W) batch: uint8 pixels (``load_pixels``, normalised here in one
        vectorised op) or float tensors already prepared (``prepare``)."""
        with torch.inference_mode():
            if batch.dtype == torch.uint8:
                batch = self.preprocessing.normalize(batch)
            inputs = batch.to(self.device).contiguous(memory_format=torch.channels_last)
            with _forward_lock:
                output = self.model(inputs)
            features = F.normalize(output.float(), dim=1)
        return features.cpu().numpy().astype(np.float32, copy=False)

    def feature_map(
        self,
        image: Image.Image,
        *,
        long_side: int = 448,
        max_pixels: int | None = None,
        bfloat16: bool = False,
    ) -> torch.Tensor:
        """The backbone's last feature map (dim, h, w), float32 on the CPU, for the whole photo
        resized to ``long_side`` pixels on its longer side, or smaller when that would hold more than
        ``max_pixels`` (the pass costs what its pixels do): aspect kept, no centre crop, each side
        rounded to a multiple of 32 so every cell covers whole pixels. One forward pass of the model
        already loaded; it shows where in the photo the model sees things (``search.embedding.objects``).
        ``bfloat16`` runs the pass in bfloat16 on a CPU (autocast; see ``bfloat16_is_fast``): the map only
        says where things are (each cell's cosine to float32's: median ~0.997; docs/benchmarks.md)."""
        width, height = image.size
        scale = long_side / max(width, height)
        if max_pixels is not None and width * height * scale * scale > max_pixels:
            scale = math.sqrt(max_pixels / (width * height))
        size = (max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32))
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        array = np.asarray(rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0), dtype=np.uint8)
        pixels = torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0)
        fast = bfloat16 and self.device.type == "cpu"
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            batch = self.preprocessing.normalize(pixels).to(self.device)
            with _forward_lock:
                features = feature_map(self.model, batch.contiguous(memory_format=torch.channels_last))
        return features[0].float().cpu()

    def embed_sources(
        self, sources: Iterable[T], *, max_pixels: int, workers: int = 2, batch_size: int | None = None
    ) -> Iterator[EmbeddedBatch]:
        """Vectors for paths/bytes/files, decoding the next batch in threads while the model runs.

        Photos that cannot be decoded come back in ``failures`` and never stop the others.
        """
        batches = iter_batches(
            sources,
            lambda source: self.load_pixels(source, max_pixels=max_pixels),
            batch_size=batch_size or self.batch_size,
            workers=workers,
        )
        for batch in batches:
            vectors = self.embed_tensor(batch.tensor) if batch.tensor is not None else self._empty()
            yield EmbeddedBatch(items=batch.items, vectors=vectors, failures=batch.failures)

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.dim), dtype=np.float32)

    def __repr__(self) -> str:
        return f"<Embedder {self.fingerprint} source={self.weights_source!r}>"


def bfloat16_is_fast(device: torch.device | str = "cpu") -> bool:
    """Whether bfloat16 convolutions run natively on this CPU (AVX-512 BF16 or AMX tiles). Elsewhere
    they are emulated and slower than float32, so "auto" precision keeps float32 there."""
    if torch.device(device).type != "cpu":
        return False
    checks = (
        getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )
    return any(check() for check in checks if check is not None)
