"""Icon pictograms for simphone: small distinct shapes (circle, envelope, gear, cart, ...).

Each shape is an implicit function of normalised coordinates (v down, u right, both in [-1, 1])
returning where the ink is, so a shape can be rasterised crisply at any icon size: it is sampled
4×4 times per pixel and a pixel is inked when at least half its samples are. ``GLYPH_MASKS``
holds every shape at 16×16, built at import; ``glyph_mask(index, h, w)`` gives (and caches) any
other size. An app is identified by its glyph together with its colour, so the shapes only need
to be distinct from one another, not pretty.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

ShapeFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

_SUPERSAMPLE = 4  # samples per pixel along each axis
BASE_SIZE = 16  # side of the masks in GLYPH_MASKS


def _disc(v: np.ndarray, u: np.ndarray, cv: float, cu: float, r: float) -> np.ndarray:
    return (v - cv) ** 2 + (u - cu) ** 2 < r * r


def _rect(v: np.ndarray, u: np.ndarray, v0: float, u0: float, v1: float, u1: float) -> np.ndarray:
    return (v >= v0) & (v <= v1) & (u >= u0) & (u <= u1)


def _radius(v: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.sqrt(u * u + v * v)


def _circle(v, u):
    return _disc(v, u, 0, 0, 0.8)


def _ring(v, u):
    r = _radius(v, u)
    return (r > 0.45) & (r < 0.85)


def _square(v, u):
    return _rect(v, u, -0.7, -0.7, 0.7, 0.7)


def _frame(v, u):
    return _square(v, u) & ~_rect(v, u, -0.35, -0.35, 0.35, 0.35)


def _triangle(v, u):
    return (v > -0.75) & (v < 0.7) & (np.abs(u) <= 0.85 * (v + 0.75) / 1.45)


def _play(v, u):
    return (u > -0.55) & (u < 0.8) & (np.abs(v) <= 0.8 * (0.8 - u) / 1.35)


def _cross(v, u):
    inside = (np.abs(u) < 0.8) & (np.abs(v) < 0.8)
    return inside & ((np.abs(u - v) < 0.32) | (np.abs(u + v) < 0.32))


def _plus(v, u):
    return _rect(v, u, -0.8, -0.22, 0.8, 0.22) | _rect(v, u, -0.22, -0.8, 0.22, 0.8)


def _bars(v, u):
    return (
        _rect(v, u, 0.25, -0.85, 0.8, -0.38)
        | _rect(v, u, -0.25, -0.23, 0.8, 0.23)
        | _rect(v, u, -0.8, 0.38, 0.8, 0.85)
    )


def _menu(v, u):
    lines = (np.abs(v) < 0.16) | (np.abs(v - 0.58) < 0.16) | (np.abs(v + 0.58) < 0.16)
    return lines & (np.abs(u) < 0.8)


def _envelope(v, u):
    body = _rect(v, u, -0.6, -0.88, 0.6, 0.88)
    border = body & ~_rect(v, u, -0.4, -0.68, 0.4, 0.68)
    flap_line = -0.6 + 0.75 * (1 - np.abs(u) / 0.88)  # a V from the top corners to the middle
    return border | (body & (np.abs(v - flap_line) < 0.17))


def _pin(v, u):
    head = _disc(v, u, -0.3, 0, 0.55) & ~_disc(v, u, -0.3, 0, 0.2)
    point = (v > -0.3) & (v < 0.9) & (np.abs(u) < 0.5 * (0.9 - v) / 1.2)
    return head | point


def _clock(v, u):
    r = _radius(v, u)
    hands = _rect(v, u, -0.55, -0.12, 0.1, 0.12) | _rect(v, u, -0.12, -0.12, 0.12, 0.5)
    return ((r > 0.65) & (r < 0.92)) | hands


def _gear(v, u):
    r = _radius(v, u)
    theta = np.arctan2(v, u)
    teeth = (r < 0.92) & (np.cos(8 * theta) > 0.2)
    return ((r < 0.6) | teeth) & (r > 0.25)


def _cart(v, u):
    basket = (v > -0.45) & (v < 0.3) & (u > -0.55 + 0.25 * (v + 0.45)) & (u < 0.85)
    handle = _rect(v, u, -0.75, -0.95, -0.5, -0.55)
    wheels = _disc(v, u, 0.65, -0.3, 0.2) | _disc(v, u, 0.65, 0.55, 0.2)
    return basket | handle | wheels


def _magnifier(v, u):
    r = _radius(v + 0.25, u + 0.25)
    lens = (r > 0.3) & (r < 0.58)
    along = (u + v) / 2
    handle = (np.abs(u - v) < 0.28) & (along > 0.2) & (along < 0.85)
    return lens | handle


def _heart(v, u):
    x, y = u * 1.25, -v * 1.25 + 0.15
    return (x * x + y * y - 1) ** 3 - x * x * y**3 < 0


def _star(v, u):
    r = _radius(v, u)
    theta = np.arctan2(v, u) + np.pi / 2  # a point straight up
    return r < 0.35 + 0.55 * ((1 + np.cos(5 * theta)) / 2) ** 2


def _diamond(v, u):
    return np.abs(u) + np.abs(v) < 0.88


def _house(v, u):
    roof = (v > -0.85) & (v < -0.05) & (np.abs(u) < v + 0.85)
    body = _rect(v, u, -0.1, -0.6, 0.8, 0.6)
    door = _rect(v, u, 0.3, -0.18, 0.8, 0.18)
    return roof | (body & ~door)


def _bell(v, u):
    dome = (v > -0.6) & (v < 0.45) & (np.abs(u) < 0.35 + 0.4 * (v + 0.6) / 1.05)
    rim = _rect(v, u, 0.4, -0.85, 0.6, 0.85)
    return dome | rim | _disc(v, u, 0.78, 0, 0.17) | _disc(v, u, -0.65, 0, 0.15)


def _camera(v, u):
    body = _rect(v, u, -0.45, -0.88, 0.7, 0.88) | _rect(v, u, -0.72, -0.55, -0.45, -0.05)
    r = _radius(v - 0.12, u)
    return body & ~((r > 0.18) & (r < 0.42))


def _note(v, u):
    head = ((u + 0.25) / 0.38) ** 2 + ((v - 0.5) / 0.3) ** 2 < 1
    stem = _rect(v, u, -0.85, 0.0, 0.5, 0.17)
    flag = _rect(v, u, -0.85, 0.0, -0.55, 0.65)
    return head | stem | flag


def _bubble(v, u):
    body = (u / 0.9) ** 2 + ((v + 0.15) / 0.62) ** 2 < 1
    tail = (v > 0.2) & (v < 0.9) & (u > -0.6) & (u < -0.6 + 0.5 * (0.9 - v) / 0.7)
    return body | tail


def _crescent(v, u):
    return _disc(v, u, 0, 0, 0.82) & ~_disc(v, u, -0.25, 0.35, 0.62)


def _person(v, u):
    body = (v > 0.12) & (v < 0.9) & _disc(v, u, 0.9, 0, 0.78)
    return _disc(v, u, -0.45, 0, 0.33) | body


def _grid(v, u):
    return (np.abs(u) > 0.15) & (np.abs(u) < 0.82) & (np.abs(v) > 0.15) & (np.abs(v) < 0.82)


def _download(v, u):
    shaft = _rect(v, u, -0.88, -0.17, 0.1, 0.17)
    head = (v > -0.05) & (v < 0.55) & (np.abs(u) < 0.7 * (0.55 - v) / 0.6)
    base = _rect(v, u, 0.68, -0.85, 0.88, 0.85)
    return shaft | head | base


def _check(v, u):
    short = (np.abs((v - 0.45) - (u + 0.3)) < 0.3) & (u > -0.8) & (u < -0.2)
    long = (np.abs((v - 0.45) + (u + 0.3)) < 0.3) & (u >= -0.35) & (u < 0.85)
    return short | long


def _lock(v, u):
    r = _radius(v + 0.3, u)
    shackle = (r > 0.28) & (r < 0.5) & (v < -0.1)
    return shackle | (_rect(v, u, -0.1, -0.7, 0.85, 0.7) & ~_disc(v, u, 0.35, 0, 0.15))


SHAPES: tuple[tuple[str, ShapeFn], ...] = (
    ("circle", _circle),
    ("ring", _ring),
    ("square", _square),
    ("frame", _frame),
    ("triangle", _triangle),
    ("play", _play),
    ("cross", _cross),
    ("plus", _plus),
    ("bars", _bars),
    ("menu", _menu),
    ("envelope", _envelope),
    ("pin", _pin),
    ("clock", _clock),
    ("gear", _gear),
    ("cart", _cart),
    ("magnifier", _magnifier),
    ("heart", _heart),
    ("star", _star),
    ("diamond", _diamond),
    ("house", _house),
    ("bell", _bell),
    ("camera", _camera),
    ("note", _note),
    ("bubble", _bubble),
    ("crescent", _crescent),
    ("person", _person),
    ("grid", _grid),
    ("download", _download),
    ("check", _check),
    ("lock", _lock),
)
"""(name, implicit shape function) for every pictogram, in glyph-id order."""

GLYPH_NAMES: tuple[str, ...] = tuple(name for name, _ in SHAPES)
NUM_GLYPHS = len(SHAPES)


def glyph_index(name: str) -> int:
    """The glyph id of a named shape (e.g. ``glyph_index("cart")``)."""
    try:
        return GLYPH_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown glyph name {name!r}; known: {', '.join(GLYPH_NAMES)}") from None


@functools.lru_cache(maxsize=2048)
def glyph_mask(index: int, height: int, width: int) -> np.ndarray:
    """Boolean [height, width] mask of glyph ``index % NUM_GLYPHS`` (read-only, cached).

    The shape is stretched to the box; callers wanting an undistorted icon pass a square box.
    """
    if height < 1 or width < 1:
        raise ValueError(
            f"glyph_mask size must be at least 1×1, got height={height}, width={width}"
        )
    _, shape = SHAPES[index % NUM_GLYPHS]
    s = _SUPERSAMPLE
    v = (np.arange(height * s) + 0.5) / (height * s) * 2 - 1
    u = (np.arange(width * s) + 0.5) / (width * s) * 2 - 1
    ink = shape(v[:, None], u[None, :]).astype(np.float32)
    coverage = ink.reshape(height, s, width, s).mean(axis=(1, 3))
    mask = coverage >= 0.5
    mask.flags.writeable = False
    return mask


GLYPH_MASKS: tuple[np.ndarray, ...] = tuple(
    glyph_mask(i, BASE_SIZE, BASE_SIZE) for i in range(NUM_GLYPHS)
)
"""Every glyph as a [16, 16] boolean mask, built at import."""
