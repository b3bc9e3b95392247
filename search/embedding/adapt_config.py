"""The settings of a catalog-adapted projection (search.embedding.adapt), and how they are saved and
fingerprinted so that projections saved by earlier versions keep their fingerprint. No Django here."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Fields added after the first slice, with the value that means "as the first slice trained".
SINCE_FIRST_SLICE = {"keep_backbone": 0.0, "start": "principal", "identity_pull": 0.0, "sampled_products": 0}


class AdaptError(ValueError):
    """Training input or a projection file that cannot be used; the message says why."""


@dataclass(frozen=True)
class AdaptConfig:
    out_dim: int = 256  # start "principal" only
    temperature: float = 0.2  # of the cosine softmax; sharper (0.05) saturated and learnt slowly
    category_weight: float = 0.3  # the category term's share of the loss (0: products only)
    learning_rate: float = 1e-4  # 1e-2 for start "principal" (AdaptConfig.principal)
    weight_decay: float = 1e-4
    batch_size: int = 256
    max_epochs: int = 100
    patience: int = 10  # epochs without a better validation loss before stopping
    validation_share: float = 0.15  # of each training product's rows, set aside for early stopping
    seed: int = 2026
    # Added after the first slice (see SINCE_FIRST_SLICE). The backbone's own centred vector, kept in
    # front of the learnt block, weighted by this much against the learnt block's typical length: the
    # learnt block alone lost the detail that tells a photo from a look-alike (copy detection, a
    # cropped product); 0 keeps the learnt block alone. The output then has d + out_dim dimensions.
    keep_backbone: float = 0.0
    # "principal": out_dim dimensions learnt from the principal directions (the first slice);
    # "identity": a full d x d map (out_dim unused) learnt from the identity, i.e. from the backbone.
    # Chosen on tune parts only (docs/benchmarks.md): the first slice's kind lost copy detection.
    start: str = "identity"
    identity_pull: float = 3e-3  # start "identity": the loss adds this x ||map - identity||^2
    # A catalog with more training products than this: each training step's product softmax runs over
    # the step's own products plus others drawn at random, this many prototypes in all (sampled
    # softmax, as "Partial FC" trains face models with millions of classes), so a step's cost stops
    # growing with the catalog; 0: always over all of them. A catalog with no more products trains
    # exactly as with 0. The epoch's validation loss is always over all of them (docs/benchmarks.md:
    # 10k photos).
    sampled_products: int = 1024

    def check(self) -> None:
        if self.out_dim < 2:
            raise AdaptError(f"The projection needs at least 2 dimensions, not {self.out_dim}.")
        if not 0 < self.temperature <= 1 or self.category_weight < 0:
            raise AdaptError("The temperature must be in (0, 1] and the category weight not negative.")
        if self.max_epochs < 1 or self.patience < 1 or self.batch_size < 2:
            raise AdaptError("max_epochs and patience must be at least 1, batch_size at least 2.")
        if not 0 <= self.validation_share < 1:
            raise AdaptError(f"The validation share must be in [0, 1), not {self.validation_share}.")
        if self.sampled_products < 0 or self.sampled_products == 1:
            raise AdaptError(f"sampled_products must be 0 (all) or at least 2, not {self.sampled_products}.")
        if self.keep_backbone < 0 or self.identity_pull < 0:
            raise AdaptError("keep_backbone and identity_pull must not be negative.")
        if self.start not in {"principal", "identity"}:
            raise AdaptError(f"The projection starts from 'principal' or 'identity', not {self.start!r}.")

    def record(self) -> dict:
        """The settings as saved and fingerprinted: a field added since the first slice is left out
        while it holds its first-slice value, so a projection saved before keeps its fingerprint."""
        return {
            name: value
            for name, value in asdict(self).items()
            if name not in SINCE_FIRST_SLICE or value != SINCE_FIRST_SLICE[name]
        }

    @classmethod
    def principal(cls, **fields) -> AdaptConfig:
        """The first slice's kind of projection (out_dim dimensions learnt from the principal
        directions, at the learning rate tuned for it); ``fields`` override."""
        return cls(**{**SINCE_FIRST_SLICE, "learning_rate": 1e-2, **fields})

    @classmethod
    def from_record(cls, record: dict) -> AdaptConfig:
        """The config a saved projection was trained with; a field it lacks had its first-slice value
        (not today's default)."""
        return cls(**{**SINCE_FIRST_SLICE, **record})
