"""SimPhone: the embedded virtual Android phone (DESIGN §3) behind the ``core.Device`` interface.

``reset(task)`` draws a seeded start state for the task's goal (the home screen; the apps the
goal names installed, except the one an INSTALL_APP goal asks for; alarms, notifications, Chrome
tabs, a theme and a launcher layout drawn at random). ``step(action)`` applies one AitW action:
taps are hit-tested against the current screen's widgets (a miss is a valid no-op), swipes
scroll or open the drawer/shade, TYPE goes into the focused field (without one it is an invalid
no-op), BACK/HOME/ENTER do what Android does. ``last_effect`` tells the episode loop whether the
action was invalid and whether the screen changed.

Speed: screens are built once per distinct state (the cache key is ``PhoneState.screen_key``)
and rendered once per distinct screen and size, so a step that revisits a screen costs a hash
and a few dict lookups.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import threading
import time
import zlib
from typing import Any

import numpy as np

from distrl_jax.core import Device, InfrastructureError
from distrl_jax.devices.actions import Action, ActionType, swipe_direction, validate
from distrl_jax.devices.simphone import launcher, nav
from distrl_jax.devices.simphone.latency import NO_FAULT, FaultModel, FaultPlan, LatencyModel
from distrl_jax.devices.simphone.start import start_state
from distrl_jax.devices.simphone.state import SHADE, PhoneState, View
from distrl_jax.devices.simphone.ui import SCROLL_ROWS, STATUS_BOTTOM
from distrl_jax.devices.simphone.widgets import Screen
from distrl_jax.tasks.goals import Task

# The app modules register their screens and handlers with ``nav`` when imported.
for _module in (
    "chrome",
    "clock",
    "google_search",
    "maps_youtube",
    "settings",
    "shopping",
    "system_apps",
):
    importlib.import_module(f"distrl_jax.devices.simphone.{_module}")

try:  # the shared renderer (glyphs, text, pixel cache)
    from distrl_jax.devices.simphone.render import render_screen
except ImportError:  # pragma: no cover - until render.py exists: boxes and label barcodes

    def render_screen(screen: Screen, size: tuple[int, int]) -> np.ndarray:
        """Fallback renderer: each widget's box in its colour, its label as a barcode."""
        h, w = size
        img = np.empty((h, w, 3), np.uint8)
        img[:] = screen.background
        for wd in screen.widgets:
            y0, x0, y1, x1 = wd.box
            r0, c0 = int(y0 * h), int(x0 * w)
            r1, c1 = max(r0 + 1, round(y1 * h)), max(c0 + 1, round(x1 * w))
            img[r0:r1, c0:c1] = wd.color
            if wd.label:
                bits = zlib.crc32(wd.label.encode())
                cols = np.arange(c0, c1)
                on = cols[((bits >> (cols % 31)) & 1).astype(bool)]
                img[(r0 + r1) // 2, on] = wd.text_color
            if wd.focused:
                img[r0, c0:c1] = img[r1 - 1, c0:c1] = wd.text_color
        return img


# Screens (and their renders) kept per process: ~20 KB each at 128x64, so ~40 MB. Episodes draw
# fresh seeds, so reuse is mostly within an episode and a small cache keeps nearly all of it.
_CACHE_LIMIT = 2048


# Phones step in threads (VectorRollout's pool, the ADB test server): evicting while another
# thread inserts raised "dictionary changed size during iteration" without this lock.
_CACHE_LOCK = threading.Lock()


def _cache_put(cache: dict, key: tuple, value: Any) -> Any:
    """Insert under the lock, first dropping the older half of a full cache (dicts keep
    insertion order: a cheap LRU stand-in); returns ``value``."""
    with _CACHE_LOCK:
        if len(cache) >= _CACHE_LIMIT:
            for old in list(itertools.islice(cache, _CACHE_LIMIT // 2)):
                del cache[old]
        cache[key] = value
    return value


_SCREENS: dict[tuple, tuple[Screen, int]] = {}
_PIXELS: dict[tuple, np.ndarray] = {}


@dataclasses.dataclass(frozen=True)
class StepEffect:
    """What the last step did: ``invalid`` (a no-op the episode loop penalises), ``changed``
    (the screen differs from before the step) and, for invalid steps, why."""

    invalid: bool = False
    changed: bool = False
    reason: str = ""


class SimPhone(Device):
    """A virtual Android phone; see the module docstring.

    ``size`` is the screenshot's (height, width) in pixels; ``seed`` seeds the episodes (episode
    k of a phone draws its start state from (seed, k); ``reset(task, seed=...)`` overrides it).
    With a ``latency`` model each step takes the sampled latency times ``time_scale`` (slept when
    ``sleep``, else only recorded in ``last_latency_s``); with a ``faults`` model episodes may
    hang (for the hang time times ``time_scale``), go offline or crash, raising
    ``InfrastructureError`` until ``restart()``. Without them a step is instant and never fails.
    ``layout_seed`` fixes the device (theme, installed apps, home screen) for every episode, as
    an emulator reset to one snapshot; None draws a new device per episode (harder: the policy
    must read the screen to find anything).
    """

    name = "simphone"
    seedable = True

    def __init__(
        self,
        size: tuple[int, int] = (128, 64),
        seed: int = 0,
        latency: LatencyModel | None = None,
        faults: FaultModel | None = None,
        time_scale: float = 1.0,
        sleep: bool = True,
        layout_seed: int | None = None,
    ):
        if len(size) != 2 or not all(isinstance(v, int) and v >= 8 for v in size):
            raise ValueError(f"size must be (height, width) in pixels, each >= 8, got {size!r}")
        if not (time_scale >= 0):
            raise ValueError(f"time_scale must be >= 0, got {time_scale!r}")
        self.size = (int(size[0]), int(size[1]))
        self.seed = int(seed)
        self.latency = latency
        self.faults = faults
        self.time_scale = float(time_scale)
        self.sleep = bool(sleep)
        self.layout_seed = layout_seed
        self._latency = latency.sampler(self.seed) if latency is not None else None
        self._faults = faults.sampler(self.seed) if faults is not None else None
        self._plan: FaultPlan = NO_FAULT
        self._broken = ""  # "hung" | "offline" | "crashed" until restart()
        self._episode = 0
        self._t = 0
        self._state: PhoneState | None = None
        self.last_effect = StepEffect()
        self.last_latency_s = 0.0

    # ------------------------------------------------------------ Device interface

    def reset(self, task: Task, *, seed: int | None = None) -> np.ndarray:
        """Start ``task``: a seeded start state for its goal (``seed`` overrides the episode seed)."""
        self._raise_if_broken()
        self._episode += 1
        ep_seed = seed if seed is not None else zlib.crc32(f"{self.seed}:{self._episode}".encode())
        self._state = start_state(task.goal, int(ep_seed), self.layout_seed)
        self._plan = (
            self._faults.plan(max(1, task.horizon)) if self._faults is not None else NO_FAULT
        )
        self._t = 0
        self.last_effect = StepEffect()
        self.last_latency_s = 0.0
        return self.screenshot()

    def step(self, action: Action) -> np.ndarray:
        """Apply one action and return the new screen; raises InfrastructureError on faults."""
        self._raise_if_broken()
        s = self._require_state()
        if self._plan.kind and self._plan.step == self._t:
            self._inject(self._plan.kind)
        self._t += 1
        before = s.screen_key()
        reason = self._apply(s, action)
        self.last_effect = StepEffect(
            invalid=bool(reason), changed=s.screen_key() != before, reason=reason
        )
        if self._latency is not None:
            self.last_latency_s = self._latency.next() * self.time_scale
            if self.sleep and self.last_latency_s > 0:
                time.sleep(self.last_latency_s)
        return self.screenshot()

    def screenshot(self) -> np.ndarray:
        """The current screen as [H, W, 3] uint8 (read-only: it is shared with a cache)."""
        key = (self._require_state().screen_key(), self.size)
        img = _PIXELS.get(key)
        if img is None:
            img = np.asarray(render_screen(self.screen(), self.size), dtype=np.uint8)
            img.flags.writeable = False
            _cache_put(_PIXELS, key, img)
        return img

    def screen(self) -> Screen:
        """The current screen's widgets (what the renderer draws and taps are resolved against)."""
        return self._built()[0]

    @property
    def state(self) -> PhoneState:
        """The live phone state (``state.copy()`` for a snapshot)."""
        return self._require_state()

    def healthy(self) -> bool:
        """False after an injected fault until ``restart()``."""
        return not self._broken

    def restart(self) -> None:
        """Recover from a fault: the device answers again, on its home screen."""
        self._broken = ""
        self._plan = NO_FAULT
        if self._state is not None:
            nav.go_home(self._state)

    # ------------------------------------------------------------ internals

    def _require_state(self) -> PhoneState:
        if self._state is None:
            raise RuntimeError("SimPhone has no state yet: call reset(task) first")
        return self._state

    def _built(self) -> tuple[Screen, int]:
        s = self._require_state()
        key = s.screen_key()
        hit = _SCREENS.get(key)
        if hit is None:
            hit = _cache_put(_SCREENS, key, nav.build_screen(s))
        return hit

    def _raise_if_broken(self) -> None:
        if self._broken:
            raise InfrastructureError(
                f"simphone seed={self.seed} is {self._broken}; call restart()", device=self.name
            )

    def _inject(self, kind: str) -> None:
        assert self.faults is not None
        if kind == "hang":
            hang = self.faults.hang_s * self.faults.time_scale * self.time_scale
            self.last_latency_s = hang
            if self.sleep and hang > 0:
                time.sleep(hang)
            self._broken = "hung"
            raise InfrastructureError(
                f"simphone seed={self.seed} hung for {hang:.1f}s at step {self._t}",
                device=self.name,
            )
        self._broken = "offline" if kind == "offline" else "crashed"
        raise InfrastructureError(
            f"simphone seed={self.seed} went {self._broken} at step {self._t}", device=self.name
        )

    def _apply(self, s: PhoneState, action: Action) -> str:
        """Apply ``action`` to ``s``; returns why it was invalid ("" when valid)."""
        if not isinstance(action, Action):
            return f"not an Action: {type(action).__name__}"
        action = validate(action)
        kind = action.kind
        if kind is ActionType.INVALID:
            return action.error or "invalid action"
        if kind is ActionType.DUAL_POINT:
            if action.is_tap:
                widget = self.screen().hit(*action.touch)
                if widget is not None:
                    self._tap(s, widget.target)
            else:
                self._swipe(s, action)
        elif kind is ActionType.TYPE:
            if not s.focus:
                return "TYPE with no focused text field (tap a field first)"
            nav.type_into(s, action.text.rstrip("\n"))
            if action.text.endswith("\n"):  # as `adb shell input text` does: a newline submits
                nav.submit(s)
        elif kind is ActionType.PRESS_BACK:
            nav.go_back(s)
        elif kind is ActionType.PRESS_HOME:
            nav.go_home(s)
        elif kind is ActionType.PRESS_ENTER and s.focus:
            nav.submit(s)
        return ""

    def _tap(self, s: PhoneState, target: str) -> None:
        verb, _, arg = target.partition(":")
        if verb == "back":
            nav.go_back(s)
        elif verb == "focus":
            if s.focus != arg:
                nav.focus_field(s, arg)
        elif verb == "key":
            self._key(s, arg)
        else:
            handler = nav.TAPS.get(verb)
            if handler is None:
                raise KeyError(f"simphone: no handler for tap target {target!r}")
            handler(s, arg)

    @staticmethod
    def _key(s: PhoneState, key: str) -> None:
        if key == "enter":
            nav.submit(s)
        elif key == "del":
            s.text = "" if s.text_selected else s.text[:-1]
            s.text_selected = False
        elif key == "space":
            nav.type_into(s, " ")
        elif len(key) == 1:
            nav.type_into(s, key)

    def _swipe(self, s: PhoneState, action: Action) -> None:
        direction = swipe_direction(action)
        if direction == "down" and action.touch[0] <= STATUS_BOTTOM + 0.02 and s.view.app != SHADE:
            nav.navigate(s, View(SHADE, "shade"))  # pull down from the status bar, anywhere
            return
        max_scroll = self._built()[1]
        if launcher.swipe(s, direction, max_scroll):
            return
        if direction == "up":
            s.scroll = min(s.scroll + SCROLL_ROWS, max_scroll)
        elif direction == "down":
            s.scroll = max(s.scroll - SCROLL_ROWS, 0)
        elif min(action.touch[1], 1 - action.touch[1]) < 0.04:
            nav.go_back(s)  # an edge swipe is Android's back gesture
