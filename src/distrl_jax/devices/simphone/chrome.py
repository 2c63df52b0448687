"""Chrome: the address bar (a web address opens that site, anything else Google results), tabs
and the tab switcher, and the menu with "New tab" and "New incognito tab". Its content pages are
Google search (``google_search``) and shopping sites (``shopping``)."""

from __future__ import annotations

from distrl_jax.devices.simphone import catalog, content, nav
from distrl_jax.devices.simphone.google_search import serp_page, web_page
from distrl_jax.devices.simphone.state import PhoneState, View
from distrl_jax.devices.simphone.ui import (
    BAR_BOTTOM,
    STATUS_BOTTOM,
    Theme,
    button,
    field,
    text,
)
from distrl_jax.devices.simphone.widgets import Widget

_INCOGNITO_BAR = (53, 54, 58)
_INCOGNITO_BG = (32, 33, 36)
_LIGHT = (232, 234, 237)


def url_of(view: View) -> str:
    """What the address bar shows for a Chrome page."""
    if view.page == "serp":
        return f"google.com/search?q={view.query}"
    if view.page == "site":
        return f"www.{view.site}"
    if view.page == "site_results":
        return f"{view.site}/search?q={view.query}"
    if view.page == "site_product":
        return f"{view.site}/p/{view.index + 1}"
    if view.page == "site_cart":
        return f"{view.site}/cart"
    if view.page == "web":
        return f"{view.site}/article"
    return ""


def page_title(view: View) -> str:
    """A tab's title in the tab switcher."""
    if view.page == "serp":
        return f"{view.query} - Google Search"
    if view.page.startswith("site"):
        return catalog.site_name(view.site)
    if view.page == "web":
        return view.name
    return "New tab"


def toolbar(s: PhoneState, theme: Theme) -> list[Widget]:
    """Chrome's toolbar: the address bar, the tab count and the menu button."""
    tab = s.current_tab
    incognito = tab is not None and tab.incognito
    bar = _INCOGNITO_BAR if incognito else theme.bar
    focused = s.focus == "chrome.omni"
    value = s.text if focused else url_of(s.view)
    omni = field(
        (STATUS_BOTTOM + 0.01, 0.03, BAR_BOTTOM - 0.01, 0.7),
        "chrome.omni",
        value,
        "Search or type web address",
        theme,
        focused=focused,
    )
    return [
        Widget((STATUS_BOTTOM, 0.0, BAR_BOTTOM, 1.0), "bar", "", bar),
        omni,
        button(
            (STATUS_BOTTOM + 0.012, 0.73, BAR_BOTTOM - 0.012, 0.84),
            str(len(s.tabs)),
            "chrome.tabs",
            bar,
            _LIGHT if incognito else theme.text,
        ),
        button(
            (STATUS_BOTTOM + 0.012, 0.87, BAR_BOTTOM - 0.012, 0.97),
            ":",
            "chrome.menu",
            bar,
            _LIGHT if incognito else theme.text,
        ),
    ]


@nav.page("chrome", "ntp")
def _ntp(s: PhoneState, theme: Theme) -> nav.Page:
    tab = s.current_tab
    out = toolbar(s, theme)
    if tab is not None and tab.incognito:
        out.append(
            Widget(
                (0.2, 0.1, 0.3, 0.9),
                "text",
                "You've gone Incognito",
                _INCOGNITO_BG,
                _LIGHT,
                glyph=catalog.glyph("person"),
            )
        )
        out.append(
            Widget(
                (0.32, 0.1, 0.4, 0.9),
                "text",
                "Others who use this device won't see your activity",
                _INCOGNITO_BG,
                (170, 170, 170),
            )
        )
        return nav.Page(out, background=_INCOGNITO_BG)
    out.append(text((0.18, 0.25, 0.25, 0.75), "Google", theme, theme.bg))
    out.append(
        Widget(
            (0.28, 0.06, 0.34, 0.94),
            "field",
            "Search or type web address",
            theme.surface,
            theme.muted,
            target="focus:chrome.omni",
        )
    )
    r = content.rng(s.seed, "shortcuts")
    for i, site in enumerate(
        r.sample(
            ("amazon.com", "walmart.com", "ebay.com", "bestbuy.com", "target.com", "costco.com"), 4
        )
    ):
        x0 = 0.06 + i * 0.225
        out.append(
            button(
                (0.4, x0, 0.47, x0 + 0.19),
                catalog.site_name(site),
                f"chrome.go:{site}",
                catalog.site_color(site),
            )
        )
    return nav.Page(out)


