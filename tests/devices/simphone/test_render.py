"""Tests for simphone's renderer, bitmap font and icon glyphs."""

from __future__ import annotations

import dataclasses
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distrl_jax.devices.simphone import font, glyphs, render
from distrl_jax.devices.simphone.render import render_screen, save_png
from distrl_jax.devices.simphone.widgets import Screen, Widget

BG = (245, 245, 245)


def sample_screen(*, label: str = "Results", keyboard: bool = False) -> Screen:
    """A small phone-like screen with one widget of each kind."""
    return Screen(
        "test.sample",
        (
            Widget((0.0, 0.0, 0.06, 1.0), "bar", color=(30, 30, 30)),
            Widget((0.07, 0.03, 0.14, 0.97), "field", "laptops", (255, 255, 255), focused=True),
            Widget((0.16, 0.03, 0.22, 0.97), "text", label),
            Widget((0.23, 0.03, 0.3, 0.97), "item", "Laptop $399", (230, 236, 250)),
            Widget((0.31, 0.03, 0.38, 0.5), "button", "Buy", (66, 133, 244), (255, 255, 255)),
            Widget((0.31, 0.55, 0.38, 0.97), "toggle", checked=True),
            Widget((0.4, 0.05, 0.55, 0.45), "icon", "Maps", (15, 157, 88), glyph=11),
            Widget((0.4, 0.55, 0.55, 0.95), "image", color=(180, 120, 90)),
            Widget((0.6, 0.1, 0.66, 0.2), "key", "q"),
        ),
        background=BG,
        keyboard=keyboard,
    )


def one_widget(widget: Widget, size: tuple[int, int] = render.DEFAULT_SIZE) -> np.ndarray:
    return render_screen(Screen("one", (widget,), background=BG), size)


# --- font ---------------------------------------------------------------------------------------


def test_every_printable_ascii_character_has_a_distinct_glyph():
    printable = [chr(c) for c in range(32, 127)]
    masks = [font.glyph(ch) for ch in printable]
    assert all(m.shape == (font.GLYPH_H, font.GLYPH_W) and m.dtype == bool for m in masks)
    assert len({m.tobytes() for m in masks}) == len(printable)
    # Every visible character has ink; the space has none.
    assert not font.glyph(" ").any()
    assert all(font.glyph(ch).any() for ch in printable if ch != " ")


def test_text_mask_layout_and_unprintable_fallback():
    mask = font.text_mask("AB", 1)
    assert mask.shape == (5, font.text_width(2))
    np.testing.assert_array_equal(mask[:, :3], font.glyph("A"))
    assert not mask[:, 3].any()  # the spacing column
    np.testing.assert_array_equal(mask[:, 4:7], font.glyph("B"))
    np.testing.assert_array_equal(font.text_mask("é\t", 1), font.text_mask("??", 1))
    big = font.text_mask("Hi", 2)
    np.testing.assert_array_equal(big[::2, ::2], font.text_mask("Hi", 1))
    assert font.chars_that_fit(font.text_width(7), 1) == 7
    assert font.chars_that_fit(font.text_width(7) - 1, 1) == 6
    with pytest.raises(ValueError, match="one character"):
        font.glyph("ab")


# --- glyphs -------------------------------------------------------------------------------------


def test_glyphs_are_many_and_distinct_at_base_and_small_sizes():
    assert glyphs.NUM_GLYPHS >= 24
    assert len(glyphs.GLYPH_MASKS) == glyphs.NUM_GLYPHS
    for size in (glyphs.BASE_SIZE, 10):
        masks = [glyphs.glyph_mask(i, size, size) for i in range(glyphs.NUM_GLYPHS)]
        assert len({m.tobytes() for m in masks}) == glyphs.NUM_GLYPHS, size
        coverage = [m.mean() for m in masks]
        assert min(coverage) > 0.1 and max(coverage) < 0.9, coverage
    assert glyphs.glyph_mask(glyphs.NUM_GLYPHS + 3, 12, 9).shape == (12, 9)
    np.testing.assert_array_equal(
        glyphs.glyph_mask(glyphs.NUM_GLYPHS + 3, 12, 12), glyphs.glyph_mask(3, 12, 12)
    )
    assert glyphs.GLYPH_NAMES[glyphs.glyph_index("cart")] == "cart"
    with pytest.raises(ValueError, match="unknown glyph name"):
        glyphs.glyph_index("unicorn")


# --- render_screen ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(128, 64), (256, 128), (64, 32), (32, 16), (100, 50)])
def test_shape_dtype_and_read_only(size):
    img = render_screen(sample_screen(keyboard=True), size)
    assert img.shape == (*size, 3) and img.dtype == np.uint8
    assert not img.flags.writeable
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 5


