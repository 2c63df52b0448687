"""Shopping sites in Chrome: any domain is a store with a search box, a results list derived from
the query (seeded count and order), product pages with add-to-cart, and a cart, so sites no task
list names work too."""

from __future__ import annotations

from distrl_jax.devices.simphone import catalog, content, nav
from distrl_jax.devices.simphone.chrome import toolbar
from distrl_jax.devices.simphone.state import PhoneState, View
from distrl_jax.devices.simphone.ui import (
    BAR_BOTTOM,
    Row,
    Theme,
    button,
    field,
    rows,
    text,
)
from distrl_jax.devices.simphone.widgets import Widget

_SITE_TOP = BAR_BOTTOM + 0.065  # below the site's own header


def _site_header(s: PhoneState, theme: Theme, with_search: bool = True) -> list[Widget]:
    v = s.view
    color = catalog.site_color(v.site)
    out = toolbar(s, theme)
    out.append(
        Widget(
            (BAR_BOTTOM, 0.0, _SITE_TOP, 1.0),
            "text",
            catalog.site_name(v.site),
            color,
            (255, 255, 255),
        )
    )
    out.append(
        button(
            (BAR_BOTTOM + 0.01, 0.74, _SITE_TOP - 0.01, 0.97),
            f"Cart ({len(s.cart)})",
            "site.cart",
            color,
            glyph=catalog.glyph("cart"),
        )
    )
    if with_search:
        focused = s.focus == "site.q"
        value = s.text if focused else v.query
        out.append(
            field(
                (_SITE_TOP + 0.01, 0.04, _SITE_TOP + 0.065, 0.96),
                "site.q",
                value,
                f"Search {catalog.site_name(v.site)}",
                theme,
                focused=focused,
            )
        )
    return out


@nav.page("chrome", "site")
def _site_home(s: PhoneState, theme: Theme) -> nav.Page:
    out = _site_header(s, theme)
    out.append(
        text((_SITE_TOP + 0.08, 0.04, _SITE_TOP + 0.12, 0.96), "Today's deals", theme, theme.bg)
    )
    items = [
        Row(p.name, f"site.promo:{i}", sub=p.price)
        for i, p in enumerate(content.promos(s.seed, s.view.site))
    ]
    widgets, max_scroll = rows(items, _SITE_TOP + 0.13, theme, s.scroll, row_h=0.1)
    return nav.Page(out + widgets, max_scroll)


@nav.page("chrome", "site_results")
def _site_results(s: PhoneState, theme: Theme) -> nav.Page:
    v = s.view
    found = content.products(s.seed, v.site, v.query)
    out = _site_header(s, theme)
    out.append(
        text(
            (_SITE_TOP + 0.075, 0.04, _SITE_TOP + 0.11, 0.96),
            f'{len(found)} results for "{v.query}"',
            theme,
            theme.bg,
        )
    )
    items = [
        Row(p.name, f"site.product:{i}", sub=p.price, icon=((200, 200, 205), catalog.glyph("bag")))
        for i, p in enumerate(found)
    ]
    widgets, max_scroll = rows(items, _SITE_TOP + 0.12, theme, s.scroll, row_h=0.1)
    return nav.Page(out + widgets, max_scroll)


@nav.page("chrome", "site_product")
def _site_product(s: PhoneState, theme: Theme) -> nav.Page:
    v = s.view
    listing = (
        content.promos(s.seed, v.site) if not v.query else content.products(s.seed, v.site, v.query)
    )
    price = listing[v.index].price if 0 <= v.index < len(listing) else ""
    color = catalog.site_color(v.site)
    in_cart = v.name in s.cart
    out = _site_header(s, theme)
    out += [
        Widget(
            (_SITE_TOP + 0.08, 0.2, _SITE_TOP + 0.3, 0.8),
            "image",
            "",
            (210, 210, 215),
            glyph=catalog.glyph("bag"),
        ),
        Widget(
            (_SITE_TOP + 0.32, 0.04, _SITE_TOP + 0.38, 0.96), "text", v.name, theme.bg, theme.text
        ),
        Widget(
            (_SITE_TOP + 0.39, 0.04, _SITE_TOP + 0.43, 0.5), "text", price, theme.bg, theme.text
        ),
        button(
            (_SITE_TOP + 0.46, 0.06, _SITE_TOP + 0.52, 0.94),
            "Added to cart" if in_cart else "Add to cart",
            "site.add",
            (80, 80, 80) if in_cart else color,
        ),
        button(
            (_SITE_TOP + 0.54, 0.06, _SITE_TOP + 0.6, 0.94),
            "Buy now",
            "site.cart",
            (255, 164, 28),
            (20, 20, 20),
        ),
    ]
    return nav.Page(out)


@nav.page("chrome", "site_cart")
def _site_cart(s: PhoneState, theme: Theme) -> nav.Page:
    out = _site_header(s, theme, with_search=False)
    out.append(
        text(
            (_SITE_TOP + 0.01, 0.04, _SITE_TOP + 0.06, 0.96),
            f"Cart: {len(s.cart)} item(s)",
            theme,
            theme.bg,
        )
    )
    widgets, max_scroll = rows(
        [Row(n) for n in s.cart], _SITE_TOP + 0.07, theme, s.scroll, bottom=0.88
    )
    out += widgets
    if s.cart:
        out.append(
            button(
                (0.9, 0.06, 0.96, 0.94), "Checkout", "chrome.noop", catalog.site_color(s.view.site)
            )
        )
    return nav.Page(out, max_scroll)


@nav.on_tap("site.product")
def _open_product(s: PhoneState, arg: str) -> None:
    v, i = s.view, int(arg)
    nav.navigate(
        s,
        View(
            "chrome",
            "site_product",
            query=v.query,
            site=v.site,
            index=i,
            name=content.products(s.seed, v.site, v.query)[i].name,
        ),
    )


@nav.on_tap("site.promo")
def _open_promo(s: PhoneState, arg: str) -> None:
    v, i = s.view, int(arg)
    nav.navigate(
        s,
        View(
            "chrome",
            "site_product",
            site=v.site,
            index=i,
            name=content.promos(s.seed, v.site)[i].name,
        ),
    )


@nav.on_tap("site.add")
def _add_to_cart(s: PhoneState, _: str) -> None:
    if s.view.name not in s.cart:
        s.cart = (*s.cart, s.view.name)


@nav.on_tap("site.cart")
def _open_cart(s: PhoneState, _: str) -> None:
    nav.navigate(s, View("chrome", "site_cart", site=s.view.site))


@nav.on_submit("site.q")
def _site_search(s: PhoneState, typed: str) -> None:
    nav.navigate(s, View("chrome", "site_results", site=s.view.site, query=typed))


nav.FIELD_VALUES["site.q"] = lambda s: s.view.query if s.view.page == "site_results" else ""
