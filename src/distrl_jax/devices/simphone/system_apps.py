"""The Play Store (search, an app's page with Install/Open/Uninstall), Gmail (inbox, messages),
the generic app every other name gets (a titled list whose rows open detail pages), and
installing/uninstalling apps."""

from __future__ import annotations

from distrl_jax.devices.simphone import catalog, content, nav
from distrl_jax.devices.simphone.launcher import add_to_layout, remove_from_layout
from distrl_jax.devices.simphone.state import PhoneState, View
from distrl_jax.devices.simphone.ui import (
    BAR_BOTTOM,
    Row,
    Theme,
    app_bar,
    button,
    field,
    rows,
    text,
)
from distrl_jax.devices.simphone.widgets import Widget


def install(s: PhoneState, name: str) -> None:
    """Install app ``name`` (a no-op if an app with its key is installed) and add its icon."""
    key = catalog.app_key(name)
    if any(catalog.app_key(n) == key for n in s.installed):
        return
    shown = catalog.display_name(name)
    s.installed = tuple(sorted((*s.installed, shown), key=str.lower))
    s.layout = add_to_layout(s.layout, shown)


def uninstall(s: PhoneState, name: str) -> None:
    """Remove app ``name`` and its icons (system apps cannot be removed)."""
    key = catalog.app_key(name)
    if key in catalog.SYSTEM_KEYS:
        return
    for n in [n for n in s.installed if catalog.app_key(n) == key]:
        s.installed = tuple(x for x in s.installed if x != n)
        s.layout = remove_from_layout(s.layout, n)


def installed_name(s: PhoneState, key: str) -> str:
    """The display name of the installed app with ``key`` ("" if none)."""
    return next((n for n in s.installed if catalog.app_key(n) == key), "")


# ---------------------------------------------------------------- Play Store

_PLAY = (1, 135, 95)
PLAY_KEY = "play store"  # the Play Store's app key (its screen kind is "playstore")


def _play_field(s: PhoneState, theme: Theme) -> Widget:
    focused = s.focus == "play.q"
    return field(
        (BAR_BOTTOM - 0.06, 0.04, BAR_BOTTOM, 0.96),
        "play.q",
        s.text if focused else s.view.query,
        "Search for apps & games",
        theme,
        focused=focused,
    )


@nav.page("playstore", "home")
def _play_home(s: PhoneState, theme: Theme) -> nav.Page:
    top = content.rng(s.seed, "charts").sample([a.name for a in catalog.THIRD_PARTY_APPS], 8)
    items = [Row(n, f"play.app:{n}", sub="Top free", icon=catalog.icon_of(n)) for n in top]
    widgets, max_scroll = rows(items, BAR_BOTTOM + 0.08, theme, s.scroll)
    tabs = [
        button(
            (BAR_BOTTOM + 0.01, 0.04 + i * 0.31, BAR_BOTTOM + 0.06, 0.31 + i * 0.31),
            t,
            "play.noop",
            theme.surface,
            _PLAY,
        )
        for i, t in enumerate(("For you", "Top charts", "Kids"))
    ]
    return nav.Page([_play_field(s, theme), *tabs, *widgets], max_scroll)


@nav.page("playstore", "results")
def _play_results(s: PhoneState, theme: Theme) -> nav.Page:
    names = content.store_results(s.seed, s.view.query)
    keys = {catalog.app_key(n) for n in s.installed}
    items = [
        Row(
            n,
            f"play.app:{n}",
            sub="Installed" if catalog.app_key(n) in keys else "4.3* - Free",
            icon=catalog.icon_of(n),
        )
        for n in names
    ]
    widgets, max_scroll = rows(items, BAR_BOTTOM + 0.02, theme, s.scroll, row_h=0.1)
    return nav.Page([_play_field(s, theme), *widgets], max_scroll)


@nav.page("playstore", "app")
def _play_app(s: PhoneState, theme: Theme) -> nav.Page:
    name = s.view.name
    color, glyph = catalog.icon_of(name)
    have = installed_name(s, catalog.app_key(name))
    out = [
        *app_bar(theme, ""),
        Widget((BAR_BOTTOM + 0.02, 0.05, BAR_BOTTOM + 0.1, 0.25), "icon", "", color, glyph=glyph),
    ]
    out.append(
        text(
            (BAR_BOTTOM + 0.02, 0.3, BAR_BOTTOM + 0.07, 0.96),
            catalog.display_name(name),
            theme,
            theme.bg,
        )
    )
    out.append(
        Widget(
            (BAR_BOTTOM + 0.07, 0.3, BAR_BOTTOM + 0.1, 0.96),
            "text",
            "Contains ads - In-app purchases",
            theme.bg,
            theme.muted,
        )
    )
    if have:
        removable = catalog.app_key(name) not in catalog.SYSTEM_KEYS
        out.append(
            button(
                (BAR_BOTTOM + 0.13, 0.04, BAR_BOTTOM + 0.19, 0.48),
                "Uninstall",
                f"play.uninstall:{name}" if removable else "play.noop",
                theme.surface,
                _PLAY,
            )
        )
        out.append(
            button((BAR_BOTTOM + 0.13, 0.52, BAR_BOTTOM + 0.19, 0.96), "Open", f"app:{have}", _PLAY)
        )
    else:
        out.append(
            button(
                (BAR_BOTTOM + 0.13, 0.04, BAR_BOTTOM + 0.19, 0.96),
                "Install",
                f"play.install:{name}",
                _PLAY,
            )
        )
    out.append(
        Widget(
            (BAR_BOTTOM + 0.22, 0.04, BAR_BOTTOM + 0.5, 0.96),
            "image",
            "",
            (220, 225, 230),
            glyph=glyph,
        )
    )
    return nav.Page(out)


