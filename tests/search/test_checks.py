"""System checks of the search settings."""

from django.core.management import call_command
from django.core.management.base import SystemCheckError


def test_hnsw_with_shipped_builds_warns_that_its_graph_stays_on_one_machine(settings):
    settings.SEARCH_VECTOR_BACKEND = "hnsw"
    settings.SEARCH_INDEX_STORAGE = "default"

    try:
        call_command("check", fail_level="WARNING")
    except SystemCheckError as exc:
        message = str(exc)
    else:
        message = ""

    assert "search.W001" in message and "not shipped" in message


def test_no_warning_for_annoy_with_shipped_builds_or_hnsw_alone(settings):
    settings.SEARCH_INDEX_STORAGE = "default"
    settings.SEARCH_VECTOR_BACKEND = "annoy"
    call_command("check", fail_level="WARNING")  # raises SystemCheckError on any warning

    settings.SEARCH_INDEX_STORAGE = ""
    settings.SEARCH_VECTOR_BACKEND = "hnsw"
    call_command("check", fail_level="WARNING")
