"""manage.py adapt_train on the seven-product relevance shop: both rows printed, held-out products
never trained on, the features cached, bad options refused with a reason."""

from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from search.embedding.adapt import projection_load
from search.models import AdaptedProjection
from search.services.adapt import CATALOG, adapt_features

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


def train(*args: str) -> str:
    out = StringIO()
    call_command("adapt_train", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_command_prints_backbone_and_projection_rows_and_a_verdict(relevance_shop, var_dir):
    out = train("--variants", "1", "--dim", "16", "--max-epochs", "3")

    assert "Trained on 5 products (10 photos and variants)" in out and "held out 2 products." in out
    assert "Training never saw the held-out products' photos or variants" in out
    backbone = next(line for line in out.splitlines() if line.startswith("  backbone "))
    projected = next(line for line in out.splitlines() if line.startswith("  projected (16 d) "))
    assert backbone.split()[-1] == projected.split()[-1] == "2"  # one variant of each held-out photo
    assert "The site's model is unchanged" in out
    (recorded,) = AdaptedProjection.objects.all()  # better or not: listed in the admin, never in use
    assert f"Recorded as projection #{recorded.pk}." in out and not recorded.in_use
    assert recorded.better == ("is better on the held-out products" in out) and recorded.out_dim == 16
    assert len(recorded.held_out_product_ids) == 2 and recorded.comparison["held_out_products"] == 2
    saved = list((var_dir / "adapt").glob("projection-*.npz"))
    if "is better on the held-out products" in out:
        (path,) = saved
        assert projection_load(path).fingerprint in out
    else:
        assert "is NOT better on the held-out products" in out and "No file kept." in out and not saved
    # Another split reuses the features: the backbone does not run again.
    again = train("--variants", "1", "--dim", "16", "--max-epochs", "3", "--split-seed", "3")
    assert "(cached)" in again and "held out 2 products." in again


def test_by_default_the_projection_is_a_full_map_as_wide_as_the_backbone(relevance_shop, var_dir):
    """No --dim: the map learnt from the backbone itself (start "identity"), so a switch to it keeps
    the index's width; --dim asks for the first slice's smaller kind (the test above)."""
    out = train("--variants", "1", "--max-epochs", "2")

    (recorded,) = AdaptedProjection.objects.all()
    assert recorded.out_dim == recorded.in_dim == 1280
    assert any(line.startswith("  projected (1280 d) ") for line in out.splitlines())


def test_features_hold_each_photo_and_its_variants_once(relevance_shop, var_dir):
    data = adapt_features(variants=3, seed=5)

    assert len(data.features) == 7 * 4 and data.features.shape[1] == 1280
    assert sorted(set(data.kinds)) == [CATALOG, "reshot", "scene"]
    assert np.allclose(np.linalg.norm(data.features, axis=1), 1.0, atol=1e-4)
    catalog_rows = data.kinds == CATALOG
    assert sorted(data.product_ids[catalog_rows]) == sorted(p.pk for p in relevance_shop.values())
    apple = relevance_shop["apple"].pk
    assert set(data.category_ids[data.product_ids == apple]) == {-1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--variants", "0"), "between 1 and 20"),
        (("--held-out", "1.5"), "--held-out must be between 0 and 1"),
        (("--dim", "1"), "at least 2 dimensions"),
        (("--dim", "5000", "--variants", "1"), "more dimensions (5000) than its input (1280)"),
    ],
)
def test_bad_options_are_refused_with_a_reason(relevance_shop, var_dir, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train(*args)


def test_a_one_product_catalog_cannot_be_split(shop, var_dir):
    from catalog.models import Product

    keep = Product.objects.order_by("pk").first()
    Product.objects.exclude(pk=keep.pk).update(is_active=False)
    with pytest.raises(CommandError, match="at least 2 products"):
        train("--variants", "1")