@pytest.mark.parametrize("size", [(31, 16), (32, 15), (0, 0), (-128, 64)])
def test_too_small_sizes_are_refused(size):
    with pytest.raises(ValueError, match="too small"):
        render_screen(sample_screen(), size)


@pytest.mark.parametrize("size", [(128,), (128.0, 64), "128x64", (True, 64)])
def test_malformed_sizes_are_refused(size):
    with pytest.raises(ValueError, match="height, width"):
        render_screen(sample_screen(), size)


def test_deterministic_across_cache_clears():
    first = render_screen(sample_screen(keyboard=True)).copy()
    render.clear_render_caches()
    second = render_screen(sample_screen(keyboard=True))
    np.testing.assert_array_equal(first, second)


def test_cache_returns_identical_results():
    screen = sample_screen()
    a = render_screen(screen)
    assert render_screen(screen) is a
    assert render_screen(sample_screen()) is a  # an equal Screen hits the cache too
    b = render_screen(screen, (256, 128))
    assert b.shape == (256, 128, 3)
    render.clear_render_caches()
    c = render_screen(screen)
    assert c is not a
    np.testing.assert_array_equal(a, c)


def test_one_label_changes_the_image():
    a = render_screen(sample_screen(label="Results"))
    b = render_screen(sample_screen(label="Resulta"))
    assert not np.array_equal(a, b)
    # The difference lies inside that text widget's box only.
    y0, x0, y1, x1 = render.pixel_box((0.16, 0.03, 0.22, 0.97), 128, 64)
    rows, cols = np.nonzero((a != b).any(axis=2))
    assert rows.min() >= y0 and rows.max() < y1 and cols.min() >= x0 and cols.max() < x1


def test_text_is_drawn_in_text_color_and_clipped_to_box():
    box = (0.2, 0.1, 0.3, 0.5)
    text = Widget(box, "text", "W" * 40, color=(200, 220, 240), text_color=(200, 0, 0))
    img = one_widget(text)
    y0, x0, y1, x1 = render.pixel_box(box, 128, 64)
    inside = np.zeros(img.shape[:2], dtype=bool)
    inside[y0:y1, x0:x1] = True
    assert (img[~inside] == BG).all()
    red = (img == (200, 0, 0)).all(axis=2)
    assert red.any() and not red[~inside].any()


def test_focused_field_has_border_and_cursor():
    box = (0.3, 0.1, 0.4, 0.9)
    plain = Widget(box, "field", "abc", (255, 255, 255))
    focused = dataclasses.replace(plain, focused=True)
    a, b = one_widget(plain), one_widget(focused)
    assert not np.array_equal(a, b)
    y0, x0, y1, x1 = render.pixel_box(box, 128, 64)
    border = np.concatenate([b[y0, x0:x1], b[y1 - 1, x0:x1], b[y0:y1, x0], b[y0:y1, x1 - 1]])
    assert (border == render.FOCUS_BORDER).all()
    # The cursor: a column of text colour after the text that the unfocused field lacks.
    ink = (b[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] == plain.text_color).all(axis=2)
    ink_plain = (a[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] == plain.text_color).all(axis=2)
    assert ink.any(axis=0).sum() > ink_plain.any(axis=0).sum()
    empty_focused = one_widget(Widget(box, "field", "", (255, 255, 255), focused=True))
    assert (empty_focused == plain.text_color).all(axis=2).any()


def test_focused_field_shows_the_end_of_long_text():
    box = (0.3, 0.0, 0.4, 0.5)
    long_text = "x" * 30 + "END"
    img = one_widget(Widget(box, "field", long_text, (255, 255, 255), focused=True))
    tail = one_widget(Widget(box, "field", "y" * 30 + "END", (255, 255, 255), focused=True))
    np.testing.assert_array_equal(img[:, 20:32], tail[:, 20:32])  # same visible tail


def test_toggle_on_and_off_differ_with_knob_side():
    box = (0.5, 0.25, 0.56, 0.75)
    off = one_widget(Widget(box, "toggle", color=(220, 220, 220)))
    on = one_widget(Widget(box, "toggle", color=(220, 220, 220), checked=True))
    assert not np.array_equal(on, off)
    mid = 32  # the box's horizontal centre in a 64-px-wide screen
    on_knob = (on == render.TOGGLE_ON).all(axis=2)
    off_knob = (off == render.TOGGLE_OFF).all(axis=2)
    assert on_knob[:, mid:].any() and not on_knob[:, :mid].any()
    assert off_knob[:, :mid].any() and not off_knob[:, mid:].any()


