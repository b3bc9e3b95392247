"""The relevance self-test page: start a run, watch its progress, read its figures and hardest products
(side by side with what they were taken for), the trend, and runs on the same variants. It lives under
the RelevanceRun admin's URLs; the run itself is search.services.relevance, the same as the command."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse

from catalog.models import ProductImage
from catalog.thumbnails import thumbnail_url
from search import services
from search.models import RelevanceRun
from search.relevance.variants import KIND_LABELS, KINDS
from search.services.relevance import DEFAULT_SEED, MAX_PHOTOS, MAX_SEED
from search.services.relevance_report import (
    relevance_figure_rows,
    relevance_history,
    relevance_latest,
    relevance_method,
    relevance_same_variants,
)

THUMB_SIZE = 160


class RelevanceStartForm(forms.Form):
    photos = forms.IntegerField(min_value=1, max_value=MAX_PHOTOS, label="Catalog photos")
    seed = forms.IntegerField(min_value=0, max_value=MAX_SEED, initial=DEFAULT_SEED, label="Seed")
    kinds = forms.MultipleChoiceField(
        choices=[(kind, KIND_LABELS[kind]) for kind in KINDS],
        initial=list(KINDS),
        widget=forms.CheckboxSelectMultiple,
        label="Variants",
    )


@dataclass(frozen=True)
class HardRow:
    """A hardest product for the page: the variant searched, the product's photo, what came first."""

    row: dict
    variant: str  # data: URL kept with the run
    product_thumb: str
    product_url: str
    confused_thumb: str
    confused_url: str


@admin.register(RelevanceRun)
class RelevanceRunAdmin(admin.ModelAdmin):
    exclude = ("outcomes", "hardest", "image_ids")  # a run's own page (read-only) shows the rest

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs are started from the report page, never typed in

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        own = [
            path("report/", wrap(self.report_view), name="search_relevance"),
            path("report/start/", wrap(self.start_view), name="search_relevance_start"),
            path("report/<int:run_id>/status/", wrap(self.status_view), name="search_relevance_status"),
            path("report/<int:run_id>/cancel/", wrap(self.cancel_view), name="search_relevance_cancel"),
        ]
        return own + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        self._require_view(request)
        return HttpResponseRedirect(reverse("admin:search_relevance"))  # the report holds the history

    def report_view(self, request: HttpRequest, form: RelevanceStartForm | None = None) -> HttpResponse:
        self._require_view(request)
        run = self._selected_run(request)
        active = RelevanceRun.objects.filter(
            status__in=[RelevanceRun.Status.QUEUED, RelevanceRun.Status.RUNNING]
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Relevance self-test",
            "opts": self.model._meta,
            "run": run,
            "active": active.first(),
            "form": form or RelevanceStartForm(initial={"photos": settings.SEARCH_RELEVANCE_PHOTOS}),
            "can_start": self._can_start(request),
            "method": relevance_method(run) if run else [],
            "rows": relevance_figure_rows(run) if run else [],
            "hardest": _hard_rows(run) if run else [],
            "same_variants": list(relevance_same_variants(run)[:10]) if run else [],
            "history": list(relevance_history()),
        }
        return render(request, "admin/search/relevance.html", context, status=400 if form else 200)

    def start_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self._can_start(request):
            raise PermissionDenied
        form = RelevanceStartForm(request.POST)
        if not form.is_valid():
            return self.report_view(request, form=form)
        data = form.cleaned_data
        try:
            run = services.relevance_run_request(
                photos=data["photos"], seed=data["seed"], kinds=data["kinds"]
            )
        except services.RelevanceRunRefused as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(reverse("admin:search_relevance"))
        messages.success(request, f"Self-test #{run.pk} queued: it starts when a worker picks it up.")
        return HttpResponseRedirect(f"{reverse('admin:search_relevance')}?run={run.pk}")

    def status_view(self, request: HttpRequest, run_id: int) -> JsonResponse:
        self._require_view(request)
        run = get_object_or_404(RelevanceRun.objects.defer("outcomes", "hardest"), pk=run_id)
        return JsonResponse(
            {
                "id": run.pk,
                "status": run.status,
                "finished": run.finished,
                "done": run.done,
                "total": run.total,
                "percent": run.percent,
            }
        )

    def cancel_view(self, request: HttpRequest, run_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self._can_start(request):
            raise PermissionDenied
        run = services.relevance_run_cancel(run_id=run_id)
        if run is None:
            messages.error(request, f"There is no self-test #{run_id}.")
            return HttpResponseRedirect(reverse("admin:search_relevance"))
        messages.success(request, f"Self-test #{run.pk}: {_cancel_note(run)}")
        return HttpResponseRedirect(f"{reverse('admin:search_relevance')}?run={run.pk}")

    def _selected_run(self, request: HttpRequest) -> RelevanceRun | None:
        wanted = request.GET.get("run", "")
        if not wanted:
            return relevance_latest()
        if not wanted.isdigit():
            return None
        return RelevanceRun.objects.filter(pk=int(wanted)).first()

    def _can_start(self, request: HttpRequest) -> bool:
        return request.user.has_perm("search.add_relevancerun")

    def _require_view(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied


def _cancel_note(run: RelevanceRun) -> str:
    if run.status == RelevanceRun.Status.CANCELLED:
        return "cancelled."
    if run.status == RelevanceRun.Status.RUNNING:
        return "stops after the search it is running; the figures will cover what was searched."
    return f"it is {run.status}, nothing to cancel."


def _hard_rows(run: RelevanceRun) -> list[HardRow]:
    wanted = {row["worst_image_id"] for row in run.hardest} | {
        row["confused_image_id"] for row in run.hardest if row.get("confused_image_id")
    }
    images = {
        image.pk: image for image in ProductImage.objects.filter(pk__in=wanted).select_related("product")
    }
    rows = []
    for row in run.hardest:
        own, other = images.get(row["worst_image_id"]), images.get(row.get("confused_image_id"))
        rows.append(
            HardRow(
                row=row,
                variant=row.get("variant_thumbnail", ""),
                product_thumb=thumbnail_url(own, THUMB_SIZE) if own else "",
                product_url=_change_url(row["product_id"]) if own else "",
                confused_thumb=thumbnail_url(other, THUMB_SIZE) if other else "",
                confused_url=_change_url(row["confused_with"]) if other else "",
            )
        )
    return rows


def _change_url(product_id: int) -> str:
    return reverse("admin:catalog_product_change", args=[product_id])
