"""Pure PyTorch/Pillow embedding engine: image loading, preprocessing, backbones, weights, vectors.

No Django here; ``search.embedder.current_embedder()`` builds the process-wide Embedder from settings.
"""

# The decoder lives with the catalog (both sides validate and read pictures with it); the engine
# re-exports it as part of its own API.
from catalog.imaging import ImageDecodeError, ImageSource, ImageTooLarge, load_image, to_rgb

from .backbones import FALLBACK_NAME, RESNET_WEIGHTS, WeightsError
from .batches import PreparedBatch, iter_batches
from .embedder import EmbeddedBatch, Embedder
from .loading import EmbedderConfig, build_embedder, build_embedder_from_spec, embedder_spec
from .objects import ObjectBox, ObjectFinder, embed_with_objects, find_objects
from .preprocess import PREPROCESS_VERSION, Preprocessing, crop_fraction
from .weights import (
    ResolvedWeights,
    WeightsConfig,
    cache_path,
    download_weights,
    resolve_backbone,
    weights_url,
)

__all__ = [
    "FALLBACK_NAME",
    "PREPROCESS_VERSION",
    "RESNET_WEIGHTS",
    "EmbeddedBatch",
    "Embedder",
    "EmbedderConfig",
    "ImageDecodeError",
    "ImageSource",
    "ImageTooLarge",
    "ObjectBox",
    "ObjectFinder",
    "PreparedBatch",
    "Preprocessing",
    "ResolvedWeights",
    "WeightsConfig",
    "WeightsError",
    "build_embedder",
    "build_embedder_from_spec",
    "embedder_spec",
    "cache_path",
    "crop_fraction",
    "download_weights",
    "embed_with_objects",
    "find_objects",
    "iter_batches",
    "load_image",
    "resolve_backbone",
    "to_rgb",
    "weights_url",
]
