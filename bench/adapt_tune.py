"""Where bench_adapt.py's choice among projection configs is read (``--tune``): parts that are never
reported as results. The Fashion-MNIST training set's own validation part, and, for copy detection, a
second split by product INSIDE each evaluated fold's training photos. (The scene set's tune half is
bench_adapt's own ``tune`` rows.) The Fashion test set, the copy folds' edits and the scene test half
are not read here.

``TRIED``: every config compared this way, under the names docs/benchmarks.md gives them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from bench.bench_quality import precision_and_map
from search.embedding.adapt import AdaptConfig, Projection, product_split

# The first slice's default, written out: today's default differs.
FIRST_SLICE = AdaptConfig.from_record(
    {"out_dim": 256, "temperature": 0.2, "category_weight": 0.3, "learning_rate": 1e-2, "weight_decay": 1e-4}
)
TRIED = {
    "first slice": FIRST_SLICE,
    **{f"keep {a:g}": replace(FIRST_SLICE, keep_backbone=a) for a in (0.5, 1.0, 1.5, 2.0)},
    "512 d": replace(FIRST_SLICE, out_dim=512),
    **{f"512 d, keep {a:g}": replace(FIRST_SLICE, out_dim=512, keep_backbone=a) for a in (1.5, 2.0)},
    "categories 0": replace(FIRST_SLICE, category_weight=0.0),
    **{
        f"categories 0, keep {a:g}": replace(FIRST_SLICE, category_weight=0.0, keep_backbone=a)
        for a in (1.5, 2.0)
    },
    **{
        f"identity, lr {lr:g}, pull {pull:g}": replace(
            FIRST_SLICE, start="identity", learning_rate=lr, identity_pull=pull
        )
        for lr, pull in ((1e-4, 0.0), (1e-4, 1e-3), (1e-4, 3e-3), (1e-4, 1e-2), (3e-4, 3e-3))
    },
    "identity, lr 0.0001, categories 0": replace(
        FIRST_SLICE, start="identity", learning_rate=1e-4, category_weight=0.0
    ),
}

Train = Callable[[np.ndarray, np.ndarray, np.ndarray, AdaptConfig], Projection]


def identity(x: np.ndarray) -> np.ndarray:
    return x


def fashion_choice(
    train: np.ndarray, labels: np.ndarray, configs: dict[str, AdaptConfig], trained: Train, seed: int
) -> None:
    """A validation part of the TRAINING set (1 in 5 of each class: 500 queries against the rest of
    it), each config trained on the other 4 in 5."""
    rng = np.random.default_rng(seed)
    check = np.zeros(len(train), dtype=bool)
    for c in range(10):
        members = np.flatnonzero(labels == c)
        check[rng.choice(members, size=len(members) // 5, replace=False)] = True
    vq = np.concatenate([np.flatnonzero(check & (labels == c))[:50] for c in range(10)])
    vg = np.setdiff1d(np.flatnonzero(check), vq)
    print(f"  validation (training set only): {len(vq)} queries vs {len(vg)}; P@10, mAP")
    for name, config in [("off-the-shelf", None), *configs.items()]:
        space = identity
        if config is not None:
            space = trained(train[~check], labels[~check], labels[~check], config).project
        p10, mean_ap = precision_and_map(space(train[vq]), labels[vq], space(train[vg]), labels[vg])
        print(f"    {name:<42}{p10:>11.3f}{mean_ap:>10.3f}")


def copy_choice(
    photos: dict,
    folds: list[np.ndarray],
    evaluable: np.ndarray,
    rows_of: Callable[[np.ndarray], tuple],
    configs: dict[str, AdaptConfig],
    trained: Train,
    seed: int,
) -> None:
    """Inside each fold's training photos (the photos its projection may see), half of the evaluable
    ones (by product) are held out again: trained on the rest, their edits searched among all of that
    fold's training photos. The evaluated folds' own edits are not touched."""
    print("  tune (inside each fold's training photos): R@1 over every edit")
    for name, config in [("off-the-shelf", None), *configs.items()]:
        found = []
        for fold in folds:
            others = np.setdiff1d(np.arange(len(photos["paths"])), fold)
            inner = np.intersect1d(others, evaluable)
            held = inner[product_split(inner, held_out=0.5, seed=seed + 1)]
            space = identity
            if config is not None:
                space = trained(*rows_of(np.setdiff1d(others, held)), config).project
            gallery = space(photos["originals"][others])
            truth = np.searchsorted(others, held)
            for e in range(len(photos["edit_names"])):
                scores = space(photos["edits"][e, held]) @ gallery.T
                found.append((scores > scores[np.arange(len(truth)), truth][:, None]).sum(axis=1))
        ranks = np.concatenate(found)
        print(f"    {name:<42}{np.mean(ranks < 1):>11.3f}  ({len(ranks)} queries)")
