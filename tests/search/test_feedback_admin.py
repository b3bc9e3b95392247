"""Shopper feedback in the admin (list, confirm, reject, who may), the labelled examples confirmed
feedback gives (confirmed_feedback_pairs), and how long its photos are kept."""

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from search.models import SearchFeedback
from search.selectors import confirmed_feedback_pairs
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:search_searchfeedback_changelist")


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "teal").save(buffer, format="JPEG")
    return buffer.getvalue()


def feedback(product=None, *, photo: bool = True, verdict: str = "this_one", **fields) -> SearchFeedback:
    """A row as feedback_record leaves it, with its photo stored under feedback/ when `photo`."""
    sha = hashlib.sha256(f"{SearchFeedback.objects.count()}".encode()).hexdigest()
    name = ""
    if photo:
        name = default_storage.save(f"feedback/{sha[:2]}/{sha}.jpg", ContentFile(jpeg()))
    values = {"rank": 1, "score": 0.9, "crop": [0.1, 0.2, 0.5, 0.5], "fingerprint": "fp"} | fields
    return SearchFeedback.objects.create(
        product=product or ProductFactory(),
        verdict=verdict,
        query_key=sha,
        photo_sha256=sha,
        photo=name,
        **values,
    )


def reviewer(**traits):
    names = ["search.view_searchfeedback", "search.change_searchfeedback"]
    return UserFactory(permissions=names, **{"staff": True, **traits})


def act(client, action: str, *rows: SearchFeedback):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [row.pk for row in rows]})


def test_confirming_this_one_makes_a_labelled_example(client):
    row = feedback()
    user = reviewer()
    client.force_login(user)
    assert confirmed_feedback_pairs() == []

    response = act(client, "confirm", row)

    assert response.status_code == 302
    [pair] = confirmed_feedback_pairs()
    photo, product_id = pair  # the pair the self-test consumes
    assert (photo, product_id) == (row.photo.name, row.product_id)
    assert pair.crop == (0.1, 0.2, 0.5, 0.5) and pair.fingerprint == "fp"
    with pair.open() as kept:
        assert Image.open(kept).format == "JPEG"
    row.refresh_from_db()
    assert row.reviewed_by == user and row.reviewed_at is not None


def test_rejected_photo_less_hidden_and_negative_feedback_are_no_such_example(client):
    client.force_login(reviewer())
    rejected, no_photo, negative = feedback(), feedback(photo=False), feedback(verdict="not_this")
    hidden = feedback(ProductFactory(is_active=False))
    act(client, "reject", rejected)
    act(client, "confirm", no_photo, negative, hidden)

    assert confirmed_feedback_pairs() == []
    assert [pair.feedback_id for pair in confirmed_feedback_pairs(verdict="not_this")] == [negative.pk]


def test_the_list_shows_both_photos_and_filters(client):
    row = feedback(ProductFactory(name="Blue mug", photos=["cup.webp"]))
    feedback(photo=False)
    client.force_login(reviewer())

    html = client.get(CHANGELIST).content.decode()

    assert row.photo.url in html and "not kept" in html  # the query photo, or why there is none
    assert "/media/thumbs/" in html and "Blue mug" in html  # next to the product's photo
    assert "left:10.00%" in html  # the part of the photo that was searched, outlined
    assert "?verdict__exact=this_one" in html and "?review__exact=pending" in html
    assert "Confirm: the shopper was right" in html
    assert client.get(CHANGELIST, {"verdict__exact": "not_this"}).context["cl"].result_count == 0


def test_non_staff_and_staff_without_the_permission_cannot_review(client):
    row = feedback()
    client.force_login(reviewer(is_staff=False))  # the permissions, but no admin access
    response = act(client, "confirm", row)
    assert response.status_code == 302 and "/login/" in response["Location"]

    client.force_login(UserFactory(staff=True))  # admin access, no feedback permission
    assert client.get(CHANGELIST).status_code == 403
    assert act(client, "confirm", row).status_code == 403

    client.force_login(UserFactory(staff=True, permissions=["search.view_searchfeedback"]))
    assert "Confirm: the shopper was right" not in client.get(CHANGELIST).content.decode()
    act(client, "confirm", row)  # not offered to a viewer: nothing happens

    row.refresh_from_db()
    assert row.review == SearchFeedback.Review.PENDING and confirmed_feedback_pairs() == []


def test_nobody_adds_feedback_by_hand(client):
    client.force_login(UserFactory(superuser=True))
    assert client.get(reverse("admin:search_searchfeedback_add")).status_code == 403


def test_purge_forgets_feedback_photos_older_than_retention_but_keeps_the_verdicts(settings):
    settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS = 7
    old, new = feedback(review="confirmed"), feedback(review="confirmed")
    SearchFeedback.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    out = io.StringIO()

    call_command("purge_query_photos", stdout=out)

    assert "Deleted 1 feedback photo" in out.getvalue()
    old.refresh_from_db()
    assert old.photo.name == "" and old.verdict == "this_one"  # the row stays, without its photo
    assert not default_storage.exists(f"feedback/{old.photo_sha256[:2]}/{old.photo_sha256}.jpg")
    assert [pair.feedback_id for pair in confirmed_feedback_pairs()] == [new.pk]

    settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS = 0  # retention off: no shopper photo is kept at all
    call_command("purge_query_photos", stdout=out)
    assert not default_storage.exists(new.photo.name) and confirmed_feedback_pairs() == []


def test_deleting_feedback_deletes_its_photo_once_unused(django_capture_on_commit_callbacks):
    first = feedback()
    second = feedback(photo=False)
    SearchFeedback.objects.filter(pk=second.pk).update(photo=first.photo.name)  # the same query photo

    with django_capture_on_commit_callbacks(execute=True):
        first.delete()
    assert default_storage.exists(first.photo.name)  # still the photo of the second

    with django_capture_on_commit_callbacks(execute=True):
        SearchFeedback.objects.get(pk=second.pk).delete()
    assert not default_storage.exists(first.photo.name)
