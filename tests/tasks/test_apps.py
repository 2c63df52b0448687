"""The app and website registry: canonical names, aliases, unknown apps kept as written."""

from __future__ import annotations

import pytest

from distrl_jax.tasks.apps import SYSTEM_APPS, canonical_app, is_system_app, site_domain


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("Google play store", "Play Store"),
        ("the play store", "Play Store"),
        ("SMS", "Messages"),
        ("text messages", "Messages"),
        ("gallery", "Photos"),
        ("Google Photos", "Photos"),
        ("downloads", "Files"),
        ("files", "Files"),
        ("file manager", "Files"),
        ("chrome", "Chrome"),
        ("Google Chrome", "Chrome"),
        ("Google Maps", "Maps"),
        ("gmail", "Gmail"),
        ("youtube", "YouTube"),
        ("the calculator app", "Calculator"),
        ("  Clock   app ", "Clock"),
        ("alarm clock", "Clock"),
    ],
)
def test_aliases_map_to_system_apps(name: str, canonical: str) -> None:
    assert canonical_app(name) == canonical
    assert canonical in SYSTEM_APPS
    assert is_system_app(name)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("Amazon Alexa", "Amazon Alexa"),  # written with capitals: kept as written
        ("eBay", "eBay"),
        ("ebay", "eBay"),  # lower case: the brand's spelling
        ("spotify", "Spotify"),  # lower case, unknown casing: title case
        ("the Duolingo app", "Duolingo"),
        ("my fitness pal", "My Fitness Pal"),  # "my" is part of a name, only "the" is dropped
        ("Google Play Books", "Google Play Books"),
        ("iHeartRadio", "iHeartRadio"),
    ],
)
def test_unknown_apps_are_kept(name: str, canonical: str) -> None:
    assert canonical_app(name) == canonical
    assert not is_system_app(name)


def test_canonical_is_idempotent() -> None:
    for name in [*SYSTEM_APPS, "Amazon Alexa", "eBay", "Spotify", "Google Play Music"]:
        assert canonical_app(canonical_app(name)) == canonical_app(name)


def test_system_apps_are_unique_and_canonical() -> None:
    assert len(set(SYSTEM_APPS)) == len(SYSTEM_APPS)
    for app in SYSTEM_APPS:
        assert canonical_app(app) == app
        assert canonical_app(app.lower()) == app


@pytest.mark.parametrize("bad", ["", "   ", "the app", "app"])
def test_empty_names_raise(bad: str) -> None:
    with pytest.raises(ValueError, match="app name is empty"):
        canonical_app(bad)


def test_non_string_raises() -> None:
    with pytest.raises(TypeError):
        canonical_app(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "domain"),
    [
        ("eBay", "ebay.com"),
        ("Home Depot", "homedepot.com"),
        ("the home depot", "homedepot.com"),
        ("Lowe's", "lowes.com"),
        ("Lowes", "lowes.com"),
        ("Best Buy", "bestbuy.com"),
        ("reddit", "reddit.com"),
        ("Joe's Hardware", None),
        ("", None),
    ],
)
def test_site_domain(name: str, domain: str | None) -> None:
    assert site_domain(name) == domain
