"""What is sold: categories, products and their photos. Models hold data and constraints only;
writes go through catalog.services."""

from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage
from django.db import models
from django.db.models import Q
from django.urls import reverse

from shop_search.storage import StorageAlias


class Category(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, related_name="children", on_delete=models.PROTECT
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"
        constraints = [
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="category_not_own_parent"),
        ]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    sku = models.CharField("SKU", max_length=64, unique=True)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, blank=True)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    currency = models.CharField(max_length=3, default="EUR")
    category = models.ForeignKey(
        Category, null=True, blank=True, related_name="products", on_delete=models.SET_NULL
    )
    is_active = models.BooleanField("active", default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Indexed: vector stores look up the products changed since their last look on every refresh.
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
            models.CheckConstraint(condition=~Q(sku=""), name="product_sku_not_empty"),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="product_currency_iso_code"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"

    def get_absolute_url(self) -> str:
        return reverse("product-detail", kwargs={"pk": self.pk})

    @property
    def primary_image(self) -> "ProductImage | None":
        # Uses the prefetch cache when the caller prefetched images.
        images = list(self.images.all())
        return images[0] if images else None


def product_image_upload_to(instance: "ProductImage", filename: str) -> str:
    # Content-addressed names: the same photo is stored once per product, never overwritten.
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "img"
    return f"products/{instance.sha256[:2]}/{instance.sha256}.{ext}"


class ProductImage(models.Model):
    product = models.ForeignKey(Product, related_name="images", on_delete=models.CASCADE)
    image = models.ImageField(upload_to=product_image_upload_to, width_field="width", height_field="height")
    display_order = models.PositiveIntegerField(default=0)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, db_index=True)
    phash = models.CharField("perceptual hash", max_length=16, blank=True, db_index=True)
    original_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "sha256"], name="productimage_unique_content"),
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="productimage_sha256_hex"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} #{self.display_order}"

    @property
    def is_primary(self) -> bool:
        primary = self.product.primary_image
        return primary is not None and primary.pk == self.pk


class FlaggedImage(models.Model):
    """A picture the shop must never accept (copyrighted, banned). Uploads matching it are refused."""

    image = models.ImageField(upload_to="flagged/")
    reason = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64, db_index=True, blank=True)
    phash = models.CharField(max_length=16, blank=True, db_index=True)
    # Embedding of the flagged picture under the model that computed it (compared only within a model).
    fingerprint = models.CharField(max_length=128, blank=True)
    vector = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.reason


class ImportFilesStorage(FileSystemStorage):
    """Uploaded import files (the CSV and the ZIP) on this machine: private, under
    CATALOG_IMPORT_DIR/uploads, outside MEDIA_ROOT so no URL serves them (url() raises). The default
    backend of STORAGES["imports"]; with several machines that alias points at object storage
    (MEDIA_STORAGE=s3) or CATALOG_IMPORT_DIR at a folder the web and worker machines share."""

    def __init__(self) -> None:
        super().__init__(base_url=None)

    @property
    def base_location(self) -> str:  # read on every use: tests and deployments move the folder
        return str(Path(settings.CATALOG_IMPORT_DIR) / "uploads")

    @property
    def location(self) -> str:
        return str(Path(self.base_location).resolve())

    def url(self, name: str | None) -> str:
        raise ValueError("Import files are private: they have no URL.")


def import_files_storage() -> Storage:
    """STORAGES["imports"], looked up at each use (the field keeps this object for the process's life)."""
    return StorageAlias("imports")


class ImportJob(models.Model):
    """A bulk import run from the admin, executed by a Celery task; progress is polled from here."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    csv_file = models.FileField(upload_to="%Y/%m/", storage=import_files_storage, blank=True)
    archive = models.FileField(upload_to="%Y/%m/", storage=import_files_storage, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # [{"row": n, "reason": "..."}]
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When a run_import task was last sent for it: a queued job with no task behind it is sent again.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # The lease of the worker running it (shop_search.leases); a lost job is run again once, then failed.
    lease_owner = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.status})"
