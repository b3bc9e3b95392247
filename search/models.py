"""Search state kept in the database: one embedding per (image, model fingerprint) and the index builds."""

from django.db import models
from django.db.models import Q


class ImageEmbedding(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    image = models.ForeignKey("catalog.ProductImage", related_name="embeddings", on_delete=models.CASCADE)
    fingerprint = models.CharField(max_length=128, db_index=True)
    # The image content the vector was computed from; a changed photo gets a new vector.
    content_sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    vector = models.BinaryField(null=True, blank=True)  # float32, L2-normalised, little-endian
    dim = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "fingerprint"], name="embedding_unique_image_model"),
            models.CheckConstraint(
                condition=~Q(status="done") | Q(vector__isnull=False), name="embedding_done_has_vector"
            ),
        ]

    def __str__(self) -> str:
        return f"embedding image={self.image_id} {self.status}"


class IndexBuild(models.Model):
    """One index build: progress for the admin and API, and where the published files are."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    fingerprint = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    vectors = models.PositiveIntegerField(default=0)
    dim = models.PositiveIntegerField(default=0)
    params = models.JSONField(default=dict, blank=True)
    version = models.CharField(max_length=64, blank=True)  # directory name of the published build
    size_bytes = models.BigIntegerField(default=0)
    # The newest embedding update included: later ones are searched exactly until the next build.
    embeddings_until = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    # When a build_index task was last sent for it: a queued build with no task behind it is sent again.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # The lease of the worker running it (shop_search.leases): a stale heartbeat means the worker was lost.
    lease_owner = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"build #{self.pk} {self.status}"


class RemovedImage(models.Model):
    """A deleted photo, remembered so vector stores can drop its vector by looking only at what changed
    (search.services.vector_sync). Written in the deleting transaction; pruned after
    SEARCH_REMOVALS_KEEP_SECONDS (a store that looked longer ago than that starts over)."""

    image_id = models.BigIntegerField()  # not a foreign key: the photo is gone
    removed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"removed image {self.image_id}"
