"""The "Adapted projections" page: every projection ``adapt_train`` recorded, with its held-out comparison
and its self-test before and after; "Use this projection" only for a better one, "Back to the backbone",
and "Run its self-test". Views parse and format; search.services.projections does the switching."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse

from search import services
from search.embedder import SearchUnavailable, current_embedder
from search.models import AdaptedProjection
from search.services.projections import ProjectionRefused, projection_rows, projection_stop, projection_use

SWITCH_PERMISSION = "search.switch_adaptedprojection"


@admin.register(AdaptedProjection)
class AdaptedProjectionAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # trained by `manage.py adapt_train`, never typed in

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # switching is its own action, below

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # The one in use is the site's model: go back to the backbone first (that re-indexes).
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.in_use)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        own = [
            path("page/", wrap(self.page_view), name="search_projections"),
            path("page/<int:projection_id>/use/", wrap(self.use_view), name="search_projection_use"),
            path("page/backbone/", wrap(self.backbone_view), name="search_projection_stop"),
            path("page/<int:projection_id>/trial/", wrap(self.trial_view), name="search_projection_trial"),
        ]
        return own + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        self._require_view(request)
        return HttpResponseRedirect(reverse("admin:search_projections"))

    def page_view(self, request: HttpRequest) -> HttpResponse:
        self._require_view(request)
        try:
            model = current_embedder()
        except SearchUnavailable as exc:
            model, problem = None, str(exc)
        else:
            problem = ""
        context = {
            **self.admin_site.each_context(request),
            "title": "Adapted projections",
            "opts": self.model._meta,
            "rows": projection_rows(),
            "model": model,
            "model_problem": problem,
            "in_use": AdaptedProjection.objects.filter(in_use=True).defer("weights").first(),
            "can_switch": request.user.has_perm(SWITCH_PERMISSION),
            "can_test": request.user.has_perm("search.add_relevancerun"),
        }
        return render(request, "admin/search/projections.html", context)

    def use_view(self, request: HttpRequest, projection_id: int) -> HttpResponse:
        if (refused := _post_with(request, SWITCH_PERMISSION)) is not None:
            return refused
        try:
            projection, build = projection_use(projection_id=projection_id, user=request.user)
        except ProjectionRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"Projection #{projection.pk} is in use. Build #{build.pk} re-embeds the catalog in the "
                "background; searches keep using the current index until the new one is published.",
            )
        return HttpResponseRedirect(reverse("admin:search_projections"))

    def backbone_view(self, request: HttpRequest) -> HttpResponse:
        if (refused := _post_with(request, SWITCH_PERMISSION)) is not None:
            return refused
        try:
            projection, build = projection_stop(user=request.user)
        except ProjectionRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"Back to the backbone (projection #{projection.pk} is no longer used). Build #{build.pk} "
                "indexes the catalog under it in the background.",
            )
        return HttpResponseRedirect(reverse("admin:search_projections"))

    def trial_view(self, request: HttpRequest, projection_id: int) -> HttpResponse:
        if (refused := _post_with(request, "search.add_relevancerun")) is not None:
            return refused
        projection = AdaptedProjection.objects.filter(pk=projection_id).defer("weights").first()
        if projection is None:
            messages.error(request, f"There is no projection #{projection_id}.")
            return HttpResponseRedirect(reverse("admin:search_projections"))
        try:
            run = services.relevance_run_request(projection=projection)
        except services.RelevanceRunRefused as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(reverse("admin:search_projections"))
        messages.success(
            request,
            f"Self-test #{run.pk} of projection #{projection.pk} queued (its held-out products only); the "
            "current model's run on the same variants follows it.",
        )
        return HttpResponseRedirect(f"{reverse('admin:search_relevance')}?run={run.pk}")

    def _require_view(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied


def _post_with(request: HttpRequest, permission: str) -> HttpResponse | None:
    """None for a POST by someone with the permission; otherwise the refusal (405, or 403 raised)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not request.user.has_perm(permission):
        raise PermissionDenied
    return None
