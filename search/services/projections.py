"""Catalog-adapted projections in use: recording a trained one, switching to it, and back.

``adapt_train`` records every projection it trains (AdaptedProjection: weights, the held-out
comparison, the verdict). Staff switch to one explicitly (the admin's "Use this projection", calling
``projection_use``); never anything automatic. It is refused when the projection is not better on the
held-out products, when it was trained on another backbone than the one in use, or when its trial
self-test (search.services.relevance, same variants as the serving model's run) came out worse.

A switch changes the model fingerprint (search.embedder.current_embedder reads the projection in use:
this process at once, the others within SEARCH_PROJECTION_CHECK_SECONDS), so, as for any model switch,
a build is requested: it re-embeds the catalog under the new model (the stored backbone vectors
projected, search.services.projected_vectors) and publishes an index, while the index already published
keeps answering with its own model (search.services.state.query_embedder).
``projection_stop`` goes back to the backbone the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from search.embedder import SearchUnavailable, backbone_embedder, forget_projection_in_use, stored_projection
from search.models import AdaptedProjection, IndexBuild, RelevanceRun

from .build_queue import index_build_request

logger = logging.getLogger(__name__)


class ProjectionRefused(ValueError):
    """A switch that is not done; the message says why and that the current model is kept."""


def projection_record(*, comparison, backbone_fingerprint: str) -> AdaptedProjection:
    """Keeps a trained projection and its held-out comparison (search.services.adapt.AdaptComparison),
    better or not: the admin lists both, and offers to switch only to a better one."""
    projection = comparison.projection
    row, _ = AdaptedProjection.objects.update_or_create(
        fingerprint=projection.fingerprint,
        defaults={
            "backbone_fingerprint": backbone_fingerprint,
            "in_dim": projection.in_dim,
            "out_dim": projection.out_dim,
            "data_version": projection.data_version,
            "weights": projection.dumps(),
            "comparison": {
                "backbone": comparison.backbone.as_dict(),
                "projected": comparison.projected.as_dict(),
                "train_products": comparison.train_products,
                "held_out_products": comparison.held_out_products,
                "train_rows": comparison.train_rows,
                "feedback_rows": comparison.feedback_rows,
                "trained": projection.trained,
            },
            "held_out_product_ids": sorted(comparison.held_out_ids),
            "better": comparison.better,
            "verdict": comparison.verdict,
        },
    )
    return row


def projection_refusal(projection: AdaptedProjection) -> str:
    """Why staff may not switch to this projection ("" when they may)."""
    kept = "the current model is kept."
    if not projection.better:
        return f"Projection #{projection.pk} is not better on the held-out products: {kept}"
    try:
        backbone = backbone_embedder()
    except SearchUnavailable as exc:
        return f"{exc} {kept.capitalize()}"
    if projection.backbone_fingerprint != backbone.fingerprint:
        return (
            f"Projection #{projection.pk} was trained on {projection.backbone_fingerprint}, but the site's "
            f"backbone is {backbone.fingerprint}: train one again on it; {kept}"
        )
    before, after = projection_trial_pair(projection)
    if before is None or after is None:
        return f"Run its self-test first (its held-out products, before and after): {kept}"
    if _worse(before, after):
        return (
            f"Projection #{projection.pk} is not better in its self-test on the held-out products "
            f"(run #{after.pk} against #{before.pk}): {kept}"
        )
    from search.embedding.adapt import AdaptError  # here: the engine package brings torch (site start-up)

    try:
        stored_projection(projection.fingerprint)
    except AdaptError as exc:
        return f"Projection #{projection.pk} cannot be loaded ({exc}): {kept}"
    return ""


def projection_use(*, projection_id: int, user=None) -> tuple[AdaptedProjection, IndexBuild]:
    """Switches the site's model to this projection and requests the build that re-embeds the catalog
    under it (in the background; the published index keeps answering meanwhile)."""
    with transaction.atomic():
        projection = AdaptedProjection.objects.select_for_update().filter(pk=projection_id).first()
        if projection is None:
            raise ProjectionRefused(f"There is no projection #{projection_id}.")
        if projection.in_use:
            raise ProjectionRefused(f"Projection #{projection.pk} is in use already.")
        reason = projection_refusal(projection)
        if reason:
            raise ProjectionRefused(reason)
        AdaptedProjection.objects.filter(in_use=True).update(in_use=False)
        projection.in_use, projection.switched_at, projection.switched_by = True, timezone.now(), user
        projection.save(update_fields=["in_use", "switched_at", "switched_by"])
        _switched()
        build = index_build_request()  # sent to a worker after the commit
    logger.info(
        "Switched to projection %s (build %s re-embeds the catalog)", projection.fingerprint, build.pk
    )
    return projection, build


def projection_stop(*, user=None) -> tuple[AdaptedProjection, IndexBuild]:
    """Back to the backbone alone; the catalog is re-embedded under it as for any model switch (its
    stored vectors are settled already, so that build only indexes)."""
    with transaction.atomic():
        projection = AdaptedProjection.objects.select_for_update().filter(in_use=True).first()
        if projection is None:
            raise ProjectionRefused("No projection is in use: the site uses the backbone already.")
        projection.in_use, projection.switched_at, projection.switched_by = False, timezone.now(), user
        projection.save(update_fields=["in_use", "switched_at", "switched_by"])
        _switched()
        build = index_build_request()
    logger.info("Back to the backbone from projection %s (build %s)", projection.fingerprint, build.pk)
    return projection, build


def _switched() -> None:
    """This process follows the switch at once: this thread now (it sees its own transaction), every
    thread once it is committed (one may read the old row meanwhile). A build inline on commit rereads
    anyway (current_embedder(recheck=True)). Other processes follow within their check time."""
    forget_projection_in_use()
    transaction.on_commit(forget_projection_in_use)


def projection_trial_pair(projection: AdaptedProjection) -> tuple[RelevanceRun | None, RelevanceRun | None]:
    """(before, after): the newest finished trial self-test of this projection and the serving model's
    run on the very same variants (search.services.relevance), or None where there is none yet."""
    after = (
        RelevanceRun.objects.filter(projection=projection, status=RelevanceRun.Status.SUCCEEDED)
        .exclude(variant_set="")
        .first()
    )
    if after is None:
        return None, None
    before = (
        RelevanceRun.objects.filter(
            projection=None, variant_set=after.variant_set, status=RelevanceRun.Status.SUCCEEDED
        )
        .exclude(fingerprint=after.fingerprint)
        .first()
    )
    return before, after


def _worse(before: RelevanceRun, after: RelevanceRun) -> bool:
    """The held-out verdict's rule on the self-test's figures: any of them lower is worse."""
    pairs = [(before.r_at_1, after.r_at_1), (before.r_at_10, after.r_at_10)]
    pairs.append((before.category_p_at_10, after.category_p_at_10))
    return any(b is not None and a is not None and a < b for b, a in pairs)


@dataclass(frozen=True)
class ProjectionRow:
    """One projection as the admin lists it."""

    projection: AdaptedProjection
    before: RelevanceRun | None  # the serving model's self-test on the trial's variants
    after: RelevanceRun | None  # the trial self-test with the projection
    refusal: str  # why it may not be switched to ("" when it may)


def projection_rows() -> list[ProjectionRow]:
    rows = []
    for projection in AdaptedProjection.objects.defer("weights"):
        before, after = projection_trial_pair(projection)
        refusal = "" if projection.in_use else projection_refusal(projection)
        rows.append(ProjectionRow(projection, before, after, refusal))
    return rows
