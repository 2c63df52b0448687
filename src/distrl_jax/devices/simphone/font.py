"""A tiny bitmap font for simphone's renderer: 3×5-pixel glyphs for every printable ASCII character.

Each glyph is written below as five rows of three bits ("111 101 ..."), top row first, so the
font lives in this module as data and needs no font file. Drawn text uses a 4×6 cell (one column
and one row of spacing). Characters outside printable ASCII are drawn as "?".

Text is rasterised without a Python loop over pixels: the glyphs are stacked into an atlas
``[95, 5*s, 4*s]`` per scale ``s``, a string becomes one fancy-index into that atlas plus a
reshape, and the resulting boolean masks are cached per (string, scale) because a phone shows the
same captions over and over.
"""

from __future__ import annotations

import functools

import numpy as np

GLYPH_W = 3  # glyph width in pixels at scale 1
GLYPH_H = 5  # glyph height in pixels at scale 1
CELL_W = GLYPH_W + 1  # advance per character (one column of spacing)
CELL_H = GLYPH_H + 1  # line height (one row of spacing)

FIRST_CHAR = 32  # " "
LAST_CHAR = 126  # "~"

# Five rows of three bits per glyph, top row first. Hand-drawn for this project; every printable
# character has its own pattern (tests check that no two coincide).
_GLYPH_BITS: dict[str, str] = {
    " ": "000 000 000 000 000",
    "!": "010 010 010 000 010",
    '"': "101 101 000 000 000",
    "#": "101 111 101 111 101",
    "$": "011 110 010 011 110",
    "%": "101 001 010 100 101",
    "&": "010 101 010 101 011",
    "'": "010 010 000 000 000",
    "(": "001 010 010 010 001",
    ")": "100 010 010 010 100",
    "*": "000 101 010 101 000",
    "+": "000 010 111 010 000",
    ",": "000 000 000 010 100",
    "-": "000 000 111 000 000",
    ".": "000 000 000 000 010",
    "/": "001 001 010 100 100",
    "0": "011 101 101 101 110",
    "1": "010 110 010 010 111",
    "2": "110 001 010 100 111",
    "3": "110 001 010 001 110",
    "4": "101 101 111 001 001",
    "5": "111 100 110 001 110",
    "6": "011 100 111 101 111",
    "7": "111 001 010 100 100",
    "8": "111 101 111 101 111",
    "9": "111 101 111 001 110",
    ":": "000 010 000 010 000",
    ";": "000 010 000 010 100",
    "<": "001 010 100 010 001",
    "=": "000 111 000 111 000",
    ">": "100 010 001 010 100",
    "?": "111 001 010 000 010",
    "@": "010 101 111 100 011",
    "A": "010 101 111 101 101",
    "B": "110 101 110 101 110",
    "C": "011 100 100 100 011",
    "D": "110 101 101 101 110",
    "E": "111 100 111 100 111",
    "F": "111 100 111 100 100",
    "G": "011 100 101 101 011",
    "H": "101 101 111 101 101",
    "I": "111 010 010 010 111",
    "J": "001 001 001 101 010",
    "K": "101 101 110 101 101",
    "L": "100 100 100 100 111",
    "M": "101 111 111 101 101",
    "N": "101 111 111 111 101",
    "O": "010 101 101 101 010",
    "P": "110 101 110 100 100",
    "Q": "010 101 101 111 011",
    "R": "110 101 111 110 101",
    "S": "011 100 010 001 110",
    "T": "111 010 010 010 010",
    "U": "101 101 101 101 011",
    "V": "101 101 101 010 010",
    "W": "101 101 111 111 101",
    "X": "101 101 010 101 101",
    "Y": "101 101 010 010 010",
    "Z": "111 001 010 100 111",
    "[": "111 100 100 100 111",
    "\\": "100 100 010 001 001",
    "]": "111 001 001 001 111",
    "^": "010 101 000 000 000",
    "_": "000 000 000 000 111",
    "`": "100 010 000 000 000",
    "a": "000 110 011 101 111",
    "b": "100 110 101 101 110",
    "c": "000 011 100 100 011",
    "d": "001 011 101 101 011",
    "e": "000 011 101 110 011",
    "f": "001 010 111 010 010",
    "g": "000 011 101 011 110",
    "h": "100 110 101 101 101",
    "i": "010 000 010 010 010",
    "j": "001 000 001 101 010",
    "k": "100 101 110 110 101",
    "l": "110 010 010 010 111",
    "m": "000 111 111 111 101",
    "n": "000 110 101 101 101",
    "o": "000 010 101 101 010",
    "p": "000 110 101 110 100",
    "q": "000 011 101 011 001",
    "r": "000 011 100 100 100",
    "s": "000 011 110 011 110",
    "t": "010 111 010 010 011",
    "u": "000 101 101 101 011",
    "v": "000 101 101 111 010",
    "w": "000 101 111 111 111",
    "x": "000 101 010 010 101",
    "y": "000 101 101 011 110",
    "z": "000 111 011 110 111",
    "{": "011 010 110 010 011",
    "|": "010 010 010 010 010",
    "}": "110 010 011 010 110",
    "~": "000 000 011 110 000",
}


