"""Plain helpers of the projection tests: a projection trained and recorded as adapt_train does, and
its trial self-test run inline (tests/search/conftest.py has the fixtures using them)."""

from dataclasses import replace

from search import services
from search.embedding.adapt import AdaptConfig
from search.models import AdaptedProjection, RelevanceRun
from search.services.adapt import adapt_compare, adapt_features
from search.services.projections import projection_record


def train(*, better: bool | None = None) -> AdaptedProjection:
    """A projection trained and recorded as adapt_train does; ``better`` overrides the verdict (for
    plumbing tests only: 3 epochs on 5 products say nothing about quality)."""
    data = adapt_features(variants=1, seed=5)
    result = adapt_compare(
        data, held_out=0.3, seed=5, config=AdaptConfig.principal(out_dim=16, max_epochs=3), save=False
    )
    if better is not None:
        verdict = "Taken as better by the test." if better else "Taken as NOT better by the test."
        result = replace(result, better=better, verdict=verdict)
    return projection_record(comparison=result, backbone_fingerprint=data.fingerprint)


def trial(row: AdaptedProjection) -> tuple[RelevanceRun, RelevanceRun]:
    """Its trial self-test, then the serving model's run it requests (run inline, as a worker would)."""
    after = services.relevance_run(
        run_id=services.relevance_run_request(projection=row, kinds=["reshot"], enqueue=False).pk
    )
    assert after.status == "succeeded", after.error
    before = RelevanceRun.objects.get(projection=None, status="queued")
    before = services.relevance_run(run_id=before.pk)
    assert before.status == "succeeded", before.error
    return before, after
