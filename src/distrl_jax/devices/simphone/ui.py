"""simphone's widget toolkit: themes, bars, fields, scrolling rows and the on-screen keyboard.

All geometry is normalised (y, x) on the portrait 1080×2400 screen. App modules compose screens
from these helpers so that every screen shares one look per theme: a status bar, an app bar
with a back arrow, rows of a fixed height, and a keyboard over the bottom 38% when a field has
focus.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

from distrl_jax.devices.simphone.widgets import Color, Widget

STATUS_BOTTOM = 0.035  # the status bar (time, battery); a swipe down from it opens the shade
BAR_BOTTOM = 0.105  # the app bar below it
try:  # the keyboard's geometry must match what the renderer draws
    from distrl_jax.devices.simphone.render import KEYBOARD_FRACTION
except ImportError:  # pragma: no cover - until render.py exists
    KEYBOARD_FRACTION = 0.35
KEYBOARD_TOP = (
    1.0 - KEYBOARD_FRACTION
)  # the keyboard covers [KEYBOARD_TOP, 1] when a field has focus
ROW_H = 0.08  # one list row
SCROLL_ROWS = 4  # rows one swipe scrolls


@dataclasses.dataclass(frozen=True)
class Theme:
    """The colours of one system theme."""

    name: str
    bg: Color
    surface: Color
    bar: Color
    text: Color
    muted: Color
    accent: Color


THEMES: tuple[Theme, ...] = (
    Theme("light", (245, 245, 245), (255, 255, 255), (232, 234, 237), (32, 33, 36), (128, 134, 139), (26, 115, 232)),
    Theme("dark", (24, 24, 28), (44, 44, 50), (58, 58, 66), (232, 234, 237), (154, 160, 166), (138, 180, 248)),
    Theme("sand", (250, 243, 230), (255, 251, 242), (237, 224, 200), (60, 45, 30), (140, 120, 95), (191, 95, 40)),
    Theme("mint", (232, 246, 240), (248, 255, 252), (200, 232, 218), (20, 60, 45), (90, 130, 115), (0, 137, 99)),
)  # fmt: skip

_WHITE: Color = (255, 255, 255)


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of a list: a label with an optional icon, second line and trailing toggle."""

    label: str
    target: str = ""
    sub: str = ""
    icon: tuple[Color, int] | None = None  # (colour, glyph)
    toggle_target: str = ""
    checked: bool = False


def status_bar(theme: Theme, clock: str) -> Widget:
    """The status bar with the time."""
    return Widget((0.0, 0.0, STATUS_BOTTOM, 1.0), "text", clock, theme.bar, theme.text)


def text(
    box: tuple[float, float, float, float], label: str, theme: Theme, color: Color | None = None
) -> Widget:
    """A line of text (not tappable)."""
    return Widget(box, "text", label, theme.surface if color is None else color, theme.text)


def button(
    box: tuple[float, float, float, float],
    label: str,
    target: str,
    color: Color,
    text_color: Color = _WHITE,
    glyph: int = 0,
) -> Widget:
    """A tappable button."""
    return Widget(box, "button", label, color, text_color, glyph=glyph, target=target)


def app_bar(
    theme: Theme, title: str, color: Color | None = None, back: bool = True
) -> list[Widget]:
    """The bar under the status bar: the screen's title, and a back arrow (target "back")."""
    c = theme.bar if color is None else color
    tc = theme.text if color is None else _WHITE
    # The renderer draws no text on bars: the title is a text widget beside the back arrow.
    out = [
        Widget((STATUS_BOTTOM, 0.0, BAR_BOTTOM, 1.0), "bar", "", c, tc),
        Widget((STATUS_BOTTOM, 0.14 if back else 0.03, BAR_BOTTOM, 0.98), "text", title, c, tc),
    ]
    if back:
        out.append(
            Widget(
                (STATUS_BOTTOM + 0.01, 0.01, BAR_BOTTOM - 0.01, 0.12),
                "button",
                "<",
                c,
                tc,
                target="back",
            )
        )
    return out