def _parse_glyph(char: str, bits: str) -> np.ndarray:
    rows = bits.split()
    if len(rows) != GLYPH_H or any(len(r) != GLYPH_W or set(r) - {"0", "1"} for r in rows):
        raise ValueError(f"font glyph {char!r} is malformed: {bits!r} (need 5 rows of 3 bits)")
    return np.array([[c == "1" for c in r] for r in rows], dtype=bool)


GLYPHS: dict[str, np.ndarray] = {ch: _parse_glyph(ch, bits) for ch, bits in _GLYPH_BITS.items()}
"""Every printable ASCII character → its [5, 3] boolean glyph (True = ink)."""

if set(GLYPHS) != {chr(c) for c in range(FIRST_CHAR, LAST_CHAR + 1)}:
    raise RuntimeError("simphone font must define exactly the printable ASCII characters")

# Atlas row b is the glyph of byte b in a [GLYPH_H, CELL_W] cell (glyph plus a spacing column);
# bytes that are not printable ASCII get the "?" glyph, so a string's ASCII bytes index it directly.
_ATLAS = np.zeros((256, GLYPH_H, CELL_W), dtype=bool)
_ATLAS[:, :, :GLYPH_W] = GLYPHS["?"]
for _ch, _mask in GLYPHS.items():
    _ATLAS[ord(_ch), :, :GLYPH_W] = _mask
_ATLAS.flags.writeable = False


def glyph(char: str) -> np.ndarray:
    """The [5, 3] boolean glyph for one character ("?" for anything not printable ASCII)."""
    if len(char) != 1:
        raise ValueError(f"glyph() takes one character, got {char!r} (length {len(char)})")
    return GLYPHS.get(char, GLYPHS["?"])


@functools.lru_cache(maxsize=8)
def _scaled_atlas(scale: int) -> np.ndarray:
    atlas = _ATLAS.repeat(scale, axis=1).repeat(scale, axis=2)
    atlas.flags.writeable = False
    return atlas


def _char_indices(text: str) -> np.ndarray:
    # Non-ASCII characters become "?" here; ASCII control characters map to "?" rows of the atlas.
    return np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8)


def text_width(num_chars: int, scale: int = 1) -> int:
    """Pixel width of ``num_chars`` characters (no trailing spacing column)."""
    return max(0, num_chars * CELL_W * scale - scale)


def chars_that_fit(width_px: int, scale: int = 1) -> int:
    """How many characters fit in ``width_px`` pixels (the last needs no spacing column)."""
    return max(0, (width_px + scale) // (CELL_W * scale))


@functools.lru_cache(maxsize=8192)
def text_mask(text: str, scale: int = 1) -> np.ndarray:
    """Boolean ink mask [5*scale, text_width(len(text), scale)] of one line of text (read-only).

    Cached per (text, scale): a phone redraws the same captions constantly.
    """
    if scale < 1:
        raise ValueError(f"text_mask scale must be an integer >= 1, got {scale!r}")
    if not text:
        return np.zeros((GLYPH_H * scale, 0), dtype=bool)
    cells = _scaled_atlas(scale)[_char_indices(text)]  # [n, 5s, 4s], one gather
    n, h, w = cells.shape
    mask = cells.transpose(1, 0, 2).reshape(h, n * w)[:, : text_width(n, scale)]
    mask = np.ascontiguousarray(mask)
    mask.flags.writeable = False
    return mask
