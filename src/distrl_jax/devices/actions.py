"""The Android-in-the-Wild action space and its two string forms.

Actions (DESIGN §3): ``DUAL_POINT(touch_yx, lift_yx)`` — a tap when the two points are within
``TAP_DISTANCE`` of each other (normalised screen units, Euclidean, as AitW's evaluation does),
else a swipe — ``TYPE(text)``, ``PRESS_BACK``, ``PRESS_HOME``, ``PRESS_ENTER``,
``STATUS_TASK_COMPLETE`` and ``STATUS_TASK_IMPOSSIBLE``. Points are normalised (y, x) in [0, 1].

Two string forms are read and written:

* the AutoUI/DigiRL form, so that data and checkpoints of that ecosystem can be used::

    "action_type": "DUAL_POINT", "touch_point": "[0.5012, 0.3100]", "lift_point": "[...]", "typed_text": ""

  (points are ``[y, x]``; an optional ``Action Decision:`` prefix is accepted);
* a compact form used in action histories and logs: ``TAP 0.50 0.31``, ``SWIPE 0.80 0.50 0.20 0.50``,
  ``TYPE "text"``, ``BACK``, ``HOME``, ``ENTER``, ``COMPLETE``, ``IMPOSSIBLE``.

A string that does not parse becomes :data:`INVALID` — an invalid no-op action that the
environment penalises — never an exception, because a policy's output is untrusted input.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re

TAP_DISTANCE = 0.04  # AitW: touch and lift closer than this (normalised units) is a tap


class ActionType(enum.Enum):
    """AitW action types (values are the AutoUI/DigiRL ``action_type`` strings)."""

    DUAL_POINT = "DUAL_POINT"
    TYPE = "TYPE"
    PRESS_BACK = "PRESS_BACK"
    PRESS_HOME = "PRESS_HOME"
    PRESS_ENTER = "PRESS_ENTER"
    STATUS_TASK_COMPLETE = "STATUS_TASK_COMPLETE"
    STATUS_TASK_IMPOSSIBLE = "STATUS_TASK_IMPOSSIBLE"
    INVALID = "INVALID"  # not an AitW type: what an unparseable output decodes to


_NO_POINT = (-1.0, -1.0)


@dataclasses.dataclass(frozen=True)
class Action:
    """One AitW action. ``touch``/``lift`` are (y, x) in [0, 1]; ``text`` only for TYPE."""

    kind: ActionType
    touch: tuple[float, float] = _NO_POINT
    lift: tuple[float, float] = _NO_POINT
    text: str = ""
    error: str = ""  # for INVALID: why the source string was rejected

    @property
    def is_tap(self) -> bool:
        """True for a DUAL_POINT whose touch and lift are within TAP_DISTANCE."""
        if self.kind is not ActionType.DUAL_POINT:
            return False
        return math.dist(self.touch, self.lift) <= TAP_DISTANCE

    @property
    def is_valid(self) -> bool:
        """False only for INVALID."""
        return self.kind is not ActionType.INVALID


def tap(y: float, x: float) -> Action:
    """A tap at normalised (y, x)."""
    return Action(ActionType.DUAL_POINT, (float(y), float(x)), (float(y), float(x)))


def swipe(y0: float, x0: float, y1: float, x1: float) -> Action:
    """A swipe from (y0, x0) to (y1, x1), normalised."""
    return Action(ActionType.DUAL_POINT, (float(y0), float(x0)), (float(y1), float(x1)))


def type_text(text: str) -> Action:
    """TYPE(text)."""
    return Action(ActionType.TYPE, text=text)


BACK = Action(ActionType.PRESS_BACK)
HOME = Action(ActionType.PRESS_HOME)
ENTER = Action(ActionType.PRESS_ENTER)
COMPLETE = Action(ActionType.STATUS_TASK_COMPLETE)
IMPOSSIBLE = Action(ActionType.STATUS_TASK_IMPOSSIBLE)


def invalid(reason: str) -> Action:
    """The invalid no-op action, carrying the reason its source was rejected."""
    return Action(ActionType.INVALID, error=reason[:200])


def _check_point(p: tuple[float, float], what: str) -> str:
    if len(p) != 2 or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in p):
        return f"{what} {p!r} is not a (y, x) pair in [0, 1]"
    return ""


def validate(action: Action) -> Action:
    """Return ``action`` if well formed, else an INVALID action saying what is wrong."""
    if action.kind is ActionType.DUAL_POINT:
        err = _check_point(action.touch, "touch point") or _check_point(action.lift, "lift point")
        return invalid(err) if err else action
    if action.kind is ActionType.TYPE and not action.text:
        return invalid("TYPE with empty text")
    return action


# ---------------------------------------------------------------- AutoUI / DigiRL form

_AUTOUI_FIELD = re.compile(r'"(action_type|touch_point|lift_point)"\s*:\s*"([^"]*)"')
_AUTOUI_TEXT = re.compile(r'"typed_text"\s*:\s*"(.*)"\s*$', re.DOTALL)


def _fmt_point(p: tuple[float, float]) -> str:
    return f"[{p[0]:.4f}, {p[1]:.4f}]"


def to_autoui(action: Action) -> str:
    """Write the AutoUI/DigiRL action string (points as ``[y, x]``)."""
    if action.kind is ActionType.INVALID:
        raise ValueError("an INVALID action has no AutoUI form")
    touch, lift = (
        (action.touch, action.lift) if action.kind is ActionType.DUAL_POINT else (_NO_POINT,) * 2
    )
    # Quotes are written as they are (as DigiRL does); the reader takes typed_text up to the last quote.
    text = action.text if action.kind is ActionType.TYPE else ""
    return (
        f'"action_type": "{action.kind.value}", "touch_point": "{_fmt_point(touch)}", '
        f'"lift_point": "{_fmt_point(lift)}", "typed_text": "{text}"'
    )


def _parse_point(s: str) -> tuple[float, float] | None:
    parts = s.strip().strip("[]()").split(",")
    if len(parts) != 2:
        return None
    try:
        return (float(parts[0]), float(parts[1]))
    except ValueError:
        return None


def from_autoui(s: str) -> Action:
    """Parse an AutoUI/DigiRL action string; anything unparseable becomes INVALID."""
    if not isinstance(s, str):
        return invalid(f"expected a string, got {type(s).__name__}")
    start = s.find('"action_type"')
    if start > 0:  # drop an "Action Plan: ...; Action Decision:" prefix
        s = s[start:]
    fields: dict[str, str] = {}
    for key, value in _AUTOUI_FIELD.findall(s):
        fields.setdefault(key, value)  # the first match: later ones may be inside typed_text
    kind_name = fields.get("action_type", "").strip()
    try:
        kind = ActionType(kind_name)
    except ValueError:
        return invalid(f"unknown action_type {kind_name!r}")
    if kind is ActionType.INVALID:
        return invalid("INVALID is not an AitW action type")
    if kind is ActionType.DUAL_POINT:
        touch = _parse_point(fields.get("touch_point", ""))
        lift = _parse_point(fields.get("lift_point", ""))
        if touch is None or lift is None:
            return invalid("DUAL_POINT needs touch_point and lift_point as [y, x]")
        return validate(Action(kind, touch, lift))
    if kind is ActionType.TYPE:
        m = _AUTOUI_TEXT.search(s)
        return validate(type_text(m.group(1) if m else ""))
    return Action(kind)


# ---------------------------------------------------------------- compact form

_SIMPLE = {
    "BACK": ActionType.PRESS_BACK,
    "HOME": ActionType.PRESS_HOME,
    "ENTER": ActionType.PRESS_ENTER,
    "COMPLETE": ActionType.STATUS_TASK_COMPLETE,
    "IMPOSSIBLE": ActionType.STATUS_TASK_IMPOSSIBLE,
}
_SIMPLE_NAME = {v: k for k, v in _SIMPLE.items()}


def to_compact(action: Action, digits: int = 2) -> str:
    """Write the compact form (``TAP y x``, ``SWIPE y0 x0 y1 x1``, ``TYPE "..."``, ``BACK``, ...)."""
    k = action.kind
    if k is ActionType.DUAL_POINT:
        if action.is_tap:
            return f"TAP {action.touch[0]:.{digits}f} {action.touch[1]:.{digits}f}"
        (y0, x0), (y1, x1) = action.touch, action.lift
        return f"SWIPE {y0:.{digits}f} {x0:.{digits}f} {y1:.{digits}f} {x1:.{digits}f}"
    if k is ActionType.TYPE:
        return "TYPE " + json.dumps(action.text, ensure_ascii=False)
    if k is ActionType.INVALID:
        return "INVALID"
    return _SIMPLE_NAME[k]


def from_compact(s: str) -> Action:
    """Parse the compact form; anything unparseable becomes INVALID."""
    if not isinstance(s, str):
        return invalid(f"expected a string, got {type(s).__name__}")
    s = s.strip()
    head, _, rest = s.partition(" ")
    head = head.upper()
    if head in _SIMPLE and not rest.strip():
        return Action(_SIMPLE[head])
    if head == "TYPE":
        try:
            text = json.loads(rest)
        except json.JSONDecodeError:
            return invalid(f"TYPE text is not a quoted string: {rest[:40]!r}")
        if not isinstance(text, str):
            return invalid("TYPE text is not a string")
        return validate(type_text(text))
    if head in ("TAP", "SWIPE"):
        try:
            nums = [float(v) for v in rest.split()]
        except ValueError:
            return invalid(f"{head} needs numbers, got {rest[:40]!r}")
        if head == "TAP" and len(nums) == 2:
            return validate(tap(*nums))
        if head == "SWIPE" and len(nums) == 4:
            return validate(swipe(*nums))
        return invalid(f"{head} got {len(nums)} numbers")
    return invalid(f"unknown action {s[:40]!r}")


def parse_action(s: str) -> Action:
    """Parse either string form (AutoUI/DigiRL or compact); unparseable gives INVALID."""
    if isinstance(s, str) and '"action_type"' in s:
        head = s.strip().partition(" ")[0].upper()
        if head not in ("TYPE", "TAP", "SWIPE", *_SIMPLE):
            return from_autoui(s)
    return from_compact(s)


def swipe_direction(action: Action) -> str:
    """'up', 'down', 'left' or 'right' for a swipe (the finger's motion), '' for anything else."""
    if action.kind is not ActionType.DUAL_POINT or action.is_tap:
        return ""
    dy = action.lift[0] - action.touch[0]
    dx = action.lift[1] - action.touch[1]
    if abs(dy) >= abs(dx):
        return "down" if dy > 0 else "up"
    return "right" if dx > 0 else "left"
