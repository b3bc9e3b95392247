"""Bulk import from a folder tree or a CSV: one service, row-level errors, idempotent re-runs."""

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from catalog.models import Category, FlaggedImage, Product, ProductImage
from catalog.services import ImportFileError, catalog_import
from catalog.services.import_rows import name_from_filename

PHOTOS = Path(__file__).resolve().parent.parent / "photos"
HEADER = "sku,name,category,price,description,image\n"


@pytest.fixture
def tree(tmp_path):
    """tools/hammers/claw-hammer_2.webp ... : sub-folders are categories, files are products."""
    root = tmp_path / "photos"
    layout = {
        "tools/hammers/claw-hammer_2.webp": "hammer1.webp",
        "tools/hammers/sledge-hammer.webp": "hammer2.webp",
        "tools/pliers/plier.webp": "plier1.webp",
        "kitchen/cup.webp": "cup.webp",
        "fruit.jpg": "apple.jpg",
    }
    for relative, source in layout.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PHOTOS / source, root / relative)
    (root / "notes.txt").write_text("not a photo, ignored")
    (root / ".hidden.jpg").write_bytes(b"editor junk")
    return root


def _counts() -> tuple[int, int, int]:
    return Product.objects.count(), ProductImage.objects.count(), Category.objects.count()


