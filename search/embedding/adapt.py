"""Catalog-adapted projection: a linear map learnt on top of the frozen backbone. No Django here.

Input: backbone features (n, d) float32 with, per row, a product id and a category id (-1: none). The
rows of one product are its catalog photos and the shopper-like variants made from them
(search.relevance.variants), so they are one another's positives. Output: ``Projection``, which maps a
backbone vector to an L2-normalised vector. By default (``start`` "identity") the map is d x d and
starts as the identity, i.e. as the backbone itself; weight decay and ``identity_pull`` pull it back
there, so it moves only as far as the catalog asks and keeps the detail that tells a photo from a
look-alike (the first slice's kind, ``start`` "principal": ``out_dim`` dimensions from the principal
directions, lost it: docs/benchmarks.md). ``keep_backbone`` (tried, not the default) puts the
backbone's own vector in front of a learnt block instead. Either way it is one linear map.

The loss is a softmax over the training products (a cosine classifier: each product has a learnt
prototype, the rows are pulled to their product's and pushed from the others') plus the same over
categories, weighted by ``category_weight``. On a catalog with more than ``sampled_products`` products a
step's product softmax runs over its own products and a random draw of the others (sampled softmax), so a
step costs the same on 5,000 products as on 1,000. The prototypes are thrown away after training; only the
projection is kept. Early stopping (on rows of the training products set aside per product) keeps the
best epoch. Everything is seeded: the same input and config give the same weights and fingerprint.

The fingerprint (sha256 of weights, config and training-data version) is part of the model fingerprint
once a merchant switches to the projection (search.embedding.projected); nothing here switches anything.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .adapt_config import SINCE_FIRST_SLICE, AdaptConfig, AdaptError

__all__ = [
    "SINCE_FIRST_SLICE",
    "AdaptConfig",
    "AdaptError",
    "Projection",
    "product_split",
    "projection_train",
]

FORMAT_VERSION = 1


@dataclass
class Projection:
    """x -> normalise((x - mean) @ weight); weight is (d, out_dim), or (d, d + out_dim) with the
    backbone kept (its first d columns a multiple of the identity)."""

    weight: np.ndarray
    mean: np.ndarray
    config: AdaptConfig
    data_version: str  # what it was trained on (the caller's feature-set and split signature)
    trained: dict = field(default_factory=dict)  # epochs, losses: for the report, not the fingerprint

    @property
    def in_dim(self) -> int:
        return int(self.weight.shape[0])

    @property
    def out_dim(self) -> int:
        return int(self.weight.shape[1])

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.weight, dtype="<f4").tobytes())
        digest.update(np.ascontiguousarray(self.mean, dtype="<f4").tobytes())
        digest.update(json.dumps(self.config.record(), sort_keys=True).encode())
        digest.update(self.data_version.encode())
        return digest.hexdigest()

    def project(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.in_dim:
            raise AdaptError(f"Expected features of shape (n, {self.in_dim}), got {features.shape}.")
        out = (features - self.mean) @ self.weight
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def save(self, path: str | Path) -> None:
        """A small .npz (no pickle): weights, mean and the metadata as JSON."""
        with open(path, "wb") as handle:
            self._write(handle)

    def dumps(self) -> bytes:
        """The bytes ``save`` writes (kept in the database, so every machine reads the same weights)."""
        buffer = io.BytesIO()
        self._write(buffer)
        return buffer.getvalue()

    def _write(self, handle) -> None:
        meta = {
            "format": FORMAT_VERSION,
            "config": self.config.record(),
            "data_version": self.data_version,
            "trained": self.trained,
            "fingerprint": self.fingerprint,
        }
        np.savez(
            handle, weight=self.weight.astype("<f4"), mean=self.mean.astype("<f4"), meta=json.dumps(meta)
        )


def projection_load(path: str | Path) -> Projection:
    """The projection saved at ``path``; AdaptError if it is not one or does not match its fingerprint."""
    return _projection_read(path, str(path))


def projection_loads(data: bytes) -> Projection:
    """The projection ``Projection.dumps`` gave; AdaptError as for projection_load."""
    return _projection_read(io.BytesIO(data), "The stored projection")


def _projection_read(source, path: str) -> Projection:
    try:
        with np.load(source, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            weight, mean = data["weight"].astype(np.float32), data["mean"].astype(np.float32)
    except (OSError, KeyError, ValueError) as exc:
        raise AdaptError(f"{path} is not a saved projection: {exc}") from exc
    if meta.get("format") != FORMAT_VERSION:
        raise AdaptError(f"{path} has projection format {meta.get('format')}, expected {FORMAT_VERSION}.")
    projection = Projection(
        weight, mean, AdaptConfig.from_record(meta["config"]), meta["data_version"], meta["trained"]
    )
    if projection.fingerprint != meta["fingerprint"]:
        raise AdaptError(f"{path} is damaged: its weights do not match the fingerprint it was saved with.")
    return projection


def product_split(product_ids: np.ndarray, *, held_out: float, seed: int) -> np.ndarray:
    """A boolean mask over the rows: True for the rows of the held-out products (a seeded ``held_out``
    share of the distinct products, at least one, and at least one left to train on). Split by product,
    never by row, so no product has rows on both sides."""
    products = np.unique(np.asarray(product_ids))
    if len(products) < 2:
        raise AdaptError(f"A split needs at least 2 products, not {len(products)}.")
    if not 0 < held_out < 1:
        raise AdaptError(f"The held-out share must be between 0 and 1, not {held_out}.")
    count = min(len(products) - 1, max(1, round(held_out * len(products))))
    chosen = np.random.default_rng(seed).choice(products, size=count, replace=False)
    return np.isin(product_ids, chosen)


def projection_train(
    features: np.ndarray,
    product_ids: np.ndarray,
    category_ids: np.ndarray,
    *,
    config: AdaptConfig | None = None,
    data_version: str = "",
) -> Projection:
    """Learns the projection on these rows (all of them are training rows: split before calling)."""
    config = config or AdaptConfig()
    config.check()
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or len(x) != len(product_ids) or len(x) != len(category_ids):
        raise AdaptError("features, product_ids and category_ids must have one row each per example.")
    if config.out_dim > x.shape[1] and config.start == "principal":
        raise AdaptError(
            f"The projection cannot have more dimensions ({config.out_dim}) than its input ({x.shape[1]})."
        )
    products, product_index = np.unique(product_ids, return_inverse=True)
    if len(products) < 2:
        raise AdaptError("Training needs at least 2 products.")
    categories, category_index = np.unique(np.asarray(category_ids), return_inverse=True)
    category_index = np.where(np.asarray(category_ids) < 0, -1, category_index)

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    fit, check = _validation_rows(product_index, config.validation_share, rng, config.seed)
    mean = x[fit].mean(axis=0)
    weight, parameter = _starting_map(x[fit] - mean, config)
    inputs = torch.from_numpy(x - mean)
    z0 = F.normalize(inputs[fit] @ weight().detach(), dim=1)
    product_heads = torch.nn.Parameter(_prototypes(z0, torch.from_numpy(product_index[fit]), len(products)))
    category_heads = torch.nn.Parameter(
        _prototypes(z0, torch.from_numpy(category_index[fit]), len(categories))
    )
    p_labels, c_labels = torch.from_numpy(product_index), torch.from_numpy(category_index)
    sampling = 0 < config.sampled_products < len(products)
    # A large catalog's steps update its map and thousands of product prototypes: the fused AdamW does it
    # in one pass, 1.3-1.6x faster per epoch (docs/benchmarks.md) with weights equal to rounding (1e-7).
    # The catalogs that sample are the ones whose training is long; the others keep the single-tensor
    # update, so what they learn stays bit for bit as before.
    optimiser = torch.optim.AdamW(
        [parameter, product_heads, category_heads],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
        fused=sampling or None,
    )
    draw = np.random.default_rng([config.seed, 2])  # its own stream: without sampling nothing is drawn

    def loss_of(rows: np.ndarray, sample: bool = False) -> torch.Tensor:
        z = F.normalize(inputs[rows] @ weight(), dim=1)
        heads, labels = product_heads, p_labels[rows]
        if sample:
            chosen, renumbered = _sampled_classes(
                product_index[rows], config.sampled_products, len(products), draw
            )
            heads, labels = product_heads[torch.from_numpy(chosen)], torch.from_numpy(renumbered)
        loss = _cosine_softmax(z, heads, labels, config.temperature)
        if config.category_weight and len(categories) > 1:
            loss = loss + config.category_weight * _cosine_softmax(
                z, category_heads, c_labels[rows], config.temperature
            )
        return loss

    best, best_loss, since, history = weight().detach().clone(), float("inf"), 0, []
    for _epoch in range(config.max_epochs):
        order = rng.permutation(fit)
        for start in range(0, len(order), config.batch_size):
            optimiser.zero_grad()
            loss = loss_of(order[start : start + config.batch_size], sample=sampling)
            if config.identity_pull and config.start == "identity":
                loss = loss + config.identity_pull * (parameter**2).sum()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            watched = float(loss_of(check if len(check) else fit))
        history.append(round(watched, 5))
        if watched < best_loss - 1e-4:
            best, best_loss, since = weight().detach().clone(), watched, 0
        else:
            since += 1
            if since >= config.patience:
                break
    learnt = best.numpy().astype(np.float32)
    kept = _kept_backbone(x[fit] - mean, learnt, config.keep_backbone)
    trained = {
        "rows": int(len(x)),
        "products": int(len(products)),
        "categories": int((categories >= 0).sum()),
        "epochs": len(history),
        "best_epoch": int(np.argmin(history)) + 1,
        "validation_loss": history,
        "validation_rows": int(len(check)),
        "sampled_products": config.sampled_products if sampling else 0,
    }
    if kept is not None:
        trained["backbone_scale"] = round(float(kept[0, 0]), 6)
        learnt = np.concatenate([kept, learnt], axis=1)
    return Projection(learnt, mean.astype(np.float32), config, data_version, trained)


def _starting_map(centred: np.ndarray, config: AdaptConfig) -> tuple:
    """(the map as a function of the trained parameter, that parameter). "principal": the top out_dim
    principal directions, trained as they are. "identity": the d x d identity plus a trained
    difference, so training starts from the backbone itself and weight decay (and identity_pull) pull
    the map back towards it."""
    if config.start == "identity":
        eye = torch.eye(centred.shape[1])
        difference = torch.nn.Parameter(torch.zeros_like(eye))
        return (lambda: eye + difference), difference
    weight = torch.nn.Parameter(torch.from_numpy(_principal_directions(centred, config.out_dim)))
    return (lambda: weight), weight


def _kept_backbone(centred: np.ndarray, learnt: np.ndarray, share: float) -> np.ndarray | None:
    """The block that keeps the backbone's own vector, ``share`` x s x identity (d, d); s makes the two
    blocks of the same typical length on the training rows (medians), so ``share`` means the same
    whatever the learnt block's scale. None when nothing is kept. Still one linear map: the saved
    projection, the ProjectedEmbedder and the loader do not change."""
    if not share:
        return None
    learnt_length = np.median(np.linalg.norm(centred @ learnt, axis=1))
    backbone_length = np.median(np.linalg.norm(centred, axis=1))
    scale = share * learnt_length / max(backbone_length, 1e-12)
    return (scale * np.eye(centred.shape[1])).astype(np.float32)


def _cosine_softmax(
    z: torch.Tensor, heads: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Cross-entropy of the cosine between each row and every prototype; rows labelled -1 are left out."""
    logits = z @ F.normalize(heads, dim=1).T / temperature
    known = labels >= 0
    if not bool(known.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[known], labels[known])


