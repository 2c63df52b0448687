"""Google search: the results page (shared by Chrome and the Google app), result pages, and the
Google app's home and search screens. Results derive from the query (``content.web_results``);
a one-word or domain-like query also links to that site first."""

from __future__ import annotations

from distrl_jax.devices.simphone import content, nav
from distrl_jax.devices.simphone.state import PhoneState, View
from distrl_jax.devices.simphone.ui import (
    BAR_BOTTOM,
    STATUS_BOTTOM,
    Row,
    Theme,
    button,
    field,
    rows,
)
from distrl_jax.devices.simphone.widgets import Widget


def serp_page(s: PhoneState, theme: Theme, header: list[Widget]) -> nav.Page:
    """A Google results page for ``s.view.query`` under ``header``."""
    q = s.view.query
    focused = s.focus == "serp.q"
    out = [
        *header,
        field(
            (BAR_BOTTOM + 0.01, 0.04, BAR_BOTTOM + 0.06, 0.96),
            "serp.q",
            s.text if focused else q,
            "Search",
            theme,
            focused=focused,
        ),
    ]
    out.append(
        Widget(
            (BAR_BOTTOM + 0.07, 0.04, BAR_BOTTOM + 0.13, 0.96),
            "text",
            content.title(q),
            theme.surface,
            theme.text,
        )
    )
    results = content.web_results(s.seed, q)
    items = [Row(r.title, f"web.open:{i}", sub=r.domain) for i, r in enumerate(results)]
    widgets, max_scroll = rows(items, BAR_BOTTOM + 0.14, theme, s.scroll, row_h=0.1)
    return nav.Page(out + widgets, max_scroll)


def web_page(s: PhoneState, theme: Theme, header: list[Widget]) -> nav.Page:
    """A web page (a result opened from Google) under ``header``."""
    v = s.view
    out = [
        *header,
        Widget(
            (BAR_BOTTOM + 0.02, 0.04, BAR_BOTTOM + 0.09, 0.96), "text", v.name, theme.bg, theme.text
        ),
    ]
    r = content.rng(s.seed, "article", v.name)
    for i in range(r.randint(3, 6)):
        y0 = BAR_BOTTOM + 0.11 + i * 0.07
        out.append(
            Widget(
                (y0, 0.04, y0 + 0.05, r.uniform(0.6, 0.96)),
                "text",
                f"{v.site} - paragraph {i + 1}",
                theme.surface,
                theme.muted,
            )
        )
    return nav.Page(out)


@nav.on_tap("web.open")
def _open_result(s: PhoneState, arg: str) -> None:
    v = s.view
    result = content.web_results(s.seed, v.query)[int(arg)]
    if result.title.endswith("- Official Site") and v.app == "chrome":
        nav.navigate(s, View("chrome", "site", site=result.domain))
    else:
        nav.navigate(s, View(v.app, "web", query=v.query, site=result.domain, name=result.title))


@nav.on_submit("serp.q")
def _serp_search(s: PhoneState, typed: str) -> None:
    nav.navigate(s, View(s.view.app, "serp", query=typed))


# ---------------------------------------------------------------- the Google app


def _google_bar(s: PhoneState, theme: Theme) -> list[Widget]:
    focused = s.focus == "google.q"
    value = s.text if focused else s.view.query
    return [
        Widget((STATUS_BOTTOM, 0.0, BAR_BOTTOM, 1.0), "bar", "", theme.bar),
        field(
            (STATUS_BOTTOM + 0.01, 0.04, BAR_BOTTOM - 0.01, 0.96),
            "google.q",
            value,
            "Search",
            theme,
            focused=focused,
        ),
    ]


@nav.page("google", "home")
def _google_home(s: PhoneState, theme: Theme) -> nav.Page:
    r = content.rng(s.seed, "discover")
    stories = [
        Row(content.title(t), "", sub="Discover")
        for t in r.sample(
            (
                "space news",
                "local weather",
                "stock market today",
                "new phone launch",
                "football scores",
                "recipe ideas",
            ),
            4,
        )
    ]
    widgets, _ = rows(stories, BAR_BOTTOM + 0.04, theme, 0, row_h=0.12)
    return nav.Page(_google_bar(s, theme) + widgets)


@nav.page("google", "search")
def _google_search(s: PhoneState, theme: Theme) -> nav.Page:
    return nav.Page(_google_bar(s, theme))


@nav.page("google", "serp")
def _google_serp(s: PhoneState, theme: Theme) -> nav.Page:
    return serp_page(s, theme, _google_bar(s, theme))


@nav.page("google", "web")
def _google_web(s: PhoneState, theme: Theme) -> nav.Page:
    return web_page(s, theme, app_bar_for_web(theme, s.view.site))


def app_bar_for_web(theme: Theme, site: str) -> list[Widget]:
    """The Google app's in-app browser bar."""
    return [
        Widget((STATUS_BOTTOM, 0.0, BAR_BOTTOM, 1.0), "bar", "", theme.bar, theme.text),
        Widget((STATUS_BOTTOM, 0.14, BAR_BOTTOM, 0.98), "text", site, theme.bar, theme.text),
        button(
            (STATUS_BOTTOM + 0.01, 0.01, BAR_BOTTOM - 0.01, 0.12),
            "<",
            "back",
            theme.bar,
            theme.text,
        ),
    ]


@nav.on_submit("google.q")
def _google_query(s: PhoneState, typed: str) -> None:
    nav.navigate(s, View("google", "serp", query=typed))


nav.FIELD_VALUES["google.q"] = lambda s: s.view.query
nav.ENTRIES["google"] = lambda s, key: View("google", "home")