def _csv(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "products.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


@pytest.mark.django_db
def test_folder_tree_becomes_products_in_nested_categories(tree):
    report = catalog_import(csv_path=None, images_dir=tree)

    assert (report.total, report.created, report.failed, report.images_added) == (5, 5, 0, 5)
    hammer = Product.objects.get(sku="tools-hammers-claw-hammer-2")
    assert hammer.name == "Claw hammer 2"
    assert hammer.category.name == "Hammers" and hammer.category.parent.name == "Tools"
    assert hammer.images.get().original_name == "claw-hammer_2.webp"
    assert Product.objects.get(name="Fruit").category is None
    assert Product.objects.get(name="Plier").category.parent == hammer.category.parent


@pytest.mark.django_db
def test_folder_import_twice_changes_nothing(tree):
    catalog_import(csv_path=None, images_dir=tree)
    before = _counts()

    again = catalog_import(csv_path=None, images_dir=tree)

    assert (again.created, again.updated, again.unchanged, again.images_added) == (0, 0, 5, 0)
    assert _counts() == before


@pytest.mark.django_db
def test_folder_reimport_keeps_prices_set_in_the_shop(tree):
    catalog_import(csv_path=None, images_dir=tree)
    Product.objects.filter(name="Fruit").update(price=Decimal("3.20"))

    catalog_import(csv_path=None, images_dir=tree)

    assert Product.objects.get(name="Fruit").price == Decimal("3.20")


@pytest.mark.django_db
def test_csv_creates_products_with_several_photos_and_nested_category(tmp_path):
    path = _csv(
        tmp_path,
        "HAM-1,Claw hammer,Tools > Hammers,12.50,Steel head,hammer1.webp;hammer2.webp\n"
        'CUP-1,"Cup, white",Kitchen,3,,cup.webp|orange.jpg\n',
    )

    report = catalog_import(csv_path=path, images_dir=PHOTOS)

    assert (report.created, report.failed, report.images_added) == (2, 0, 4)
    hammer = Product.objects.get(sku="HAM-1")
    assert (hammer.price, hammer.currency, hammer.description) == (Decimal("12.50"), "EUR", "Steel head")
    assert [i.original_name for i in hammer.images.all()] == ["hammer1.webp", "hammer2.webp"]
    assert str(hammer.category.parent) == "Tools"
    assert Product.objects.get(sku="CUP-1").name == "Cup, white"


@pytest.mark.django_db
def test_csv_twice_is_unchanged_and_an_edit_is_an_update(tmp_path):
    body = "HAM-1,Claw hammer,Tools,12.50,,hammer1.webp\nCUP-1,Cup,Kitchen,3.00,,cup.webp\n"
    catalog_import(csv_path=_csv(tmp_path, body), images_dir=PHOTOS)
    before = _counts()

    again = catalog_import(csv_path=_csv(tmp_path, body), images_dir=PHOTOS)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert _counts() == before

    edited = catalog_import(csv_path=_csv(tmp_path, body.replace("12.50", "14.00")), images_dir=PHOTOS)
    assert (edited.updated, edited.unchanged) == (1, 1)
    assert Product.objects.get(sku="HAM-1").price == Decimal("14.00")


@pytest.mark.django_db
def test_bad_rows_are_reported_by_line_and_the_rest_imports(tmp_path, settings):
    (tmp_path / "broken.jpg").write_bytes((PHOTOS / "apple.jpg").read_bytes()[:3000])
    (tmp_path / "good.webp").write_bytes((PHOTOS / "cup.webp").read_bytes())
    for name in ("chair.webp", "orange.jpg"):
        (tmp_path / name).write_bytes((PHOTOS / name).read_bytes())
    body = (
        "OK-1,Cup,Kitchen,3.00,,good.webp\n"  # line 2
        ",No sku,Kitchen,3.00,,good.webp\n"  # line 3
        "BAD-PRICE,Cup,Kitchen,abc,,good.webp\n"  # line 4
        "NEG,Cup,Kitchen,-1,,good.webp\n"  # line 5
        "MISSING,Cup,Kitchen,1,,nowhere.jpg\n"  # line 6
        "BROKEN,Cup,Kitchen,1,,broken.jpg\n"  # line 7
        "OK-1,Again,Kitchen,1,,good.webp\n"  # line 8: SKU used on line 2
        "ESCAPE,Cup,Kitchen,1,,../../etc/passwd\n"  # line 9
        "HALF,Chair,Kitchen,1,,orange.jpg;broken.jpg\n"  # line 10: all or nothing
        "OK-2,Chair,Furniture,5,,chair.webp\n"  # line 11
    )

    report = catalog_import(csv_path=_csv(tmp_path, body), images_dir=tmp_path)

    reasons = {error.row: error.reason for error in report.errors}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "SKU is missing" in reasons[3]
    assert "'abc' is not a number" in reasons[4]
    assert "negative" in reasons[5]
    assert "nowhere.jpg" in reasons[6] and "not found" in reasons[6]
    assert "broken.jpg" in reasons[7] and "truncated" in reasons[7]
    assert "row 2" in reasons[8]
    assert "outside the images folder" in reasons[9]
    assert (report.created, report.failed) == (2, 8)
    assert set(Product.objects.values_list("sku", flat=True)) == {"OK-1", "OK-2"}
    assert not Product.objects.filter(sku="HALF").exists()
    stored = {path.name for path in (Path(settings.MEDIA_ROOT) / "products").rglob("*.*")}
    assert stored == {Path(image.image.name).name for image in ProductImage.objects.all()}  # no orphans


@pytest.mark.django_db
def test_flagged_photo_fails_its_row_only(tmp_path):
    FlaggedImage.objects.create(
        reason="copyrighted stock photo", sha256="0" * 64, phash=_phash_of("cup.webp")
    )
    body = "CUP,Cup,Kitchen,3,,cup.webp\nPAN,Pan,Kitchen,9,,pan.webp\n"

    report = catalog_import(csv_path=_csv(tmp_path, body), images_dir=PHOTOS)

    assert [(e.row, "copyrighted stock photo" in e.reason) for e in report.errors] == [(2, True)]
    assert list(Product.objects.values_list("sku", flat=True)) == ["PAN"]


def _phash_of(name: str) -> str:
    from catalog.services import decode_photo

    return decode_photo((PHOTOS / name).read_bytes()).phash


@pytest.mark.django_db
def test_progress_is_reported_for_every_row(tree):
    calls = []

    catalog_import(csv_path=None, images_dir=tree, progress=lambda done, total: calls.append((done, total)))

    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


@pytest.mark.django_db
def test_currency_column_and_default_currency(tmp_path):
    header = "sku,name,category,price,description,image,currency\n"
    body = "A,Cup,,3,,cup.webp,usd\nB,Pan,,4,,pan.webp,\nC,Bulb,,1,,bulb.webp,EURO\n"

    report = catalog_import(csv_path=_csv(tmp_path, body, header), images_dir=PHOTOS, default_currency="GBP")

    assert dict(Product.objects.values_list("sku", "currency")) == {"A": "USD", "B": "GBP"}
    assert report.errors[0].row == 4 and "ISO 4217" in report.errors[0].reason


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("sku,title,price,image\n", "missing column(s) name; unknown column(s) title"),
        ("", "empty"),
    ],
)
def test_wrong_header_stops_before_anything_changes(tmp_path, header, words):
    path = _csv(tmp_path, "A,Cup,3,cup.webp\n" if header else "", header)

    with pytest.raises(ImportFileError, match=words.replace("(", r"\(").replace(")", r"\)")):
        catalog_import(csv_path=path, images_dir=PHOTOS)
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_missing_folder_or_csv_is_an_import_error(tmp_path):
    with pytest.raises(ImportFileError, match="does not exist"):
        catalog_import(csv_path=None, images_dir=tmp_path / "nope")
    with pytest.raises(ImportFileError, match="nope.csv does not exist"):
        catalog_import(csv_path=tmp_path / "nope.csv", images_dir=PHOTOS)


