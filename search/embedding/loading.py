"""Loading an Embedder: from the site's config (build_embedder), and again, exactly, from the spec an
index manifest recorded (embedder_spec, build_embedder_from_spec)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .backbones import WeightsError
from .embedder import Embedder
from .preprocess import Preprocessing
from .weights import ResolvedWeights, WeightsConfig, resolve_backbone, resolve_recorded

if TYPE_CHECKING:
    from .adapt import Projection


@dataclass(frozen=True)
class EmbedderConfig:
    backbone: str = "resnet50"
    weights_path: str = ""
    torch_home: str = ""
    allow_download: bool = True
    download_timeout: float = 30.0
    untrained: bool = False
    threads: int = 0  # 0 leaves torch's default
    image_size: int = 224
    resize: int = 256
    center_crop: bool = True
    batch_size: int = 16

    def weights_config(self) -> WeightsConfig:
        return WeightsConfig(
            backbone=self.backbone,
            weights_path=self.weights_path,
            torch_home=self.torch_home,
            allow_download=self.allow_download,
            download_timeout=self.download_timeout,
            untrained=self.untrained,
        )


def build_embedder(config: EmbedderConfig) -> Embedder:
    """Resolve the weights, load the backbone once and wrap it with its preprocessing."""
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    backbone, weights = resolve_backbone(config.weights_config())
    return _wrap(backbone, weights, config)


def embedder_spec(embedder: Embedder) -> dict[str, object]:
    """What loads this exact model again (kept in an index manifest), as plain JSON values. A projection
    is named by its fingerprint; its weights are the caller's to find (build_embedder_from_spec)."""
    weights, preprocessing = embedder.weights, embedder.preprocessing
    return {
        "projection": embedder.projection.fingerprint if embedder.projection is not None else "",
        "fingerprint": embedder.fingerprint,
        "kind": weights.kind,
        "backbone": weights.requested,
        "weights_path": str(weights.path or ""),
        "resize": preprocessing.resize,
        "image_size": preprocessing.size,
        "center_crop": preprocessing.center_crop,
    }


def build_embedder_from_spec(
    spec: dict, *, threads: int = 0, batch_size: int = 16, projection: Projection | None = None
) -> Embedder:
    """The model an ``embedder_spec`` describes, checked by its fingerprint (WeightsError otherwise).
    A spec naming a projection needs that ``projection`` (the backbone's is built here)."""
    config = EmbedderConfig(
        backbone=str(spec["backbone"]),
        threads=threads,
        image_size=int(spec["image_size"]),
        resize=int(spec["resize"]),
        center_crop=bool(spec["center_crop"]),
        batch_size=batch_size,
    )
    if threads > 0:
        torch.set_num_threads(threads)
    backbone, weights = resolve_recorded(str(spec["kind"]), config.backbone, str(spec["weights_path"]))
    embedder = _wrap(backbone, weights, config)
    wanted = str(spec.get("projection", ""))
    if wanted:
        from .projected import ProjectedEmbedder

        if projection is None or projection.fingerprint != wanted:
            raise WeightsError(f"the serving index needs projection {wanted[:16]}, which is not at hand")
        embedder = ProjectedEmbedder(embedder, projection)
    if embedder.fingerprint != spec["fingerprint"]:
        raise WeightsError(
            f"the weights at hand give {embedder.fingerprint}, not the recorded {spec['fingerprint']}"
        )
    return embedder


def _wrap(backbone, weights: ResolvedWeights, config: EmbedderConfig) -> Embedder:
    preprocessing = Preprocessing(
        resize=config.resize,
        size=config.image_size,
        center_crop=config.center_crop,
        mean=backbone.mean,
        std=backbone.std,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return Embedder(
        backbone.module,
        dim=backbone.dim,
        weights=weights,
        preprocessing=preprocessing,
        batch_size=config.batch_size,
        device=device,
    )
