"""Near-duplicate photos across the catalog, and refusal of flagged pictures on every entry point."""

import io

import pytest
from django.core.files.base import ContentFile
from PIL import Image, ImageOps

from catalog.models import FlaggedImage, ProductImage
from catalog.services import ImageRejected, product_image_create
from catalog.services.moderation import (
    flagged_image_create,
    flagged_image_matches,
    near_duplicate_groups,
    phash_distance,
)


def _variant(data: bytes, *, scale: float = 1.0, quality: int | None = None, mirror: bool = False) -> bytes:
    """A re-saved copy of a photo: resized, recompressed as JPEG, or mirrored."""
    with Image.open(io.BytesIO(data)) as picture:
        picture = picture.convert("RGB")
        if scale != 1.0:
            picture = picture.resize((int(picture.width * scale), int(picture.height * scale)))
        if mirror:
            picture = ImageOps.mirror(picture)
        buf = io.BytesIO()
        picture.save(buf, "JPEG", quality=quality or 92)
        return buf.getvalue()


def _add(product, data: bytes, name: str = "photo.jpg") -> ProductImage:
    return product_image_create(product=product, file=ContentFile(data, name=name)).image


def _group_skus(groups) -> list[set[str]]:
    return [{image.product.sku for image in group.images} for group in groups]


@pytest.mark.django_db
def test_resized_and_recompressed_copies_group_together(make_product, photo_bytes):
    hammer = photo_bytes("hammer1.webp")
    _add(make_product("ORIG"), hammer, "hammer1.webp")
    _add(make_product("SMALL"), _variant(hammer, scale=0.4))
    _add(make_product("JPEG"), _variant(hammer, quality=35))
    for name in ("hammer2.webp", "cup.webp", "chair.webp", "apple.jpg", "orange.jpg"):
        _add(make_product(name), photo_bytes(name), name)

    groups = near_duplicate_groups()

    assert _group_skus(groups) == [{"ORIG", "SMALL", "JPEG"}]
    assert groups[0].reasons == {"phash"}
    assert [p.sku for p in groups[0].products] == ["ORIG", "SMALL", "JPEG"]


@pytest.mark.django_db
def test_distance_threshold_controls_grouping(make_product, photo_bytes):
    _add(make_product("A"), photo_bytes("cup.webp"))
    _add(make_product("B"), photo_bytes("box_in_scene.png"))  # 20 bits apart: the closest real pair

    assert near_duplicate_groups(max_distance=6) == []
    assert _group_skus(near_duplicate_groups(max_distance=64)) == [{"A", "B"}]


@pytest.mark.django_db
@pytest.mark.slow
def test_mirrored_copy_is_grouped_by_stored_embeddings(
    make_product, photo_bytes, django_capture_on_commit_callbacks
):
    hammer = photo_bytes("hammer1.webp")
    mirrored = _variant(hammer, mirror=True)
    assert phash_distance(_phash(hammer), _phash(mirrored)) > 6  # the perceptual hash misses it

    with django_capture_on_commit_callbacks(execute=True):  # embeddings are computed after commit
        _add(make_product("ORIG"), hammer)
        _add(make_product("MIRROR"), mirrored)
        _add(make_product("CUP"), photo_bytes("cup.webp"))

    groups = near_duplicate_groups()

    assert _group_skus(groups) == [{"ORIG", "MIRROR"}]
    assert groups[0].reasons == {"embedding"}


def _phash(data: bytes) -> str:
    from catalog.services import decode_photo

    return decode_photo(data).phash


@pytest.mark.django_db
def test_upload_of_near_duplicate_warns_with_the_other_product(make_product, photo_bytes):
    _add(make_product("HAM-1", name="Claw hammer"), photo_bytes("hammer1.webp"))

    result = product_image_create(
        product=make_product("HAM-2"), file=ContentFile(_variant(photo_bytes("hammer1.webp"), scale=0.5))
    )

    assert result.created
    assert len(result.warnings) == 1
    assert result.warnings[0].message == "Looks like a photo of Claw hammer (SKU HAM-1)"
    assert result.warnings[0].product_id == ProductImage.objects.get(product__sku="HAM-1").product_id


