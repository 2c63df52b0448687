"""Maps (search, results, a place page with Directions, the directions screen) and YouTube
(home feed, search, results, the playing-video screen)."""

from __future__ import annotations

from distrl_jax.devices.simphone import catalog, content, nav
from distrl_jax.devices.simphone.state import PhoneState, View
from distrl_jax.devices.simphone.ui import (
    BAR_BOTTOM,
    STATUS_BOTTOM,
    Row,
    Theme,
    app_bar,
    button,
    field,
    rows,
    text,
)
from distrl_jax.devices.simphone.widgets import Widget

_MAP = (170, 218, 160)
_BLUE = (26, 115, 232)
_CHIPS = ("Restaurants", "Coffee", "Gas", "Groceries", "Hotels")


def _maps_search_field(s: PhoneState, theme: Theme) -> Widget:
    focused = s.focus == "maps.q"
    value = s.text if focused else s.view.query
    return field(
        (STATUS_BOTTOM + 0.01, 0.04, BAR_BOTTOM - 0.005, 0.96),
        "maps.q",
        value,
        "Search here",
        theme,
        focused=focused,
    )


@nav.page("maps", "home")
def _maps_home(s: PhoneState, theme: Theme) -> nav.Page:
    out = [
        Widget((STATUS_BOTTOM, 0.0, 1.0, 1.0), "image", "", _MAP, glyph=catalog.glyph("pin")),
        _maps_search_field(s, theme),
    ]
    r = content.rng(s.seed, "map")
    for _ in range(4):  # a few roads, drawn at random so the map differs between episodes
        y = r.uniform(0.2, 0.8)
        out.append(Widget((y, 0.0, y + 0.012, 1.0), "bar", "", (250, 250, 250)))
    for i, chip in enumerate(_CHIPS):
        x0 = 0.03 + i * 0.195
        out.append(
            button(
                (BAR_BOTTOM + 0.01, x0, BAR_BOTTOM + 0.055, x0 + 0.18),
                chip,
                f"maps.chip:{chip}",
                theme.surface,
                theme.text,
            )
        )
    out.append(
        button((0.88, 0.8, 0.94, 0.95), "Go", "maps.noop", _BLUE, glyph=catalog.glyph("car"))
    )
    return nav.Page(out, background=_MAP)


@nav.page("maps", "results")
def _maps_results(s: PhoneState, theme: Theme) -> nav.Page:
    found = content.places(s.seed, s.view.query)
    out = [
        _maps_search_field(s, theme),
        Widget((BAR_BOTTOM + 0.005, 0.0, 0.3, 1.0), "image", "", _MAP, glyph=catalog.glyph("pin")),
    ]
    items = [
        Row(p.name, f"maps.place:{i}", sub=p.detail, icon=((234, 67, 53), catalog.glyph("pin")))
        for i, p in enumerate(found)
    ]
    widgets, max_scroll = rows(items, 0.31, theme, s.scroll, row_h=0.1)
    return nav.Page(out + widgets, max_scroll)


@nav.page("maps", "place")
def _maps_place(s: PhoneState, theme: Theme) -> nav.Page:
    v = s.view
    place = content.places(s.seed, v.query)[v.index]
    out = [
        *app_bar(theme, v.name),
        Widget((BAR_BOTTOM, 0.0, 0.34, 1.0), "image", "", _MAP, glyph=catalog.glyph("pin")),
    ]
    out.append(text((0.36, 0.04, 0.42, 0.96), place.name, theme, theme.bg))
    out.append(Widget((0.42, 0.04, 0.46, 0.96), "text", place.detail, theme.bg, theme.muted))
    for i, (label, target) in enumerate(
        (
            ("Directions", "maps.directions"),
            ("Call", "maps.noop"),
            ("Save", "maps.noop"),
            ("Share", "maps.noop"),
        )
    ):
        x0 = 0.04 + i * 0.24
        color, tc = (_BLUE, (255, 255, 255)) if i == 0 else (theme.surface, _BLUE)
        out.append(button((0.49, x0, 0.55, x0 + 0.22), label, target, color, tc))
    return nav.Page(out)


@nav.page("maps", "directions")
def _maps_directions(s: PhoneState, theme: Theme) -> nav.Page:
    v = s.view
    r = content.rng(s.seed, "route", v.name)
    out = [
        *app_bar(theme, f"Your location -> {v.name}"),
        Widget((BAR_BOTTOM, 0.0, 0.7, 1.0), "image", "", _MAP, glyph=catalog.glyph("car")),
    ]
    out.append(Widget((0.4, 0.3, 0.41, 0.75), "bar", "", _BLUE))  # the route line
    for i, mode in enumerate(("Drive", "Transit", "Walk", "Bike")):
        x0 = 0.04 + i * 0.24
        out.append(
            button(
                (0.72, x0, 0.77, x0 + 0.22),
                mode,
                "maps.noop",
                _BLUE if i == 0 else theme.surface,
                (255, 255, 255) if i == 0 else theme.text,
            )
        )
    out.append(
        text(
            (0.79, 0.04, 0.85, 0.96),
            f"{r.randint(4, 45)} min ({r.randint(5, 150) / 10:.1f} mi)",
            theme,
            theme.bg,
        )
    )
    out.append(button((0.88, 0.3, 0.95, 0.7), "Start", "maps.noop", _BLUE))
    return nav.Page(out)


@nav.on_tap("maps.chip")
def _chip(s: PhoneState, arg: str) -> None:
    nav.navigate(s, View("maps", "results", query=arg.lower()))