@pytest.mark.django_db
def test_spreadsheet_csv_with_bom_semicolons_and_decimal_comma(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(
        "\ufeffsku;name;category;price;description;image\nCUP;Cup;Kitchen;3,50;;cup.webp|pan.webp\n".encode()
    )

    report = catalog_import(csv_path=path, images_dir=PHOTOS)

    assert (report.created, report.images_added, report.errors) == (1, 2, [])
    assert Product.objects.get(sku="CUP").price == Decimal("3.50")


@pytest.mark.parametrize(
    ("stem", "name"),
    [
        ("claw-hammer_2", "Claw hammer 2"),
        ("BrandenburgGate", "Brandenburg Gate"),
        ("cup", "Cup"),
        ("--", "--"),
    ],
)
def test_product_names_from_file_names(stem, name):
    assert name_from_filename(stem) == name


@pytest.mark.django_db
def test_unreadable_file_in_a_folder_is_reported_and_the_rest_imports(tree):
    (tree / "kitchen" / "notes.jpg").write_text("a shopping list, not a photo")

    report = catalog_import(csv_path=None, images_dir=tree)

    assert (report.created, report.failed) == (5, 1)
    [error] = report.errors
    assert "kitchen/notes.jpg" in error.reason and "not an image" in error.reason
    assert not Product.objects.filter(name="Notes").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("cell", "code"),
    [("Cup\x00", "U+0000"), ("Cup\x1b[31m", "U+001B"), ("Cup\x7f", "U+007F"), ("\u202epuC", "U+202E")],
    ids=["nul", "escape", "delete", "bidi-override"],
)
def test_control_characters_fail_their_row_only(tmp_path, cell, code):
    (tmp_path / "good.webp").write_bytes((PHOTOS / "cup.webp").read_bytes())
    (tmp_path / "chair.webp").write_bytes((PHOTOS / "chair.webp").read_bytes())
    body = (
        "OK-1,Cup,Kitchen,3.00,,good.webp\n"  # line 2
        f"BAD,{cell},Kitchen,3.00,,good.webp\n"  # line 3
        'OK-2,Chair,Furniture,5,"Two lines,\ttabbed\nare fine",chair.webp\n'  # line 4
    )
    report = catalog_import(csv_path=_csv(tmp_path, body), images_dir=tmp_path)
    assert [(error.row, error.reason) for error in report.errors] == [
        (3, f"column 'name' contains the control character {code}")
    ]
    assert set(Product.objects.values_list("sku", flat=True)) == {"OK-1", "OK-2"}
    assert Product.objects.get(sku="OK-2").description == "Two lines,\ttabbed\nare fine"


@pytest.mark.django_db
def test_import_command_reports_a_nul_row_and_goes_on(tmp_path):
    from io import StringIO

    from django.core.management import call_command

    (tmp_path / "good.webp").write_bytes((PHOTOS / "cup.webp").read_bytes())
    csv_path = _csv(tmp_path, "BAD,Cu\x00p,Kitchen,3.00,,good.webp\nOK-1,Cup,Kitchen,3.00,,good.webp\n")
    out, err = StringIO(), StringIO()
    call_command(
        "import_catalog", str(csv_path), "--images", str(tmp_path), "--no-progress", stdout=out, stderr=err
    )
    assert "row 2: column 'name' contains the control character U+0000" in out.getvalue() + err.getvalue()
    assert Product.objects.filter(sku="OK-1").exists()