@pytest.mark.django_db
def test_flagged_picture_is_refused_exactly_and_as_a_recompressed_copy(product, photo_bytes, settings):
    settings.CATALOG_FLAGGED_MIN_SIMILARITY = 2.0  # no embedding match possible: hashes alone decide
    flagged = flagged_image_create(
        file=ContentFile(photo_bytes("pan.webp"), name="pan.webp"), reason="stolen photo"
    )
    assert flagged.sha256 and flagged.phash and flagged.image.name

    for data in (photo_bytes("pan.webp"), _variant(photo_bytes("pan.webp"), quality=40, scale=0.7)):
        with pytest.raises(ImageRejected, match="not allowed in the shop: stolen photo"):
            product_image_create(product=product, file=ContentFile(data))
    assert not ProductImage.objects.exists()
    _add(product, photo_bytes("cup.webp"))  # other pictures still go through


@pytest.mark.django_db
@pytest.mark.slow
def test_flagged_picture_is_refused_by_embedding_when_mirrored(
    product, photo_bytes, django_capture_on_commit_callbacks
):
    orange = photo_bytes("orange.jpg")
    with django_capture_on_commit_callbacks(execute=True):  # search embeds it once the flag commits
        flagged = flagged_image_create(file=ContentFile(orange), reason="competitor's photo")
    flagged.refresh_from_db()
    mirrored = _variant(orange, mirror=True)
    assert flagged.fingerprint and flagged.vector
    assert phash_distance(flagged.phash, _phash(mirrored)) > 6

    with pytest.raises(ImageRejected, match="competitor's photo"):
        product_image_create(product=product, file=ContentFile(mirrored))
    assert _add(product, photo_bytes("apple.jpg")).pk  # a different fruit is fine


@pytest.mark.django_db
def test_flagging_needs_a_reason_and_a_readable_picture(photo_bytes):
    with pytest.raises(ImageRejected, match="why"):
        flagged_image_create(file=ContentFile(photo_bytes("cup.webp")), reason=" ")
    with pytest.raises(ImageRejected, match="not an image"):
        flagged_image_create(file=ContentFile(b"hello" * 100), reason="bad")
    assert not FlaggedImage.objects.exists()


@pytest.mark.django_db
def test_photos_accepted_before_flagging_are_found(make_product, photo_bytes, settings):
    settings.CATALOG_FLAGGED_MIN_SIMILARITY = 2.0
    pan = _add(make_product("PAN"), photo_bytes("pan.webp"))
    copy = _add(make_product("COPY"), _variant(photo_bytes("pan.webp"), scale=0.5))
    _add(make_product("CUP"), photo_bytes("cup.webp"))

    flagged = flagged_image_create(file=ContentFile(photo_bytes("pan.webp")), reason="stolen")

    assert {image.pk for image in flagged_image_matches(flagged=flagged)} == {pan.pk, copy.pk}


@pytest.mark.django_db
@pytest.mark.slow
def test_picture_flagged_while_no_model_was_available_is_embedded_later(product, photo_bytes, monkeypatch):
    import search.services.moderation as search_moderation

    orange = photo_bytes("orange.jpg")
    with monkeypatch.context() as patch:
        patch.setattr(search_moderation, "_screening_model", lambda: None)  # e.g. the model failed to load
        flagged = flagged_image_create(file=ContentFile(orange), reason="competitor's photo")
        assert search_moderation.flagged_image_vectors_refresh() == 0
    assert not flagged.vector

    with pytest.raises(ImageRejected, match="competitor's photo"):  # the screen embeds it on demand
        product_image_create(product=product, file=ContentFile(_variant(orange, mirror=True)))

    # The screen ran outside the upload's transaction: the vector it computed was kept.
    flagged.refresh_from_db()
    assert flagged.fingerprint and flagged.vector
    assert search_moderation.flagged_image_vectors_refresh() == 0
