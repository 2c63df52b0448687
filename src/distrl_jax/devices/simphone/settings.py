"""Settings: a searchable list; Apps -> See all apps -> an app's info page with its Notifications
switch (and Open/Uninstall); App notifications, a list of every app's switch."""

from __future__ import annotations

from distrl_jax.devices.simphone import catalog, content, nav
from distrl_jax.devices.simphone.state import PhoneState, View
from distrl_jax.devices.simphone.system_apps import uninstall
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

_SETTINGS = (
    "Network & internet", "Connected devices", "Apps", "Notifications", "Battery", "Storage",
    "Sound & vibration", "Display", "Wallpaper & style", "Accessibility", "Security", "Privacy",
    "Location", "Safety & emergency", "Passwords & accounts", "Google", "System", "About phone",
)  # fmt: skip
_SETTINGS_TARGET = {"Apps": "settings.page:apps", "Notifications": "settings.page:notifications"}


def _app_rows(s: PhoneState, names: list[str]) -> list[Row]:
    return [Row(n, f"settings.app:{n}", icon=catalog.icon_of(n)) for n in names]


@nav.page("settings", "home")
def _settings_home(s: PhoneState, theme: Theme) -> nav.Page:
    focused = s.focus == "settings.q"
    out = [
        *app_bar(theme, "Settings", back=False),
        field(
            (BAR_BOTTOM + 0.01, 0.04, BAR_BOTTOM + 0.065, 0.96),
            "settings.q",
            s.text if focused else "",
            "Search settings",
            theme,
            focused=focused,
        ),
    ]
    q = s.text.lower().strip() if focused else ""
    if q:  # live search over settings and apps, as Android's settings search does
        items = [
            Row(n, _SETTINGS_TARGET.get(n, f"settings.page:{n}"))
            for n in _SETTINGS
            if q in n.lower()
        ]
        items += _app_rows(s, [n for n in s.installed if q in n.lower()])
    else:
        items = [Row(n, _SETTINGS_TARGET.get(n, f"settings.page:{n}")) for n in _SETTINGS]
    widgets, max_scroll = rows(items, BAR_BOTTOM + 0.08, theme, s.scroll)
    return nav.Page(out + widgets, max_scroll)


@nav.page("settings", "apps")
def _settings_apps(s: PhoneState, theme: Theme) -> nav.Page:
    recent = content.rng(s.seed, "recent").sample(list(s.installed), min(3, len(s.installed)))
    items = [Row("Recently opened apps", "")]
    items += _app_rows(s, recent)
    items.append(Row(f"See all {len(s.installed)} apps", "settings.page:all_apps"))
    items += [
        Row(n, f"settings.page:{n}")
        for n in ("Default apps", "Screen time", "Unused apps", "Special app access")
    ]
    widgets, max_scroll = rows(items, BAR_BOTTOM + 0.01, theme, s.scroll)
    return nav.Page(app_bar(theme, "Apps") + widgets, max_scroll)


@nav.page("settings", "all_apps")
def _settings_all_apps(s: PhoneState, theme: Theme) -> nav.Page:
    focused = s.focus == "settings.appq"
    q = s.text.lower().strip() if focused else ""
    names = [n for n in s.installed if q in n.lower()] if q else list(s.installed)
    out = [
        *app_bar(theme, "All apps"),
        field(
            (BAR_BOTTOM + 0.01, 0.04, BAR_BOTTOM + 0.065, 0.96),
            "settings.appq",
            s.text if focused else "",
            "Search apps",
            theme,
            focused=focused,
        ),
    ]
    widgets, max_scroll = rows(_app_rows(s, names), BAR_BOTTOM + 0.08, theme, s.scroll)
    return nav.Page(out + widgets, max_scroll)


