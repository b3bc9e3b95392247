"""python manage.py import_catalog: summary, row errors, exit status."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Product

PHOTOS = Path(__file__).resolve().parent.parent / "photos"


def _run(*args: str) -> str:
    out = StringIO()
    call_command("import_catalog", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_command_imports_csv_and_prints_summary_and_row_errors(tmp_path):
    csv = tmp_path / "products.csv"
    csv.write_text(
        "sku,name,category,price,description,image\n"
        "CUP,Cup,Kitchen,3,,cup.webp\n"
        "PAN,Pan,Kitchen,-2,,pan.webp\n"
    )

    output = _run(str(csv), "--images", str(PHOTOS))

    assert "row 3: The price -2 must not be negative." in output
    assert "2 rows: 1 created, 0 updated, 0 unchanged, 1 failed; 1 photos added." in output
    assert list(Product.objects.values_list("sku", flat=True)) == ["CUP"]


@pytest.mark.django_db
def test_command_folder_mode_second_run_reports_unchanged(tmp_path, settings):
    # The shop's media folder inside the imported tree must not be imported back as products.
    assert settings.MEDIA_ROOT == tmp_path / "media"
    (tmp_path / "kitchen").mkdir()
    for name in ("cup.webp", "pan.webp"):
        (tmp_path / "kitchen" / name).write_bytes((PHOTOS / name).read_bytes())

    first = _run("--images", str(tmp_path))
    second = _run("--images", str(tmp_path))

    assert "2 rows: 2 created" in first
    assert "2 rows: 0 created, 0 updated, 2 unchanged, 0 failed; 0 photos added." in second


@pytest.mark.django_db
def test_command_fails_clearly_for_missing_inputs_and_wrong_header(tmp_path):
    with pytest.raises(CommandError, match="images folder .* does not exist"):
        _run("--images", str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="does not exist"):
        _run(str(tmp_path / "missing.csv"), "--images", str(PHOTOS))
    bad = tmp_path / "bad.csv"
    bad.write_text("code,title\nA,B\n")
    with pytest.raises(CommandError, match="Wrong CSV header in bad.csv: missing column"):
        _run(str(bad), "--images", str(PHOTOS))
    with pytest.raises(CommandError, match="ISO 4217"):
        _run("--images", str(PHOTOS), "--currency", "EURO")


def test_progress_bar_shows_only_for_long_imports_on_a_terminal(capsys):
    from catalog.management.commands.import_catalog import PROGRESS_MIN_ROWS, _ProgressBar

    long_import = PROGRESS_MIN_ROWS + 5
    bar = _ProgressBar(enabled=True)
    for done in range(1, long_import + 1):
        bar.update(done, long_import)
    bar.close()
    assert f"{long_import}/{long_import}" in capsys.readouterr().err

    for enabled, total in ((True, PROGRESS_MIN_ROWS - 1), (False, long_import)):
        quiet = _ProgressBar(enabled=enabled)
        quiet.update(1, total)
        quiet.close()
    assert capsys.readouterr().err == ""
