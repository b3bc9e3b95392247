"""Search state kept in the database: one embedding per (image, model fingerprint) and the index builds."""

from django.conf import settings
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
    # directory name of the published build; a Milvus collection and its creation time (up to ~130)
    version = models.CharField(max_length=200, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    # The newest embedding update included: later ones are searched exactly until the next build.
    embeddings_until = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    # When an index_build_run task was last sent for it: a queued build with no task behind it is sent again.
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


class RelevanceRun(models.Model):
    """One relevance self-test: shopper-like variants of catalog photos searched like a shopper's photo.

    Kept per model fingerprint and date, so the merchant sees a trend; runs with the same ``variant_set``
    searched identical variants (same seed, photos, recipes and scenes) and compare models fairly."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # The model the shoppers' searches used during the run (the one that built the serving index).
    fingerprint = models.CharField(max_length=128, blank=True, db_index=True)
    model_name = models.CharField(max_length=200, blank=True)
    model_warning = models.TextField(blank=True)  # fallback or untrained, in the words the admin uses
    # How the variants were made: the seed, the sampled photos, the recipes and the scene photos.
    seed = models.PositiveIntegerField()
    photos_requested = models.PositiveIntegerField()
    kinds = models.JSONField(default=list)
    recipe_version = models.PositiveIntegerField(default=0)
    scenes = models.CharField(max_length=500, blank=True)
    variant_set = models.CharField(max_length=64, blank=True, db_index=True)
    # A trial before switching: the searches used this projection's model instead of the serving one.
    projection = models.ForeignKey(
        "search.AdaptedProjection",
        null=True,
        blank=True,
        related_name="trial_runs",
        on_delete=models.SET_NULL,
    )
    # Photos only of these products (e.g. a projection's held-out products); empty: the whole catalog.
    product_ids = models.JSONField(default=list, blank=True)
    catalog_photos = models.PositiveIntegerField(default=0)  # photos of active products when sampled
    image_ids = models.JSONField(default=list)  # the sample, in the order searched
    not_searchable = models.PositiveIntegerField(default=0)  # sampled photos without a vector of the model
    unreadable = models.PositiveIntegerField(default=0)  # sampled photos whose file could not be read
    # Progress (variants searched) and the figures; figures of a cancelled run cover what was searched.
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    r_at_1 = models.FloatField(null=True, blank=True)
    r_at_10 = models.FloatField(null=True, blank=True)
    category_p_at_10 = models.FloatField(null=True, blank=True)
    by_kind = models.JSONField(default=dict, blank=True)
    hardest = models.JSONField(default=list, blank=True)
    outcomes = models.JSONField(default=list, blank=True)  # one per variant (search.relevance.figures)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    lease_owner = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            # Two self-tests at once would share two CPU cores and slow each other (and the shop) down.
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="running"), name="relevance_one_running"
            ),
            models.CheckConstraint(
                condition=(Q(r_at_1__isnull=True) | Q(r_at_1__gte=0, r_at_1__lte=1))
                & (Q(r_at_10__isnull=True) | Q(r_at_10__gte=0, r_at_10__lte=1))
                & (Q(category_p_at_10__isnull=True) | Q(category_p_at_10__gte=0, category_p_at_10__lte=1)),
                name="relevance_figures_are_shares",
            ),
        ]

    def __str__(self) -> str:
        return f"relevance run #{self.pk} {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELLED)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


class SearchFeedback(models.Model):
    """A shopper's verdict on one hit of one search: "this one" or "not what I'm looking for".

    The search is identified by its query (the photo's sha256, the crop searched and the model), not by
    the shopper: no account, no IP, no cookie is kept. The photo itself is kept only while query-photo
    retention allows it (SEARCH_KEEP_QUERY_PHOTOS_DAYS). Staff review each row; confirmed "this one"
    rows with a photo are labelled examples (search.selectors.confirmed_feedback_pairs).
    """

    class Verdict(models.TextChoices):
        THIS_ONE = "this_one", "This one"
        NOT_THIS = "not_this", "Not what I'm looking for"

    class Review(models.TextChoices):
        PENDING = "pending", "To review"
        CONFIRMED = "confirmed", "Confirmed"
        REJECTED = "rejected", "Rejected"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    product = models.ForeignKey("catalog.Product", related_name="search_feedback", on_delete=models.CASCADE)
    # What was searched: one key per (photo, crop, model), so a repeated click updates its row.
    query_key = models.CharField(max_length=64)
    photo_sha256 = models.CharField(max_length=64, db_index=True)
    crop = models.JSONField(null=True, blank=True)  # [x, y, w, h] fractions; null: the whole photo
    fingerprint = models.CharField(max_length=128)
    rank = models.PositiveSmallIntegerField()  # 1 = the first hit, as the shopper saw it
    score = models.FloatField()
    photo = models.FileField(max_length=255, blank=True)  # a storage name under feedback/, or empty
    review = models.CharField(max_length=16, choices=Review.choices, default=Review.PENDING, db_index=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "shopper feedback"
        verbose_name_plural = "shopper feedback"
        constraints = [
            models.UniqueConstraint(fields=["query_key", "product"], name="feedback_one_per_query_product"),
            models.CheckConstraint(
                condition=Q(verdict__in=["this_one", "not_this"]), name="feedback_verdict"
            ),
            models.CheckConstraint(
                condition=Q(review__in=["pending", "confirmed", "rejected"]), name="feedback_review"
            ),
            models.CheckConstraint(condition=Q(rank__gte=1), name="feedback_rank_from_one"),
            models.CheckConstraint(condition=Q(score__gte=0, score__lte=1), name="feedback_score_0_1"),
        ]

    def __str__(self) -> str:
        return f"feedback #{self.pk} {self.verdict} product={self.product_id}"


class RemovedImage(models.Model):
    """A deleted photo, remembered so vector stores can drop its vector by looking only at what changed
    (search.services.vector_sync). Written in the deleting transaction; pruned after
    SEARCH_REMOVALS_KEEP_SECONDS (a store that looked longer ago than that starts over)."""

    image_id = models.BigIntegerField()  # not a foreign key: the photo is gone
    removed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"removed image {self.image_id}"


class AdaptedProjection(models.Model):
    """A catalog-adapted projection (search.embedding.adapt) trained by ``adapt_train``, with how it
    compared with the backbone on products it never saw. At most one is in use: then the model
    fingerprint includes it (search.embedding.projected) and every vector has its width. Switching is
    an explicit staff action (search.services.projections), offered only for a better one."""

    created_at = models.DateTimeField(auto_now_add=True)
    fingerprint = models.CharField(max_length=64, unique=True)  # weights, config and training-data version
    backbone_fingerprint = models.CharField(max_length=128)  # the model it was trained on and applies to
    in_dim = models.PositiveIntegerField()
    out_dim = models.PositiveIntegerField()
    data_version = models.CharField(max_length=64)
    weights = models.BinaryField()  # Projection.dumps(): in the database, so every machine has it
    # The held-out comparison (adapt_compare): figures before and after, the split, the verdict.
    comparison = models.JSONField(default=dict)
    held_out_product_ids = models.JSONField(default=list)
    better = models.BooleanField(default=False)
    verdict = models.TextField()
    in_use = models.BooleanField(default=False)
    switched_at = models.DateTimeField(null=True, blank=True)
    switched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("switch_adaptedprojection", "Can switch the search model to or from a projection")]
        constraints = [
            models.UniqueConstraint(
                fields=["in_use"], condition=Q(in_use=True), name="projection_one_in_use"
            ),
            models.CheckConstraint(
                condition=~Q(in_use=True) | Q(better=True), name="projection_in_use_is_better"
            ),
        ]

    def __str__(self) -> str:
        return f"projection #{self.pk} {self.fingerprint[:12]} ({self.out_dim} d)"