@nav.on_tap("play.app")
def _play_open_app(s: PhoneState, name: str) -> None:
    nav.navigate(s, View(PLAY_KEY, "app", name=name))


@nav.on_tap("play.install")
def _play_install(s: PhoneState, name: str) -> None:
    install(s, name)


@nav.on_tap("play.uninstall")
def _play_uninstall(s: PhoneState, name: str) -> None:
    uninstall(s, name)


@nav.on_tap("play.noop")
def _play_noop(s: PhoneState, _: str) -> None:
    """Tabs simphone does not model."""


@nav.on_submit("play.q")
def _play_search(s: PhoneState, typed: str) -> None:
    nav.navigate(s, View(PLAY_KEY, "results", query=typed))


nav.ENTRIES["playstore"] = lambda s, key: View(PLAY_KEY, "home")

# ---------------------------------------------------------------- Gmail

_GMAIL = (234, 67, 53)


@nav.page("gmail", "inbox")
def _gmail_inbox(s: PhoneState, theme: Theme) -> nav.Page:
    mails = content.emails(s.seed)
    out = [
        Widget(
            (BAR_BOTTOM - 0.06, 0.04, BAR_BOTTOM, 0.96),
            "field",
            "Search in mail",
            theme.surface,
            theme.muted,
        ),
        text((BAR_BOTTOM + 0.01, 0.04, BAR_BOTTOM + 0.05, 0.5), "Primary", theme, theme.bg),
    ]
    items = [
        Row(sender, f"gmail.mail:{i}", sub=subject, icon=(_GMAIL, catalog.glyph("person")))
        for i, (sender, subject) in enumerate(mails)
    ]
    widgets, max_scroll = rows(items, BAR_BOTTOM + 0.06, theme, s.scroll, row_h=0.1, bottom=0.9)
    out += widgets
    out.append(
        button(
            (0.91, 0.6, 0.97, 0.96),
            "Compose",
            "gmail.noop",
            (194, 231, 255),
            (0, 29, 53),
            glyph=catalog.glyph("note"),
        )
    )
    return nav.Page(out, max_scroll)


@nav.page("gmail", "mail")
def _gmail_mail(s: PhoneState, theme: Theme) -> nav.Page:
    sender, subject = content.emails(s.seed)[s.view.index]
    out = [
        *app_bar(theme, ""),
        text((BAR_BOTTOM + 0.02, 0.04, BAR_BOTTOM + 0.08, 0.96), subject, theme, theme.bg),
    ]
    out.append(
        Widget(
            (BAR_BOTTOM + 0.09, 0.04, BAR_BOTTOM + 0.13, 0.96),
            "text",
            sender,
            theme.bg,
            theme.muted,
        )
    )
    out += [
        button(
            (0.85, 0.04 + i * 0.48, 0.91, 0.48 + i * 0.48),
            label,
            "gmail.noop",
            theme.surface,
            theme.text,
        )
        for i, label in enumerate(("Reply", "Forward"))
    ]
    return nav.Page(out)


@nav.on_tap("gmail.mail")
def _gmail_open(s: PhoneState, arg: str) -> None:
    nav.navigate(s, View("gmail", "mail", index=int(arg)))


@nav.on_tap("gmail.noop")
def _gmail_noop(s: PhoneState, _: str) -> None:
    """Compose/Reply/Forward: a tap that changes nothing."""


nav.ENTRIES["gmail"] = lambda s, key: View("gmail", "inbox")

# ---------------------------------------------------------------- any other app


@nav.page("generic", "main")
def _generic_main(s: PhoneState, theme: Theme) -> nav.Page:
    key = s.view.app
    name = installed_name(s, key) or catalog.display_name(key)
    color, glyph = catalog.icon_of(name)
    items = [
        Row(t, f"generic.item:{i}", icon=(color, glyph) if i == 0 else None)
        for i, t in enumerate(content.app_items(s.seed, key))
    ]
    widgets, max_scroll = rows(items, BAR_BOTTOM + 0.01, theme, s.scroll)
    return nav.Page(app_bar(theme, name, color) + widgets, max_scroll)


@nav.page("generic", "detail")
def _generic_detail(s: PhoneState, theme: Theme) -> nav.Page:
    color, _ = catalog.icon_of(s.view.app)
    out = [
        *app_bar(theme, s.view.name, color),
        Widget(
            (BAR_BOTTOM + 0.03, 0.1, BAR_BOTTOM + 0.3, 0.9),
            "image",
            "",
            (220, 222, 226),
            glyph=catalog.glyph("doc"),
        ),
    ]
    out.append(
        text((BAR_BOTTOM + 0.32, 0.04, BAR_BOTTOM + 0.37, 0.96), s.view.name, theme, theme.bg)
    )
    return nav.Page(out)


@nav.on_tap("generic.item")
def _generic_item(s: PhoneState, arg: str) -> None:
    i = int(arg)
    nav.navigate(
        s, View(s.view.app, "detail", index=i, name=content.app_items(s.seed, s.view.app)[i])
    )
