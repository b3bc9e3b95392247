"""Flagged pictures, categories and the import job list."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from catalog.models import Category, FlaggedImage, ImportJob
from catalog.services import ImageRejected, decode_photo, read_limited
from catalog.services.moderation import flagged_image_create
from catalog.thumbnails import thumbnail_url

THUMB_SIZE = 128


class FlaggedImageAddForm(forms.ModelForm):
    upload = forms.FileField(
        label="Picture", help_text="Uploads that look like this picture will be refused."
    )

    class Meta:
        model = FlaggedImage
        fields = ["reason"]

    def clean_upload(self) -> UploadedFile:
        upload = self.cleaned_data["upload"]
        try:
            decode_photo(read_limited(upload))
        except ImageRejected as exc:
            raise forms.ValidationError(exc.messages, code="bad_picture") from exc
        return upload


@admin.register(FlaggedImage)
class FlaggedImageAdmin(admin.ModelAdmin):
    list_display = ("thumbnail", "reason", "created_at", "matched_by")
    search_fields = ("reason",)
    readonly_fields = ("thumbnail", "sha256", "phash", "fingerprint", "created_at")

    def get_form(self, request: HttpRequest, obj: FlaggedImage | None = None, change: bool = False, **kwargs):
        if obj is None:
            kwargs["form"] = FlaggedImageAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: FlaggedImage | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("upload", "reason")
        return ("thumbnail", "reason", "sha256", "phash", "fingerprint", "created_at")

    def save_model(self, request: HttpRequest, obj: FlaggedImage, form, change: bool) -> None:
        if change:
            obj.save(update_fields=["reason"])
            return
        # The service computes the hashes (and announces the picture for search's model); the admin
        # keeps working with its row.
        created = flagged_image_create(file=form.cleaned_data["upload"], reason=obj.reason)
        for model_field in FlaggedImage._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(created, model_field.attname))
        obj._state.adding = False

    @admin.display(description="Picture")
    def thumbnail(self, flagged: FlaggedImage) -> str:
        if not flagged.pk or not flagged.sha256:
            return "—"
        # thumbnail_url needs only .image and .sha256, which a flagged picture has too.
        return format_html(
            '<img src="{}" class="admin-extra-thumb" alt="">', thumbnail_url(flagged, THUMB_SIZE)
        )

    @admin.display(description="Matched by")
    def matched_by(self, flagged: FlaggedImage) -> str:
        return "hash + embedding" if flagged.vector else "hash only"


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "parent", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    list_select_related = ("parent",)


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    """Read-only history; the live page of a job is under the product list."""

    list_display = ("__str__", "status", "done", "total", "created", "failed", "created_at", "progress_link")
    list_filter = ("status",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Progress")
    def progress_link(self, job: ImportJob) -> str:
        return format_html('<a href="{}">open</a>', reverse("admin:catalog_importjob_page", args=[job.pk]))
