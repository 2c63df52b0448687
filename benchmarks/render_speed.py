"""Benchmark simphone's renderer: renders per second for cached and uncached screens.

Prints one JSON line. Three cases at the default size (128, 64) on ~20-widget screens:

* ``cached``: the same Screen object rendered again (the whole-screen cache hit);
* ``cached_equal``: an equal but distinct Screen object (hash + equality, no drawing);
* ``uncached``: a screen not seen before made of widgets already seen (the common case when
  the phone changes screen: one patch copy per widget);
* ``cold``: a screen whose widgets are all new (every widget rasterised, text masks built).

Usage: python benchmarks/render_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import time

from distrl_jax.devices.simphone import render
from distrl_jax.devices.simphone.widgets import Screen, Widget

WIDGETS_PER_SCREEN = 20


def make_widgets(tag: str) -> tuple[Widget, ...]:
    """A phone-like mix of ~20 widgets; ``tag`` makes labels (and so widgets) unique."""
    ws = [
        Widget((0.0, 0.0, 0.06, 1.0), "bar", color=(30, 30, 30)),
        Widget((0.0, 0.02, 0.06, 0.5), "text", f"12:{tag}", color=(30, 30, 30)),
        Widget((0.07, 0.03, 0.14, 0.97), "field", f"query {tag}", (255, 255, 255), focused=True),
    ]
    for i in range(8):
        y0 = 0.16 + i * 0.06
        ws.append(Widget((y0, 0.03, y0 + 0.05, 0.97), "item", f"Result {i} {tag}", (230, 236, 250)))
    for i in range(6):
        r, c = divmod(i, 3)
        y0 = 0.66 + r * 0.12
        box = (y0, 0.05 + c * 0.31, y0 + 0.11, 0.05 + c * 0.31 + 0.28)
        ws.append(Widget(box, "icon", f"App{tag}{i}", (40 * i, 120, 200), glyph=i))
    ws.append(Widget((0.9, 0.03, 0.97, 0.45), "button", f"OK {tag}", (66, 133, 244)))
    ws.append(Widget((0.9, 0.55, 0.97, 0.97), "toggle", checked=True))
    ws.append(Widget((0.9, 0.46, 0.97, 0.54), "image", color=(180, 120, 90)))
    assert len(ws) == WIDGETS_PER_SCREEN
    return tuple(ws)


def per_second(fn, items: list) -> tuple[float, float]:
    """Call fn on each item once; return (calls per second, microseconds per call)."""
    start = time.perf_counter()
    for item in items:
        fn(item)
    elapsed = time.perf_counter() - start
    return len(items) / elapsed, elapsed / len(items) * 1e6


def main() -> None:
    """Run the four cases and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (same keys)")
    args = parser.parse_args()
    n = 1000 if args.quick else 3000  # stays under the 4096-entry screen cache
    size = render.DEFAULT_SIZE
    render.clear_render_caches()

    base = make_widgets("00")
    screen = Screen("bench", base, keyboard=True)
    render.render_screen(screen, size)
    cached, cached_us = per_second(lambda s: render.render_screen(s, size), [screen] * (20 * n))
    equal_copies = [Screen("bench", tuple(base), keyboard=True) for _ in range(n)]
    cached_eq, cached_eq_us = per_second(lambda s: render.render_screen(s, size), equal_copies)

    # Distinct names make each screen a cache miss while every widget patch is already cached.
    fresh = [Screen(f"bench{i}", base, keyboard=i % 2 == 0) for i in range(n)]
    uncached, uncached_us = per_second(lambda s: render.render_screen(s, size), fresh)

    render.clear_render_caches()
    cold_screens = [Screen(f"cold{i}", make_widgets(f"{i:04d}")) for i in range(n // 2)]
    cold, cold_us = per_second(lambda s: render.render_screen(s, size), cold_screens)

    print(
        json.dumps(
            {
                "benchmark": "simphone_render",
                "size": list(size),
                "widgets_per_screen": WIDGETS_PER_SCREEN,
                "quick": args.quick,
                "cached_renders_per_s": round(cached),
                "cached_us": round(cached_us, 2),
                "cached_equal_renders_per_s": round(cached_eq),
                "cached_equal_us": round(cached_eq_us, 2),
                "uncached_renders_per_s": round(uncached),
                "uncached_us": round(uncached_us, 2),
                "cold_renders_per_s": round(cold),
                "cold_us": round(cold_us, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