def test_keyboard_overlay_covers_the_bottom_only():
    plain = render_screen(sample_screen())
    with_kb = render_screen(sample_screen(keyboard=True))
    top, panel = render.keyboard_panel(128, 64)
    assert 128 * 0.3 < 128 - top < 128 * 0.4
    np.testing.assert_array_equal(with_kb[:top], plain[:top])
    np.testing.assert_array_equal(with_kb[top:], panel)
    colours = {tuple(c) for c in with_kb[top:].reshape(-1, 3)}
    assert render.KEYBOARD_PANEL in colours and render.KEYBOARD_KEY in colours
    assert not np.array_equal(with_kb[top:], plain[top:])


def test_icon_glyph_modulo_and_label_only_when_room():
    tall = (0.2, 0.2, 0.4, 0.8)  # 26 px tall: room for a label line
    short = (0.2, 0.2, 0.26, 0.8)  # 8 px: the glyph only
    icon = Widget(tall, "icon", "Maps", (15, 157, 88), glyph=4)
    np.testing.assert_array_equal(
        one_widget(icon), one_widget(dataclasses.replace(icon, glyph=4 + glyphs.NUM_GLYPHS))
    )
    assert not np.array_equal(one_widget(icon), one_widget(dataclasses.replace(icon, glyph=5)))
    assert not np.array_equal(one_widget(icon), one_widget(dataclasses.replace(icon, label="")))
    small = dataclasses.replace(icon, box=short)
    np.testing.assert_array_equal(
        one_widget(small), one_widget(dataclasses.replace(small, label=""))
    )
    # Glyph ink uses the contrasting colour of the fill.
    ink = render.contrast_color(icon.color)
    assert (one_widget(small) == ink).all(axis=2).any()


def test_later_widgets_draw_on_top_and_offscreen_widgets_are_skipped():
    a = Widget((0.1, 0.1, 0.5, 0.5), "bar", color=(255, 0, 0))
    b = Widget((0.3, 0.3, 0.7, 0.7), "bar", color=(0, 0, 255))
    img = render_screen(Screen("z", (a, b), background=BG))
    assert tuple(img[50, 25]) == (0, 0, 255)  # the overlap shows the later widget
    off = Widget((1.2, 0.0, 1.4, 1.0), "bar", color=(255, 0, 0))
    np.testing.assert_array_equal(
        render_screen(Screen("o", (off,), background=BG)), render_screen(Screen("e", (), BG))
    )
    tiny = Widget((0.5, 0.5, 0.5, 0.5), "bar", color=(0, 0, 0))  # zero-size box: still 1 px
    assert (one_widget(tiny) == 0).all(axis=2).sum() == 1


def test_bad_widgets_are_refused_with_clear_errors():
    with pytest.raises(ValueError, match="kind 'slider'"):
        one_widget(Widget((0.1, 0.1, 0.2, 0.2), "slider"))
    with pytest.raises(ValueError, match="reversed"):
        one_widget(Widget((0.3, 0.1, 0.2, 0.2), "bar"))
    with pytest.raises(ValueError, match="color"):
        one_widget(Widget((0.1, 0.1, 0.2, 0.2), "bar", color=(300, 0, 0)))
    with pytest.raises(ValueError, match="text_color"):
        one_widget(Widget((0.1, 0.1, 0.2, 0.2), "text", "a", text_color=(1, 2)))
    with pytest.raises(ValueError, match="background"):
        render_screen(Screen("b", (), background=(0, 0, -1)))


_boxes = st.tuples(*[st.floats(0, 1)] * 4).map(
    lambda b: (min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3]))
)
_widgets = st.builds(
    Widget,
    box=_boxes,
    kind=st.sampled_from(sorted(render.WIDGET_KINDS)),
    label=st.text(string.printable, max_size=20),
    color=st.tuples(*[st.integers(0, 254)] * 3),
    glyph=st.integers(-50, 50),
    focused=st.booleans(),
    checked=st.booleans(),
)


@settings(max_examples=40, deadline=None)
@given(widgets=st.lists(_widgets, max_size=8), keyboard=st.booleans())
def test_random_screens_render_and_leave_uncovered_pixels_as_background(widgets, keyboard):
    screen = Screen("random", tuple(widgets), background=(255, 255, 255), keyboard=keyboard)
    img = render_screen(screen, (64, 32))
    covered = np.zeros((64, 32), dtype=bool)
    for w in widgets:
        y0, x0, y1, x1 = render.pixel_box(w.box, 64, 32)
        covered[y0:y1, x0:x1] = True
    if keyboard:
        covered[render.keyboard_panel(64, 32)[0] :] = True
    assert (img[~covered] == 255).all()


def test_save_png_round_trips(tmp_path):
    from PIL import Image

    img = render_screen(sample_screen())
    path = save_png(img, tmp_path / "screen.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), img)
    big = save_png(img, tmp_path / "big.png", scale=4)
    assert np.asarray(Image.open(big)).shape == (512, 256, 3)
    with pytest.raises(ValueError, match="uint8"):
        save_png(img.astype(np.float32), tmp_path / "bad.png")