@nav.page("chrome", "serp")
def _chrome_serp(s: PhoneState, theme: Theme) -> nav.Page:
    return serp_page(s, theme, toolbar(s, theme))


@nav.page("chrome", "web")
def _chrome_web(s: PhoneState, theme: Theme) -> nav.Page:
    return web_page(s, theme, toolbar(s, theme))


# ---------------------------------------------------------------- menu and tab switcher

_MENU = (("New tab", "chrome.newtab:0"), ("New incognito tab", "chrome.newtab:1"), ("History", "chrome.noop"), ("Downloads", "chrome.noop"), ("Bookmarks", "chrome.noop"), ("Recent tabs", "chrome.noop"), ("Settings", "chrome.noop"))  # fmt: skip


@nav.page("chrome", "menu")
def _menu(s: PhoneState, theme: Theme) -> nav.Page:
    out = toolbar(s, theme)
    out.append(
        Widget(
            (BAR_BOTTOM, 0.42, BAR_BOTTOM + 0.02 + 0.07 * len(_MENU), 0.99),
            "bar",
            "",
            theme.surface,
        )
    )
    for i, (label, target) in enumerate(_MENU):
        y0 = BAR_BOTTOM + 0.01 + i * 0.07
        out.append(
            Widget(
                (y0, 0.44, y0 + 0.065, 0.98),
                "item",
                label,
                theme.surface,
                theme.text,
                target=target,
            )
        )
    return nav.Page(out)


@nav.page("chrome", "tabs")
def _tab_switcher(s: PhoneState, theme: Theme) -> nav.Page:
    out = [
        Widget(
            (STATUS_BOTTOM, 0.0, BAR_BOTTOM, 1.0),
            "text",
            f"{len(s.tabs)} tabs",
            theme.bar,
            theme.text,
        )
    ]
    out.append(
        button(
            (STATUS_BOTTOM + 0.01, 0.02, BAR_BOTTOM - 0.01, 0.14),
            "+",
            "chrome.newtab:0",
            theme.bar,
            theme.text,
        )
    )
    for i, tab in enumerate(s.tabs):
        y0 = BAR_BOTTOM + 0.02 + (i // 2) * 0.26
        x0 = 0.04 + (i % 2) * 0.48
        color = _INCOGNITO_BAR if tab.incognito else theme.surface
        tc = _LIGHT if tab.incognito else theme.text
        out.append(
            Widget(
                (y0, x0, y0 + 0.24, x0 + 0.44),
                "item",
                page_title(tab.page),
                color,
                tc,
                target=f"chrome.tab:{i}",
                focused=i == s.tab,
            )
        )
    return nav.Page(out)


@nav.on_tap("chrome.menu")
def _open_menu(s: PhoneState, _: str) -> None:
    nav.navigate(s, View("chrome", "menu"))


@nav.on_tap("chrome.tabs")
def _open_tabs(s: PhoneState, _: str) -> None:
    nav.navigate(s, View("chrome", "tabs"))


@nav.on_tap("chrome.newtab")
def _new_tab(s: PhoneState, arg: str) -> None:
    nav.new_tab(s, View("chrome", "ntp"), incognito=arg == "1")
    s.back = ()
    nav.navigate(s, View("chrome", "ntp"), push=False)


@nav.on_tap("chrome.tab")
def _switch_tab(s: PhoneState, arg: str) -> None:
    s.tab = int(arg)
    s.back = ()
    nav.navigate(s, s.tabs[s.tab].page, push=False)


@nav.on_tap("chrome.noop")
def _noop(s: PhoneState, _: str) -> None:
    """Menu entries simphone does not model: a tap that changes nothing."""


@nav.on_tap("chrome.go")
def _go(s: PhoneState, site: str) -> None:
    nav.navigate(s, View("chrome", "site", site=site))


@nav.on_submit("chrome.omni")
def _omnibox(s: PhoneState, typed: str) -> None:
    domain = catalog.normalize_domain(typed)
    if domain in ("google.com", "google.co.uk"):
        nav.navigate(s, View("chrome", "ntp"))
    elif domain:
        nav.navigate(s, View("chrome", "site", site=domain))
    else:
        nav.navigate(s, View("chrome", "serp", query=typed))


nav.FIELD_VALUES["chrome.omni"] = lambda s: url_of(s.view)
nav.ENTRIES["chrome"] = lambda s, key: (
    s.current_tab.page if s.current_tab is not None else View("chrome", "ntp")
)