def field(
    box: tuple[float, float, float, float],
    field_id: str,
    value: str,
    placeholder: str,
    theme: Theme,
    *,
    focused: bool = False,
) -> Widget:
    """A text field: shows ``value`` (or the placeholder, muted); tapping it focuses it."""
    shown, colour = (value, theme.text) if value or focused else (placeholder, theme.muted)
    return Widget(
        box, "field", shown, theme.surface, colour, target=f"focus:{field_id}", focused=focused
    )


def rows(
    items: Sequence[Row],
    top: float,
    theme: Theme,
    scroll: int,
    *,
    bottom: float = 0.985,
    row_h: float = ROW_H,
) -> tuple[list[Widget], int]:
    """Lay out ``items`` from ``top`` down, skipping ``scroll`` rows; returns (widgets, max_scroll)."""
    fit = max(1, int((bottom - top) / row_h + 1e-9))
    max_scroll = max(0, len(items) - fit)
    start = min(max(scroll, 0), max_scroll)
    out: list[Widget] = []
    for i, item in enumerate(items[start : start + fit]):
        y0 = top + i * row_h
        y1 = y0 + row_h - 0.006
        x0 = 0.04
        if item.icon is not None:
            out.append(
                Widget(
                    (y0 + 0.01, 0.04, y1 - 0.01, 0.16), "icon", "", item.icon[0], glyph=item.icon[1]
                )
            )
            x0 = 0.19
        x1 = 0.8 if item.toggle_target else 0.97
        label_y1 = y1 - 0.025 if item.sub else y1
        out.append(
            Widget(
                (y0, x0, label_y1, x1),
                "item",
                item.label,
                theme.surface,
                theme.text,
                target=item.target,
            )
        )
        if item.sub:
            out.append(Widget((label_y1, x0, y1, x1), "text", item.sub, theme.surface, theme.muted))
        if item.toggle_target:
            tog = (y0 + 0.015, 0.83, y1 - 0.015, 0.96)
            out.append(
                Widget(
                    tog,
                    "toggle",
                    "",
                    theme.accent if item.checked else theme.muted,
                    target=item.toggle_target,
                    checked=item.checked,
                )
            )
    return out, max_scroll


_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


@functools.lru_cache(maxsize=len(THEMES))
def keyboard(theme: Theme) -> tuple[Widget, ...]:
    """The on-screen keyboard's keys, laid out as ``render.keyboard_panel`` draws them.

    A panel that swallows taps, then four rows of equal height: q-p, a-l (offset half a key),
    shift z-m delete, and symbols / space / enter. Widths are in tenths of the screen.
    """
    kc, tc = theme.surface, theme.text
    out = [Widget((KEYBOARD_TOP, 0.0, 1.0, 1.0), "bar", "", theme.bar, tc, target="key:none")]
    row_h = (1.0 - KEYBOARD_TOP) / 4
    layout: list[list[tuple[str, str, float, float]]] = [
        [(c, c, i, 1.0) for i, c in enumerate(_KEY_ROWS[0])],
        [(c, c, 0.5 + i, 1.0) for i, c in enumerate(_KEY_ROWS[1])],
        [("^", "none", 0, 1.5)]
        + [(c, c, 1.5 + i, 1.0) for i, c in enumerate(_KEY_ROWS[2])]
        + [("<", "del", 8.5, 1.5)],
        [("?1", "none", 0, 1.5), ("space", "space", 1.5, 7.0), (">", "enter", 8.5, 1.5)],
    ]
    for r, row in enumerate(layout):
        y0 = KEYBOARD_TOP + r * row_h
        for label, key, offset, span in row:
            color = theme.accent if key == "enter" else kc
            out.append(
                Widget(
                    (
                        y0 + 0.004,
                        offset / 10 + 0.004,
                        y0 + row_h - 0.004,
                        (offset + span) / 10 - 0.004,
                    ),
                    "key",
                    label,
                    color,
                    tc,
                    target=f"key:{key}",
                )
            )
    return tuple(out)
