"""Fetch and verify torchvision's ImageNet ResNet weights ahead of time.

For air-gapped installs: run this on a connected machine, then copy
$TORCH_HOME/hub/checkpoints/<file> to the same place on the server (or point SEARCH_WEIGHTS_PATH at it).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from search.embedding import RESNET_WEIGHTS, WeightsError, cache_path, download_weights
from search.embedding.backbones import build_resnet
from search.embedding.weights import load_state_file, verify_cached_file


class Command(BaseCommand):
    # Needs neither the database nor the URLconf: runs on a bare machine that only fetches files.
    requires_system_checks = []
    help = "Download torchvision's ImageNet weights for a ResNet into SEARCH_TORCH_HOME and verify them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--backbone", default=settings.SEARCH_BACKBONE, choices=sorted(RESNET_WEIGHTS))
        parser.add_argument(
            "--torch-home", default=settings.SEARCH_TORCH_HOME, help="default: SEARCH_TORCH_HOME"
        )
        parser.add_argument("--timeout", type=float, default=settings.SEARCH_DOWNLOAD_TIMEOUT, help="seconds")

    def handle(self, *args, backbone: str, torch_home: str, timeout: float, **options) -> None:
        target = cache_path(backbone, torch_home)
        try:
            if target.exists():
                self.stdout.write(f"{target} is already there; verifying it.")
                digest = verify_cached_file(target)
                build_resnet(backbone, load_state_file(target))
            else:
                self.stdout.write(f"Downloading {backbone} ImageNet weights into {target.parent} ...")
                target = download_weights(backbone, torch_home, timeout=timeout)
                digest = verify_cached_file(target)
        except WeightsError as exc:
            raise CommandError(f"Could not fetch {backbone} weights: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(f"OK: {target} (sha256 {digest[:12]}..., loads into {backbone}).")
        )
