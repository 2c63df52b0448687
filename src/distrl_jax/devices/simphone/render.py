"""simphone's renderer: a ``Screen`` (background + widgets) → a small [H, W, 3] uint8 RGB array.

Speed matters: the phone must reach thousands of steps a second on one core with rendering
included. Three caches make that cheap:

* whole screens: ``render_screen`` is memoised on (screen, size) — Screen is frozen and hashable,
  and a phone revisits the same screens constantly;
* widgets: each widget is rasterised once per size into a pixel patch covering its box, so a new
  screen made of already-seen widgets costs one slice assignment per widget;
* text: per-string glyph masks (see ``font.text_mask``) and icon masks (``glyphs.glyph_mask``).

Arrays returned are shared with the cache and marked read-only; copy one before modifying it.

Sizes are (height, width) like the array shape; the default (128, 64) is a portrait phone. Text
and the keyboard scale up by an integer factor on larger screens (2× at (256, 128)).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from distrl_jax.devices.simphone import font, glyphs
from distrl_jax.devices.simphone.widgets import Color, Screen, Widget

DEFAULT_SIZE: tuple[int, int] = (128, 64)
MIN_SIZE: tuple[int, int] = (32, 16)
KEYBOARD_FRACTION = 0.35  # share of the screen height the on-screen keyboard covers

TEXT_KINDS = frozenset({"text", "item", "button", "field"})
FILL_KINDS = frozenset({"bar", "image"})
WIDGET_KINDS = TEXT_KINDS | FILL_KINDS | {"icon", "key", "toggle"}

FOCUS_BORDER: Color = (30, 30, 30)
TOGGLE_ON: Color = (40, 160, 80)
TOGGLE_OFF: Color = (125, 125, 125)
KEYBOARD_PANEL: Color = (206, 209, 215)
KEYBOARD_KEY: Color = (252, 252, 252)
KEYBOARD_SPECIAL_KEY: Color = (172, 177, 188)
KEYBOARD_ENTER_KEY: Color = (60, 120, 220)
KEYBOARD_LABEL: Color = (40, 40, 40)
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    """Validate ``size`` as (height, width) ints of at least MIN_SIZE."""
    ok = (
        isinstance(size, tuple | list)
        and len(size) == 2
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in size)
    )
    if not ok:
        raise ValueError(f"render size must be a (height, width) pair of ints, got {size!r}")
    height, width = int(size[0]), int(size[1])
    if height < MIN_SIZE[0] or width < MIN_SIZE[1]:
        raise ValueError(
            f"render size {size!r} is too small: height must be >= {MIN_SIZE[0]} and width "
            f">= {MIN_SIZE[1]} (size is (height, width), default {DEFAULT_SIZE})"
        )
    return height, width


def text_scale(height: int, width: int) -> int:
    """Integer scale of text and keyboard labels for a screen: 1 at (128, 64), 2 at (256, 128)."""
    return max(1, min(height // DEFAULT_SIZE[0], width // DEFAULT_SIZE[1]))


def pixel_box(
    box: tuple[float, float, float, float], height: int, width: int
) -> tuple[int, int, int, int] | None:
    """Normalised (y0, x0, y1, x1) → pixel bounds [y0, y1) × [x0, x1), at least 1 px each way.

    Parts off the screen are clipped; a box entirely off the screen gives None.
    """
    y0, x0, y1, x1 = box
    if y1 < y0 or x1 < x0:
        raise ValueError(f"widget box {box!r} is reversed: need y0 <= y1 and x0 <= x1")
    if y0 >= 1.0 or x0 >= 1.0 or y1 < 0.0 or x1 < 0.0:
        return None
    top, bottom = _span(y0, y1, height)
    left, right = _span(x0, x1, width)
    return top, left, bottom, right


def _span(lo: float, hi: float, n: int) -> tuple[int, int]:
    a = min(max(math.floor(lo * n + 0.5), 0), n - 1)
    b = min(max(math.floor(hi * n + 0.5), a + 1), n)
    return a, b


def _check_color(field: str, color: Color) -> bytes:
    """``color`` as 3 bytes, or a ValueError naming ``field`` when it is not an RGB triple."""
    try:
        raw = bytes(color)
    except (TypeError, ValueError):
        raw = b""
    if len(raw) != 3:
        raise ValueError(f"{field} {color!r} must be three ints in 0..255 (R, G, B)")
    return raw


def _filled(color: Color, height: int, width: int, field: str = "color") -> np.ndarray:
    """A new [height, width, 3] uint8 array of one colour.

    Built from bytes because numpy broadcasting of a 3-vector over a small trailing axis is
    ~20× slower than this for a full screen.
    """
    raw = _check_color(field, color) * (height * width)
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3).copy()


def contrast_color(color: Color) -> Color:
    """Near-black on light colours, near-white on dark ones (for glyphs drawn on a fill)."""
    r, g, b = color
    return (25, 25, 25) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (250, 250, 250)


def _draw_mask(patch: np.ndarray, mask: np.ndarray, top: int, left: int, color: Color) -> None:
    """Paint ``color`` where ``mask`` is set, with its top-left at (top, left), clipped to patch."""
    h, w = patch.shape[:2]
    mh, mw = mask.shape
    t0, l0 = max(0, -top), max(0, -left)
    t1, l1 = min(mh, h - top), min(mw, w - left)
    if t1 <= t0 or l1 <= l0:
        return
    region = patch[top + t0 : top + t1, left + l0 : left + l1]
    np.copyto(region, np.asarray(color, dtype=np.uint8), where=mask[t0:t1, l0:l1, None])


def _draw_text(
    patch: np.ndarray,
    text: str,
    color: Color,
    scale: int,
    *,
    left: int,
    right: int,
    center: bool = False,
    tail: bool = False,
) -> int:
    """Draw as much of ``text`` as fits in columns [left, right), vertically centred.

    ``tail`` keeps the end of an over-long string instead of its start (a field scrolled to its
    cursor). Returns the column just after the last character drawn.
    """
    n = min(len(text), font.chars_that_fit(right - left, scale))
    if n <= 0:
        return left
    shown = text[len(text) - n :] if tail else text[:n]
    mask = font.text_mask(shown, scale)
    x = left + (right - left - mask.shape[1]) // 2 if center else left
    top = (patch.shape[0] - mask.shape[0]) // 2  # negative when the box is shorter: clipped
    _draw_mask(patch, mask, top, x, color)
    return x + mask.shape[1]


def _draw_icon(patch: np.ndarray, widget: Widget, scale: int) -> None:
    h, w = patch.shape[:2]
    ink = contrast_color(widget.color)
    line = font.CELL_H * scale
    glyph_h = h
    # The label goes in the bottom text line only if the pictogram keeps most of the box.
    if widget.label and h - line >= max(font.CELL_H * scale, h // 2):
        glyph_h = h - line
        _draw_text(patch[glyph_h:], widget.label, ink, scale, left=0, right=w, center=True)
    margin = 1 if min(glyph_h, w) >= 6 else 0
    side = max(1, min(glyph_h, w) - 2 * margin)
    mask = glyphs.glyph_mask(widget.glyph % glyphs.NUM_GLYPHS, side, side)
    _draw_mask(patch, mask, (glyph_h - side) // 2, (w - side) // 2, ink)


def _draw_toggle(patch: np.ndarray, widget: Widget, scale: int) -> None:
    h, w = patch.shape[:2]
    sw = w
    if widget.label and w >= 3 * h:  # a settings row: caption left, switch at the right end
        sw = min(w, 2 * h)
        _draw_text(patch, widget.label, widget.text_color, scale, left=scale, right=w - sw)
    inset = 1 if min(h, sw // 2) >= 4 else 0
    knob = max(1, min(h, sw // 2) - 2 * inset)
    top = (h - knob) // 2
    left = w - inset - knob if widget.checked else w - sw + inset
    patch[top : top + knob, left : left + knob] = TOGGLE_ON if widget.checked else TOGGLE_OFF


def _draw_field(patch: np.ndarray, widget: Widget, scale: int) -> None:
    h, w = patch.shape[:2]
    if not widget.focused:
        _draw_text(patch, widget.label, widget.text_color, scale, left=scale, right=w)
        return
    patch[[0, -1], :] = FOCUS_BORDER
    patch[:, [0, -1]] = FOCUS_BORDER
    inner_left, inner_right = 1 + scale, w - 1
    # Keep room for the cursor after the text; show the end of the text, where typing happens.
    end = _draw_text(
        patch,
        widget.label,
        widget.text_color,
        scale,
        left=inner_left,
        right=inner_right - 3 * scale,  # the cursor plus a gap before the border
        tail=True,
    )
    cursor_x = min(end + scale if widget.label else inner_left, max(inner_right - scale, 1))
    cursor_h = min(font.GLYPH_H * scale + 2, max(h - 2, 1))
    top = (h - cursor_h) // 2
    patch[top : top + cursor_h, cursor_x : cursor_x + scale] = widget.text_color


@functools.lru_cache(maxsize=8192)  # patches average ~1 KB at 128×64: ~8 MB at most
def widget_patch(widget: Widget, height: int, width: int) -> tuple[int, int, np.ndarray] | None:
    """Rasterise one widget for a (height, width) screen → (top, left, read-only patch) or None.

    The patch covers the widget's whole pixel box (None when the box is off the screen). Cached
    per (widget, size) so screens made of already-seen widgets render with slice copies only.
    """
    if widget.kind not in WIDGET_KINDS:
        raise ValueError(
            f"widget kind {widget.kind!r} (label {widget.label!r}) is not drawable; "
            f"allowed kinds: {sorted(WIDGET_KINDS)}"
        )
    _check_color("text_color", widget.text_color)
    bounds = pixel_box(widget.box, height, width)
    if bounds is None:
        return None
    y0, x0, y1, x1 = bounds
    patch = _filled(widget.color, y1 - y0, x1 - x0)
    scale = text_scale(height, width)
    kind = widget.kind
    if kind == "icon":
        _draw_icon(patch, widget, scale)
    elif kind == "toggle":
        _draw_toggle(patch, widget, scale)
    elif kind == "field":
        _draw_field(patch, widget, scale)
    elif kind == "key":
        _draw_text(
            patch, widget.label, widget.text_color, scale, left=0, right=x1 - x0, center=True
        )
    elif kind in TEXT_KINDS:
        _draw_text(patch, widget.label, widget.text_color, scale, left=scale, right=x1 - x0)
    patch.flags.writeable = False
    return y0, x0, patch


@functools.lru_cache(maxsize=64)
def keyboard_panel(height: int, width: int) -> tuple[int, np.ndarray]:
    """The on-screen keyboard for a (height, width) screen → (top row, read-only [h, W, 3] panel).

    A grey panel over the bottom KEYBOARD_FRACTION of the screen with a QWERTY grid of keys and a
    bottom row (symbols, space, enter); letters are drawn when the keys are big enough.
    """
    panel_h = max(4, round(KEYBOARD_FRACTION * height))
    panel = _filled(KEYBOARD_PANEL, panel_h, width)
    scale = text_scale(height, width)
    gap = scale
    row_edges = np.linspace(gap, panel_h, 5).round().astype(int)
    key_w = (width - gap) / 10
    # Per row: (label, left offset in key widths, width in key widths, key colour).
    rows: list[list[tuple[str, float, float, Color]]] = [
        [(c, i, 1.0, KEYBOARD_KEY) for i, c in enumerate(_KEYBOARD_ROWS[0])],
        [(c, 0.5 + i, 1.0, KEYBOARD_KEY) for i, c in enumerate(_KEYBOARD_ROWS[1])],
        [("^", 0, 1.5, KEYBOARD_SPECIAL_KEY)]
        + [(c, 1.5 + i, 1.0, KEYBOARD_KEY) for i, c in enumerate(_KEYBOARD_ROWS[2])]
        + [("<", 8.5, 1.5, KEYBOARD_SPECIAL_KEY)],
        [
            ("?1", 0, 1.5, KEYBOARD_SPECIAL_KEY),
            (" ", 1.5, 7.0, KEYBOARD_KEY),
            (">", 8.5, 1.5, KEYBOARD_ENTER_KEY),
        ],
    ]
    for r, row in enumerate(rows):
        top, bottom = row_edges[r], row_edges[r + 1] - gap
        for label, offset, span, color in row:
            left = gap + round(offset * key_w)
            right = gap + round((offset + span) * key_w) - gap
            if bottom <= top or right <= left:
                continue
            key = panel[top:bottom, left:right]
            key[:] = color
            if key.shape[0] >= font.GLYPH_H * scale and label.strip():
                _draw_text(
                    key, label, KEYBOARD_LABEL, scale, left=0, right=right - left, center=True
                )
    panel.flags.writeable = False
    return height - panel_h, panel


# 1024 screens at 128×64 hold ~25 MB; a screen not in the cache costs only ~20–40 µs to redraw
# from cached widget patches, so a bigger cache would buy little for its memory.
SCREEN_CACHE_SIZE = 1024


@functools.lru_cache(maxsize=SCREEN_CACHE_SIZE)
def _render_cached(screen: Screen, height: int, width: int) -> np.ndarray:
    canvas = _filled(screen.background, height, width, field="background")
    for widget in screen.widgets:
        placed = widget_patch(widget, height, width)
        if placed is not None:
            y0, x0, patch = placed
            canvas[y0 : y0 + patch.shape[0], x0 : x0 + patch.shape[1]] = patch
    if screen.keyboard:
        top, panel = keyboard_panel(height, width)
        canvas[top:] = panel
    canvas.flags.writeable = False
    return canvas


def render_screen(screen: Screen, size: tuple[int, int] = DEFAULT_SIZE) -> np.ndarray:
    """Draw ``screen`` as a read-only [height, width, 3] uint8 array; ``size`` is (height, width).

    Rendering the same (equal) screen at the same size again returns the cached array.
    Raises ValueError for sizes below MIN_SIZE, unknown widget kinds and reversed boxes.
    """
    height, width = _check_size(size)
    return _render_cached(screen, height, width)


def clear_render_caches() -> None:
    """Drop every cached screen, widget patch and keyboard panel (for tests and benchmarks)."""
    _render_cached.cache_clear()
    widget_patch.cache_clear()
    keyboard_panel.cache_clear()


def save_png(array: np.ndarray, path: str | Path, *, scale: int = 1) -> Path:
    """Write an [H, W, 3] uint8 screen to a PNG (nearest-neighbour enlarged ``scale``×); debugging aid."""
    from PIL import Image  # imported lazily: only debugging needs pillow

    arr = np.asarray(array)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"save_png needs an [H, W, 3] uint8 array, got {arr.shape} {arr.dtype}")
    if scale < 1:
        raise ValueError(f"save_png scale must be >= 1, got {scale}")
    if scale > 1:
        arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    out = Path(path)
    Image.fromarray(arr).save(out)
    return out
