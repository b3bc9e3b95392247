"""manage.py relevance_report as an operator runs it: a run with its figures, stored runs, bad options."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from search.models import RelevanceRun
from tests.search.conftest import RELEVANCE_SHOP

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def report(*args: str) -> str:
    out = StringIO()
    call_command("relevance_report", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_a_run_prints_its_figures_how_the_variants_were_made_and_the_hardest_product(relevance_shop):
    out = report("--photos", "50", "--kinds", "reshot")

    run = RelevanceRun.objects.get()
    assert run.status == "succeeded"
    assert f"Relevance self-test #{run.pk}: succeeded" in out
    assert f"Model: efficientnet_lite0 (fingerprint {run.fingerprint})" in out and "fallback" in out
    # The figures row, as stored: R@1 6/7, R@10 1, same-category P@10 1/3 over 7 searches.
    assert "  all variants    0.857  1.000                0.333         7" in out
    assert "  re-shot         0.857  1.000                0.333         7" in out
    assert "Photos: all 7 photos of active products; 1 variant(s) of each, made with seed 2026" in out
    assert "Re-shot: a crop keeping 70-95 % of each side" in out and "upper bound" in out
    assert "Scenes: 8 real photos from " in out
    (hard,) = run.hardest
    assert f"  {hard['sku']:<18} " in out and f"taken for {hard['confused_sku']} " in out


def test_show_and_history_print_stored_runs(relevance_shop):
    report("--photos", "3", "--kinds", "reshot", "--seed", "4")
    report("--photos", "3", "--kinds", "reshot", "--seed", "4")
    first, second = RelevanceRun.objects.order_by("pk")

    shown = report("--show", str(first.pk))
    history = report("--history")

    assert f"Relevance self-test #{first.pk}: succeeded" in shown
    assert "3 of the 7 photos of active products, sampled with seed 4" in shown
    assert "Same variants, other runs (compare models here):" in shown and f"#{second.pk}" in shown
    assert f"#{first.pk}" in history and f"#{second.pk}" in history
    assert f"{first.r_at_1:.3f}" in history and "efficientnet_lite" in history


def test_history_without_runs_says_so():
    assert report("--history").strip() == "No self-test has run yet."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--photos", "0"], "The number of photos must be between 1 and 5000, not 0."),
        (["--photos", "many"], "argument --photos: invalid int value: 'many'"),
        (["--seed", "-3"], "The seed must be between 0 and"),
        (["--kinds", "reshot,drawing"], r"Unknown variant kind\(s\) drawing: choose from reshot, scene."),
        (["--kinds", ","], r"Unknown variant kind\(s\) \(none given\)"),
        (["--show", "999"], "There is no self-test #999"),
        (["--show", "1", "--history"], "not allowed with argument"),
    ],
)
def test_bad_options_get_a_clear_message(args, message):
    with pytest.raises(CommandError, match=message):
        report(*args)
    assert not RelevanceRun.objects.exists()


def test_a_missing_scene_folder_is_a_clear_message(settings, tmp_path):
    settings.SEARCH_RELEVANCE_SCENES_DIR = str(tmp_path / "scenes")
    with pytest.raises(CommandError, match=r"scenes does not exist \(SEARCH_RELEVANCE_SCENES_DIR\)"):
        report()


def test_another_running_self_test_is_a_clear_message(relevance_shop):
    RelevanceRun.objects.create(seed=1, photos_requested=5, kinds=["reshot"], status="queued")
    with pytest.raises(CommandError, match=r"Self-test #\d+ is queued: wait for it to finish or cancel it"):
        report()


def test_ctrl_c_prints_what_was_searched_and_stops(relevance_shop, monkeypatch):
    def interrupting_bar(bar):
        def update(done, total):
            if done == 2:
                raise KeyboardInterrupt

        return update

    monkeypatch.setattr("search.management.commands.relevance_report.tqdm_progress", interrupting_bar)
    out = StringIO()
    try:
        with pytest.raises(
            CommandError, match=f"Interrupted: self-test #\\d+ covers 2 of {len(RELEVANCE_SHOP)}"
        ):
            call_command("relevance_report", "--kinds", "reshot", stdout=out)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the command: no partial report, no clear message")

    run = RelevanceRun.objects.get()
    assert run.status == "cancelled" and len(run.outcomes) == 2
    assert f"Stopped early: the figures cover 2 of {len(RELEVANCE_SHOP)} searches." in out.getvalue()
