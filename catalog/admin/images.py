"""The product's photo inline: previews, editable order, and new photos stored through the service.

New photos never go through ModelForm.save: the service validates, hashes, stores content-addressed
and schedules embedding, exactly as the API and the import do. The form's clean() runs the same
checks first (decode, flagged refusal by hash) so a refused photo is an error on its row, not a lost
upload; screens that need an image model run once, in the service, and report as a message.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from catalog.hooks import PhotoWarning
from catalog.models import Product, ProductImage
from catalog.services import (
    ImageRejected,
    decode_photo,
    product_image_create,
    product_image_delete,
    read_limited,
)
from catalog.services.moderation import image_screen
from catalog.thumbnails import thumbnail_url

PREVIEW_SIZE = 160


class _NoUpload(forms.Widget):
    """Stored photos are not replaced in place (a new photo is a new row): show nothing to upload."""

    def render(self, name, value, attrs=None, renderer=None) -> str:
        return "—"


class ProductImageForm(forms.ModelForm):
    upload = forms.FileField(
        required=False, label="New photo", help_text="JPEG, PNG, WebP, GIF, BMP or TIFF."
    )
    display_order = forms.IntegerField(min_value=0, required=False, label="Order")

    class Meta:
        model = ProductImage
        fields = ["display_order"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["upload"].disabled = True
            self.fields["upload"].widget = _NoUpload()
        else:
            self.initial["display_order"] = None  # blank: the service appends the photo at the end

    def clean_display_order(self) -> int | None:
        value = self.cleaned_data["display_order"]
        if value is None and self.instance.pk:
            return self.instance.display_order
        return value

    def clean(self) -> dict:
        data = super().clean()
        if self.instance.pk:
            return data
        upload = data.get("upload")
        if upload is None:
            self.add_error("upload", "Choose a photo for the new row.")
            return data
        try:
            photo = decode_photo(read_limited(upload))
            # On the add page the product does not exist yet: every other product's photo counts then.
            product = self.instance.product if self.instance.product_id else None
            image_screen(sha256=photo.sha256, phash=photo.phash, product=product)
        except ImageRejected as exc:
            self.add_error("upload", exc)
        return data


class ProductImageInline(admin.StackedInline):
    # Stacked, not tabular: each field has its own <label> (a tabular row's inputs have none, which
    # screen readers and axe-core's "label" rule catch).
    model = ProductImage
    form = ProductImageForm
    extra = 1
    fields = ("preview", "upload", "display_order", "original_name", "dimensions")
    readonly_fields = ("preview", "original_name", "dimensions")
    ordering = ("display_order", "id")

    @admin.display(description="Photo")
    def preview(self, image: ProductImage) -> str:
        if not image.pk:
            return ""
        return format_html(
            '<a href="{}" target="_blank"><img src="{}" class="admin-extra-thumb admin-extra-thumb--large" '
            'alt="Photo {}"></a>',
            image.image.url,
            thumbnail_url(image, PREVIEW_SIZE),
            image.display_order,
        )

    @admin.display(description="Size")
    def dimensions(self, image: ProductImage) -> str:
        return f"{image.width} × {image.height}" if image.pk else ""


def image_formset_save(request: HttpRequest, formset: BaseInlineFormSet) -> None:
    """Apply the inline: deletions and order changes in place, new photos through product_image_create."""
    formset.save(commit=False)  # fills deleted_objects / changed_objects without writing new rows
    for image in formset.deleted_objects:
        product_image_delete(image=image)
    for image, _changed in formset.changed_objects:
        image.save(update_fields=["display_order", "updated_at"])
    for form in formset.extra_forms:
        upload = form.cleaned_data.get("upload") if form.has_changed() else None
        if upload is not None and not form.cleaned_data.get("DELETE"):
            _image_add(request, formset.instance, upload, form.cleaned_data.get("display_order"))


def _image_add(
    request: HttpRequest, product: Product, upload: UploadedFile, display_order: int | None
) -> None:
    try:
        result = product_image_create(
            product=product, file=upload, display_order=display_order, original_name=upload.name
        )
    except ValidationError as exc:  # e.g. flagged between the form check and now
        messages.error(request, f"{upload.name} was not added: {' '.join(exc.messages)}")
        return
    if not result.created:
        messages.info(request, f"{upload.name} is already a photo of this product; nothing was added.")
    for warning in result.warnings:
        messages.warning(request, warning_html(upload.name, warning))


def warning_html(upload_name: str, warning: PhotoWarning) -> str:
    """A duplicate warning with a link to the other product's admin page."""
    if warning.product_id is None:
        return format_html("{}: {}", upload_name, warning.message)
    url = reverse("admin:catalog_product_change", args=[warning.product_id])
    return format_html('{}: {}: <a href="{}">open that product</a>', upload_name, warning.message, url)
