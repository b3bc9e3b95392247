"""Extra admin pages under the product list: bulk import and its job page, near-duplicates.

They are wrapped by admin_site.admin_view (staff login) in ProductAdmin.get_urls; each checks the
model permission it needs. Views parse and format; catalog.tasks / services do the work.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from catalog.archives import UnsafeArchive, archive_check
from catalog.models import ImportJob, Product, ProductImage
from catalog.services.moderation import near_duplicate_groups
from catalog.tasks import import_job_create
from catalog.thumbnails import thumbnail_url

CARD_THUMB_SIZE = 160
MAX_CSV_BYTES = 20 * 1024 * 1024
DUPLICATE_REASONS = {
    "phash": "same picture (perceptual hash)",
    "embedding": "near-identical for the image model",
}


def require_permission(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def admin_context(request: HttpRequest, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, "opts": Product._meta, **extra}


# --- bulk import ------------------------------------------------------------------------------


class ImportForm(forms.Form):
    archive = forms.FileField(
        label="ZIP of photos",
        help_text="Photos named in the CSV, or (without a CSV) folders of photos: folders become categories.",
    )
    csv_file = forms.FileField(
        label="CSV file",
        required=False,
        help_text="Columns: sku,name,category,price,description,image (image = path inside the ZIP).",
    )

    def clean_archive(self) -> UploadedFile:
        archive = self.cleaned_data["archive"]
        try:
            archive_check(archive)  # names and declared sizes now; the task checks again while extracting
        except UnsafeArchive as exc:
            raise forms.ValidationError(str(exc), code="unsafe_archive") from exc
        return archive

    def clean_csv_file(self) -> UploadedFile | None:
        csv_file = self.cleaned_data.get("csv_file")
        if csv_file is None:
            return None
        if not csv_file.name.lower().endswith((".csv", ".txt")):
            raise forms.ValidationError("The product list must be a .csv file.", code="not_csv")
        if csv_file.size > MAX_CSV_BYTES:
            raise forms.ValidationError("The CSV file is larger than 20 MB.", code="csv_too_big")
        return csv_file


def import_start(request: HttpRequest) -> HttpResponse:
    require_permission(request, "catalog.add_product")
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = import_job_create(archive=form.cleaned_data["archive"], csv_file=form.cleaned_data["csv_file"])
        messages.success(request, f"Import #{job.pk} queued.")
        return HttpResponseRedirect(reverse("admin:catalog_importjob_page", args=[job.pk]))
    context = admin_context(
        request,
        "Bulk import",
        form=form,
        recent=ImportJob.objects.all()[:10],
        max_files=settings.CATALOG_IMPORT_MAX_FILES,
        max_mb=settings.CATALOG_IMPORT_MAX_UNPACKED_BYTES // 1_048_576,
    )
    return render(request, "admin/catalog/product/import.html", context)


def import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    require_permission(request, "catalog.view_product")
    job = get_object_or_404(ImportJob, pk=job_id)
    context = admin_context(request, f"Import #{job.pk}", job=job, state=import_job_state(job))
    return render(request, "admin/catalog/product/import_job.html", context)


def import_job_status(request: HttpRequest, job_id: int) -> JsonResponse:
    require_permission(request, "catalog.view_product")
    return JsonResponse(import_job_state(get_object_or_404(ImportJob, pk=job_id)))


def import_job_state(job: ImportJob) -> dict:
    """What the job page shows and polls; rows that are neither created, unchanged nor failed were updated."""
    finished = job.status in (ImportJob.Status.SUCCEEDED, ImportJob.Status.FAILED)
    errors = [error for error in job.errors if not error.get("warning")]
    return {
        "id": job.pk,
        "status": job.status,
        "finished": finished,
        "total": job.total,
        "done": job.done,
        "percent": round(100 * job.done / job.total) if job.total else (100 if finished else 0),
        "created": job.created,
        "updated": max(job.done - job.created - job.unchanged - job.failed, 0) if finished else 0,
        "unchanged": job.unchanged,
        "failed": job.failed,
        "errors": errors,
        "warnings": [error for error in job.errors if error.get("warning")],
        "error": job.error,
    }


# --- near-duplicates and photo search ---------------------------------------------------------


@dataclass(frozen=True)
class PhotoCard:
    product: Product
    image: ProductImage
    thumbnail: str
    change_url: str
    score: int | None = None  # percent, for search hits


def photo_card(image: ProductImage, score: float | None = None) -> PhotoCard:
    return PhotoCard(
        product=image.product,
        image=image,
        thumbnail=thumbnail_url(image, CARD_THUMB_SIZE),
        change_url=reverse("admin:catalog_product_change", args=[image.product_id]),
        score=None if score is None else round(score * 100),
    )


def duplicates(request: HttpRequest) -> HttpResponse:
    require_permission(request, "catalog.view_product")
    groups = [
        {
            "cards": [photo_card(image) for image in group.images],
            "reasons": [DUPLICATE_REASONS.get(reason, reason) for reason in sorted(group.reasons)],
        }
        for group in near_duplicate_groups()
    ]
    return render(
        request,
        "admin/catalog/product/duplicates.html",
        admin_context(request, "Near-duplicate photos", groups=groups),
    )