def _sampled_classes(
    labels: np.ndarray, count: int, total: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(the classes a step's softmax runs over, ``labels`` renumbered into them): every class of the
    step's rows, and classes drawn at random from the others up to ``count`` in all (or just the step's
    own when they are more). Sorted, so the same draw gives the same order."""
    own = np.unique(labels)
    others = np.setdiff1d(np.arange(total), own, assume_unique=True)
    extra = rng.choice(others, size=min(len(others), max(0, count - len(own))), replace=False)
    chosen = np.sort(np.concatenate([own, extra]))
    return chosen, np.searchsorted(chosen, labels)


def _prototypes(z: torch.Tensor, labels: torch.Tensor, count: int) -> torch.Tensor:
    """Each class's mean starting vector: training starts from where the rows already are."""
    sums = torch.zeros(count, z.shape[1])
    known = labels >= 0
    sums.index_add_(0, labels[known], z[known])
    empty = sums.norm(dim=1) == 0
    sums[empty] = torch.randn(int(empty.sum()), z.shape[1])
    return sums


def _principal_directions(centred: np.ndarray, out_dim: int) -> np.ndarray:
    """The top ``out_dim`` principal directions (d, out_dim); random orthogonal ones fill the rest when
    there are fewer rows than dimensions."""
    covariance = centred.T.astype(np.float64) @ centred.astype(np.float64)
    values, vectors = np.linalg.eigh(covariance)
    top = vectors[:, np.argsort(values)[::-1][:out_dim]]
    return np.ascontiguousarray(top, dtype=np.float32)


def _validation_rows(
    product_index: np.ndarray, share: float, rng: np.random.Generator, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, check rows). ``share`` of each product's rows is set aside when that is at least one
    row. A shop's usual product has fewer rows (one to three photos with two variants each: 15 % of 6 rows
    rounds to none), and with no check rows early stopping would watch the training loss itself and run
    every epoch; so one row each is also set aside from a seeded share of those products, about ``share``
    of their rows. Every product keeps at least one training row. The small products are drawn from their
    own seeded stream: products with enough rows are split exactly as before."""
    check: list[int] = []
    small: list[np.ndarray] = []
    order = np.argsort(product_index, kind="stable")
    for rows in np.split(order, np.flatnonzero(np.diff(product_index[order])) + 1):
        take = int(share * len(rows))
        if take:
            check.extend(rng.choice(rows, size=take, replace=False))
        elif share > 0 and len(rows) >= 2:
            small.append(rows)
    if small:
        draw = np.random.default_rng([seed, 1])
        count = min(len(small), round(share * sum(len(rows) for rows in small)))
        check.extend(draw.choice(small[i]) for i in draw.choice(len(small), size=count, replace=False))
    check_rows = np.array(sorted(check), dtype=np.int64)
    fit_rows = np.setdiff1d(np.arange(len(product_index)), check_rows)
    return fit_rows, check_rows