@nav.page("settings", "app_info")
def _settings_app_info(s: PhoneState, theme: Theme) -> nav.Page:
    name = s.view.name
    key = catalog.app_key(name)
    color, glyph = catalog.icon_of(name)
    out = [
        *app_bar(theme, "App info"),
        Widget((BAR_BOTTOM + 0.02, 0.4, BAR_BOTTOM + 0.09, 0.6), "icon", "", color, glyph=glyph),
    ]
    out.append(text((BAR_BOTTOM + 0.1, 0.1, BAR_BOTTOM + 0.15, 0.9), name, theme, theme.bg))
    removable = key not in catalog.SYSTEM_KEYS
    for i, (label, target) in enumerate(
        (
            ("Open", f"app:{name}"),
            ("Uninstall", f"settings.uninstall:{name}" if removable else "settings.noop"),
            ("Force stop", "settings.noop"),
        )
    ):
        x0 = 0.04 + i * 0.32
        out.append(
            button(
                (BAR_BOTTOM + 0.17, x0, BAR_BOTTOM + 0.23, x0 + 0.28),
                label,
                target,
                theme.surface,
                theme.accent if target != "settings.noop" or label == "Force stop" else theme.muted,
            )
        )
    on = key not in s.notif_off
    items = [
        Row(
            "Notifications",
            f"settings.notif:{name}",
            sub="On" if on else "Off",
            toggle_target=f"settings.notif:{name}",
            checked=on,
        )
    ]
    items += [
        Row(n, "settings.noop")
        for n in (
            "Permissions",
            "Storage & cache",
            "Mobile data & Wi-Fi",
            "Screen time",
            "Battery",
            "Open by default",
        )
    ]
    widgets, max_scroll = rows(items, BAR_BOTTOM + 0.25, theme, s.scroll)
    return nav.Page(out + widgets, max_scroll)


@nav.page("settings", "notifications")
def _settings_notifications(s: PhoneState, theme: Theme) -> nav.Page:
    items = [
        Row(
            n,
            f"settings.app:{n}",
            icon=catalog.icon_of(n),
            toggle_target=f"settings.notif:{n}",
            checked=catalog.app_key(n) not in s.notif_off,
        )
        for n in s.installed
    ]
    widgets, max_scroll = rows(items, BAR_BOTTOM + 0.01, theme, s.scroll)
    return nav.Page(app_bar(theme, "App notifications") + widgets, max_scroll)


@nav.page("settings", "sub")
def _settings_sub(s: PhoneState, theme: Theme) -> nav.Page:
    r = content.rng(s.seed, "settings", s.view.name)
    items = [
        Row(
            f"{s.view.name} option {i + 1}",
            "settings.noop",
            toggle_target="settings.noop",
            checked=r.random() < 0.5,
        )
        for i in range(r.randint(3, 7))
    ]
    widgets, _ = rows(items, BAR_BOTTOM + 0.01, theme, 0)
    return nav.Page(app_bar(theme, s.view.name) + widgets)


@nav.on_tap("settings.page")
def _settings_page(s: PhoneState, arg: str) -> None:
    known = {"apps": "apps", "all_apps": "all_apps", "notifications": "notifications"}
    nav.navigate(
        s, View("settings", known[arg]) if arg in known else View("settings", "sub", name=arg)
    )


@nav.on_tap("settings.app")
def _settings_app(s: PhoneState, name: str) -> None:
    nav.navigate(s, View("settings", "app_info", name=name))


@nav.on_tap("settings.notif")
def _settings_notif(s: PhoneState, name: str) -> None:
    s.notif_off = s.notif_off ^ {catalog.app_key(name)}


@nav.on_tap("settings.uninstall")
def _settings_uninstall(s: PhoneState, name: str) -> None:
    uninstall(s, name)
    nav.go_back(s)


@nav.on_tap("settings.noop")
def _settings_noop(s: PhoneState, _: str) -> None:
    """Settings simphone does not model: a tap that changes nothing."""


@nav.on_submit("settings.q")
def _settings_search(s: PhoneState, typed: str) -> None:
    q = typed.lower()
    match = [n for n in s.installed if q in n.lower()]
    if match:  # ENTER opens the top app result
        nav.navigate(s, View("settings", "app_info", name=match[0]))


nav.ENTRIES["settings"] = lambda s, key: View("settings", "home")