@nav.on_tap("maps.place")
def _place(s: PhoneState, arg: str) -> None:
    v, i = s.view, int(arg)
    nav.navigate(
        s,
        View("maps", "place", query=v.query, index=i, name=content.places(s.seed, v.query)[i].name),
    )


@nav.on_tap("maps.directions")
def _directions(s: PhoneState, _: str) -> None:
    v = s.view
    nav.navigate(s, View("maps", "directions", query=v.query, index=v.index, name=v.name))


@nav.on_tap("maps.noop")
def _maps_noop(s: PhoneState, _: str) -> None:
    """Buttons simphone does not model (Call, Save, Start...): a tap that changes nothing."""


@nav.on_submit("maps.q")
def _maps_search(s: PhoneState, typed: str) -> None:
    nav.navigate(s, View("maps", "results", query=typed))


nav.ENTRIES["maps"] = lambda s, key: View("maps", "home")

# ---------------------------------------------------------------- YouTube

_RED = (255, 0, 0)


def _yt_bar(s: PhoneState, theme: Theme) -> list[Widget]:
    if s.view.page in ("search", "results"):
        focused = s.focus == "yt.q"
        value = s.text if focused else s.view.query
        return [
            Widget((STATUS_BOTTOM, 0.0, BAR_BOTTOM, 1.0), "bar", "", theme.surface),
            button(
                (STATUS_BOTTOM + 0.01, 0.01, BAR_BOTTOM - 0.01, 0.12),
                "<",
                "back",
                theme.surface,
                theme.text,
            ),
            field(
                (STATUS_BOTTOM + 0.01, 0.14, BAR_BOTTOM - 0.01, 0.96),
                "yt.q",
                value,
                "Search YouTube",
                theme,
                focused=focused,
            ),
        ]
    return [
        Widget(
            (STATUS_BOTTOM, 0.0, BAR_BOTTOM, 1.0),
            "text",
            "YouTube",
            theme.surface,
            theme.text,
            glyph=catalog.glyph("play"),
        ),
        button(
            (STATUS_BOTTOM + 0.01, 0.84, BAR_BOTTOM - 0.01, 0.96),
            "",
            "yt.search",
            theme.surface,
            theme.text,
            glyph=catalog.glyph("search"),
        ),
    ]


def _video_rows(s: PhoneState, theme: Theme, query: str, top: float) -> tuple[list[Widget], int]:
    items = [
        Row(v.title, f"yt.video:{i}", sub=v.channel, icon=((40, 40, 40), catalog.glyph("play")))
        for i, v in enumerate(content.videos(s.seed, query))
    ]
    return rows(items, top, theme, s.scroll, row_h=0.11)


@nav.page("youtube", "home")
def _yt_home(s: PhoneState, theme: Theme) -> nav.Page:
    widgets, max_scroll = _video_rows(s, theme, "", BAR_BOTTOM + 0.01)
    return nav.Page(_yt_bar(s, theme) + widgets, max_scroll)


@nav.page("youtube", "search")
def _yt_search(s: PhoneState, theme: Theme) -> nav.Page:
    return nav.Page(_yt_bar(s, theme))


@nav.page("youtube", "results")
def _yt_results(s: PhoneState, theme: Theme) -> nav.Page:
    widgets, max_scroll = _video_rows(s, theme, s.view.query, BAR_BOTTOM + 0.01)
    return nav.Page(_yt_bar(s, theme) + widgets, max_scroll)


@nav.page("youtube", "watch")
def _yt_watch(s: PhoneState, theme: Theme) -> nav.Page:
    v = s.view
    out = [
        Widget(
            (STATUS_BOTTOM, 0.0, 0.32, 1.0),
            "image",
            "> playing",
            (10, 10, 10),
            (255, 255, 255),
            glyph=catalog.glyph("play"),
        ),
        Widget((0.32, 0.0, 0.33, 0.37), "bar", "", _RED),  # progress
        Widget((0.34, 0.04, 0.4, 0.96), "text", v.name, theme.bg, theme.text),
    ]
    for i, label in enumerate(("Like", "Share", "Save", "Subscribe")):
        x0 = 0.04 + i * 0.24
        out.append(
            button(
                (0.42, x0, 0.47, x0 + 0.22),
                label,
                "yt.noop",
                _RED if label == "Subscribe" else theme.surface,
                (255, 255, 255) if label == "Subscribe" else theme.text,
            )
        )
    widgets, _ = _video_rows(s, theme, v.query, 0.51)
    out.append(text((0.485, 0.04, 0.5, 0.96), "Up next", theme, theme.bg))
    return nav.Page(out + widgets)


@nav.on_tap("yt.search")
def _yt_open_search(s: PhoneState, _: str) -> None:
    nav.navigate(s, View("youtube", "search"))
    nav.focus_field(s, "yt.q")


@nav.on_tap("yt.video")
def _yt_play(s: PhoneState, arg: str) -> None:
    v, i = s.view, int(arg)
    nav.navigate(
        s,
        View(
            "youtube",
            "watch",
            query=v.query,
            index=i,
            name=content.videos(s.seed, v.query)[i].title,
        ),
    )


@nav.on_tap("yt.noop")
def _yt_noop(s: PhoneState, _: str) -> None:
    """Like/Share/Save: a tap that changes nothing."""


@nav.on_submit("yt.q")
def _yt_query(s: PhoneState, typed: str) -> None:
    nav.navigate(s, View("youtube", "results", query=typed))


nav.ENTRIES["youtube"] = lambda s, key: View("youtube", "home")
