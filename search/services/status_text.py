"""The index state in words for the people who run the shop (the admin dashboard).

Shoppers are told nothing about indexing unless search is really degraded (search.views): a photo
embedded after the last build is searched exactly at once, so "waiting for the next build" is
bookkeeping, not a gap in results. Staff read here what each number means and what happens next.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.timesince import timesince

from .build_queue import rebuild_fresh_threshold
from .status import IndexState, IndexStatus


def index_state_label(status: IndexStatus) -> str:
    """A few words for the dashboard's caption, instead of the raw state name."""
    if status.model_error:
        return "search unavailable: no model"
    if _switching_models(status):
        return "switching models: the previous model's index serves"
    if status.state == IndexState.BUILDING:
        return "a build is running; search works meanwhile"
    if status.current_build is None:
        return "searched exactly, no index yet" if status.embedded else "nothing searchable yet"
    if status.pending:
        return "photos waiting to be embedded"
    if status.fresh:
        return "up to date for search; new photos wait for the next build"
    return "up to date"


def index_state_explained(status: IndexStatus, *, now: datetime | None = None) -> list[str]:
    """Sentences saying what the state means for searches and what happens next, most important first."""
    now = now or timezone.now()
    if status.model_error:
        return ["Nobody can search by photo: no image model could be loaded (see above)."]
    lines = [_serving(status, now)]
    if status.running_build is not None:
        lines.append(_running(status))
    if status.fresh and _same_model_serves(status):
        lines.append(_fresh(status, now))
    if status.pending:
        lines.append(
            f"{_photos(status.pending, 'is', 'are')} waiting to be embedded by a worker: "
            f"{_pronoun(status.pending)} become{'s' if status.pending == 1 else ''} searchable seconds "
            "after, or with the next build. If this number does not go down, check that a Celery worker runs."
        )
    if status.failed:
        lines.append(
            f"{_photos(status.failed, 'was', 'were')} not embedded (reasons below) and cannot be found by "
            "photo until replaced."
        )
    return lines


def _serving(status: IndexStatus, now: datetime) -> str:
    current = status.current_build
    if _switching_models(status):
        return (
            f"The index was built by the previous model ({current.fingerprint}): searches use that "
            f"model, loaded from the build, until a build under the current model ({status.name}) is "
            "published (if it can no longer be loaded, they compare the vectors the current model has "
            "embedded so far). That build re-embeds the whole catalog and is requested automatically."
        )
    if current is None:
        if status.embedded:
            return (
                f"No index has been built yet: the {_photos(status.embedded)} embedded so far are searched "
                "exactly (every vector compared). A build is requested automatically."
            )
        if status.products == 0:
            return "The catalog has no active product yet: there is nothing to search."
        return "Nothing is searchable yet: no photo has been embedded."
    built = f", built {timesince(current.built_at, now)} ago" if current.built_at else ""
    name = f"Build #{current.id}" if current.id else f"Build {current.version}"
    text = f"{name} serves {current.vectors} vectors{built}."
    if not status.fresh and not status.pending and status.state == IndexState.READY:
        text += " Every embedded photo of an active product is in it."
    return text


def _running(status: IndexStatus) -> str:
    running = status.running_build
    meanwhile = "the serving build and exact search" if status.current_build else "exact search"
    return (
        f"Build #{running.id} is running ({running.done} of {running.total} photos embedded): searches use "
        f"{meanwhile} meanwhile, and switch to it when it is published."
    )


def _fresh(status: IndexStatus, now: datetime) -> str:
    text = (
        f"{_photos(status.fresh, 'is', 'are')} searchable now and will be folded into the next build "
        f"(a build is requested when {rebuild_fresh_threshold(status.current_build.vectors)} wait"
    )
    after = settings.SEARCH_FOLD_IN_AFTER_SECONDS
    if after:
        text += f", or once one has waited {timesince(now - timedelta(seconds=after), now)}"
        if status.fresh_since is not None:
            text += f"; the first has waited {timesince(status.fresh_since, now)}"
    return text + ")."


def _switching_models(status: IndexStatus) -> bool:
    """The serving build is another model's (also while the build under the current one runs)."""
    return status.current_build is not None and not status.current_build.fingerprint_matches


def _same_model_serves(status: IndexStatus) -> bool:
    return status.current_build is not None and status.current_build.fingerprint_matches


def _photos(count: int, singular_verb: str = "", plural_verb: str = "") -> str:
    if count == 1:
        return f"1 photo {singular_verb}".rstrip()
    return f"{count} photos {plural_verb}".rstrip()


def _pronoun(count: int) -> str:
    return "it" if count == 1 else "they"
