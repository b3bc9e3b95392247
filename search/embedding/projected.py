"""An Embedder whose vectors go through a catalog-adapted projection: backbone -> L2 norm -> projection
(search.embedding.adapt) -> L2 norm. No Django here.

It shares the loaded backbone (no second copy of the weights): the same photo's backbone vector is
computed by ``base`` and projected here, so catalog photos, queries and object boxes all get vectors of
the projected width. The fingerprint adds the projection's (weights, config and training-data
version) to the backbone's, so vectors of the two are never compared and switching re-embeds.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .adapt import Projection
from .backbones import WeightsError
from .embedder import Embedder


class ProjectedEmbedder(Embedder):
    def __init__(self, base: Embedder, projection: Projection) -> None:
        # Not Embedder.__init__: the backbone is already loaded and in eval mode; its parts are shared.
        if isinstance(base, ProjectedEmbedder):
            base = base.base
        if projection.in_dim != base.dim:
            raise WeightsError(
                f"the projection takes {projection.in_dim}-dimensional vectors but {base.fingerprint} "
                f"gives {base.dim}: it was trained on another backbone"
            )
        self.base = base
        self.projection = projection
        self.device, self.model, self.weights = base.device, base.model, base.weights
        self.preprocessing, self.batch_size = base.preprocessing, base.batch_size
        self.dim = projection.out_dim

    @property
    def backbone(self) -> Embedder:
        return self.base

    @property
    def fingerprint(self) -> str:
        return f"{self.base.fingerprint}+{projection_tag(self.projection)}"

    @property
    def label(self) -> str:
        return f"{self.base.label}, adapted to this catalog ({projection_tag(self.projection)}, {self.dim} d)"

    def embed_tensor(self, batch: torch.Tensor) -> np.ndarray:
        # Through base.embed_tensor (not the class's): whatever wraps the backbone's pass sees it.
        return self.projection.project(self.base.embed_tensor(batch))

    def feature_map(self, image: Image.Image, **options) -> torch.Tensor:
        """The backbone's map (``Embedder.feature_map``'s options): it only says where things are (object
        boxes); their crops are embedded (and projected) like any photo."""
        return self.base.feature_map(image, **options)

    def __repr__(self) -> str:
        return f"<ProjectedEmbedder {self.fingerprint} source={self.weights_source!r}>"


def projection_tag(projection: Projection) -> str:
    """The projection's part of a model fingerprint (its own fingerprint covers weights, config and
    training-data version)."""
    return f"p{projection.fingerprint[:16]}"
