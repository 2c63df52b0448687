"""The widget: simphone's unit of layout, shared by the screen engine, the renderer and the expert.

A screen is a background colour plus a list of widgets. The engine builds the list from the
phone's state, the renderer draws it into a small RGB array, the scripted expert and the ADB test
server's UI dump read it (as an accessibility tree would), and a tap is resolved by hit-testing
the boxes (topmost, i.e. last in the list, wins).
"""

from __future__ import annotations

import dataclasses

Color = tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Widget:
    """One element of a screen. ``box`` is (y0, x0, y1, x1), normalised to [0, 1]."""

    box: tuple[float, float, float, float]
    kind: str  # "icon" | "button" | "text" | "field" | "item" | "bar" | "key" | "toggle" | "image"
    label: str = ""  # the text drawn (an app's name under its icon, a button's caption, ...)
    color: Color = (200, 200, 200)  # fill colour
    text_color: Color = (20, 20, 20)
    glyph: int = 0  # icon glyph id: a small pictogram that, with the colour, identifies an app
    target: str = ""  # what tapping does, interpreted by the engine ("" = nothing)
    focused: bool = False  # a text field with the keyboard's focus (drawn with a cursor/border)
    checked: bool = False  # a toggle's state

    def contains(self, y: float, x: float) -> bool:
        """Whether normalised point (y, x) falls inside the box."""
        y0, x0, y1, x1 = self.box
        return y0 <= y <= y1 and x0 <= x <= x1

    @property
    def center(self) -> tuple[float, float]:
        """The box's centre (y, x): where an expert taps."""
        y0, x0, y1, x1 = self.box
        return ((y0 + y1) / 2, (x0 + x1) / 2)


@dataclasses.dataclass(frozen=True)
class Screen:
    """A complete screen: what the renderer draws and what a tap is resolved against."""

    name: str  # e.g. "launcher", "chrome.results", "site.product" — for logs, tests, the judge
    widgets: tuple[Widget, ...]
    background: Color = (245, 245, 245)
    keyboard: bool = False  # the on-screen keyboard is up (drawn over the bottom of the screen)

    def hit(self, y: float, x: float) -> Widget | None:
        """The topmost widget with a target under (y, x), or None."""
        for w in reversed(self.widgets):
            if w.target and w.contains(y, x):
                return w
        return None

    def find(self, *, target: str = "", label: str = "", kind: str = "") -> Widget | None:
        """The first widget matching all given fields (empty means any)."""
        for w in self.widgets:
            if (
                (not target or w.target == target)
                and (not label or w.label == label)
                and (not kind or w.kind == kind)
            ):
                return w
        return None
