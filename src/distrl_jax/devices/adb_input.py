"""AitW actions as Android shell commands, and the few Android conventions both ends share.

Used by :mod:`distrl_jax.devices.adb_device` (which sends the commands) and by the test ADB
server (:mod:`distrl_jax.devices.adb_server`, which interprets them), so both agree on:

* **Coordinates.** A normalised (y, x) point maps to the pixel ``(floor(x·W), floor(y·H))``
  (clamped to the screen); the server maps pixel (X, Y) back to its centre,
  ``((Y + 0.5)/H, (X + 0.5)/W)``, so a round trip moves a point by at most half a pixel.
* **Tap or swipe.** AitW's rule (:attr:`Action.is_tap`): touch and lift within ``TAP_DISTANCE``
  is ``input tap`` at the touch point, anything else ``input swipe`` over ``SWIPE_MS``.
* **Typing.** We escape text ourselves rather than trust a client library's quoting:

  - each argument is wrapped in single quotes for ``/system/bin/sh`` (a ``'`` becomes
    ``'\\''``), so ``; | & $ ` \\ " *`` and newlines reach ``input`` literally;
  - a space becomes ``%s``, which is how Android's ``input text`` spells a space (it splits its
    argument on nothing, but the device's shell and ``input`` itself treat spaces badly);
  - ``input text`` turns *every* ``%s`` into a space and has no escape for a literal one, so a
    literal ``%`` followed by ``s`` is sent as two ``input text`` commands split between them;
  - a trailing newline is not typed but sent as ENTER (keyevent 66), as simphone treats it;
  - non-ASCII text is sent as UTF-8, unchanged. The test server types it; a real Android's
    ``input text`` cannot (its virtual key map has no such keys) and drops it with an error in
    logcat, so policies for real phones should type ASCII (or install an IME such as
    ADBKeyboard, which this module does not drive).
"""

from __future__ import annotations

import math

from distrl_jax.devices.actions import Action, ActionType, validate
from distrl_jax.tasks.goals import Goal, Intent

KEYCODE_HOME = 3
KEYCODE_BACK = 4
KEYCODE_ENTER = 66
SWIPE_MS = 300  # long enough to be a fling on Android, short enough to keep steps fast

KEYCODES = {
    ActionType.PRESS_HOME: KEYCODE_HOME,
    ActionType.PRESS_BACK: KEYCODE_BACK,
    ActionType.PRESS_ENTER: KEYCODE_ENTER,
}

# Packages of the apps AitW tasks use most, by simphone app key (catalog.app_key), so that a
# reset can force-stop what the previous episode left open.
PACKAGES: dict[str, str] = {
    "chrome": "com.android.chrome",
    "maps": "com.google.android.apps.maps",
    "youtube": "com.google.android.youtube",
    "settings": "com.android.settings",
    "clock": "com.google.android.deskclock",
    "gmail": "com.google.android.gm",
    "play store": "com.android.vending",
    "google": "com.google.android.googlequicksearchbox",
    "messages": "com.google.android.apps.messaging",
    "camera": "com.android.camera2",
    "calculator": "com.google.android.calculator",
    "photos": "com.google.android.apps.photos",
    "contacts": "com.google.android.contacts",
    "phone": "com.google.android.dialer",
    "calendar": "com.google.android.calendar",
}

_INTENT_APPS: dict[Intent, tuple[str, ...]] = {
    Intent.WEB_SEARCH: ("chrome", "google"),
    Intent.SITE_VISIT: ("chrome",),
    Intent.SITE_SEARCH: ("chrome",),
    Intent.SITE_SELECT_FIRST: ("chrome",),
    Intent.CHROME_NEW_TAB: ("chrome",),
    Intent.MAPS_SEARCH: ("maps",),
    Intent.MAPS_DIRECTIONS: ("maps",),
    Intent.YOUTUBE_PLAY: ("youtube",),
    Intent.APP_SETTINGS: ("settings",),
    Intent.APP_NOTIFICATIONS: ("settings",),
    Intent.INSTALL_APP: ("play store",),
    Intent.SET_ALARM: ("clock",),
    Intent.CHECK_EMAIL: ("gmail",),
}

# One shell line per adb request: the request's length prefix is 4 hex digits (< 64 KiB) and
# real devices choke on long command lines well before that.
MAX_COMMAND_BYTES = 4000
_TEXT_CHARS_PER_COMMAND = 256  # at most 4 UTF-8 bytes each (plus quoting): well under the limit


def packages_for(goal: Goal | None) -> tuple[str, ...]:
    """The packages a task with ``goal`` may leave running (known apps only)."""
    from distrl_jax.devices.simphone import catalog  # the app-key rules live with simphone

    if goal is None:
        return ()
    keys = list(_INTENT_APPS.get(goal.intent, ()))
    if goal.intent in (Intent.OPEN_APP, Intent.APP_SETTINGS, Intent.APP_NOTIFICATIONS):
        keys.append(catalog.app_key(goal["app"]))
    return tuple(dict.fromkeys(PACKAGES[k] for k in keys if k in PACKAGES))


def to_pixel(point_yx: tuple[float, float], width: int, height: int) -> tuple[int, int]:
    """Normalised (y, x) to the pixel (X, Y) that contains it on a ``width``×``height`` screen."""
    y, x = point_yx
    px = min(width - 1, max(0, math.floor(x * width)))
    py = min(height - 1, max(0, math.floor(y * height)))
    return px, py


def from_pixel(px: float, py: float, width: int, height: int) -> tuple[float, float]:
    """Pixel (X, Y) to the normalised (y, x) of its centre, clamped to [0, 1]."""
    y = min(1.0, max(0.0, (py + 0.5) / height))
    x = min(1.0, max(0.0, (px + 0.5) / width))
    return y, x


def shell_quote(arg: str) -> str:
    """``arg`` as one single-quoted word for a POSIX shell (everything inside is literal)."""
    return "'" + arg.replace("'", "'\\''") + "'"


def input_text_args(text: str) -> list[str]:
    """Arguments for successive ``input text`` commands that together type ``text`` exactly.

    Spaces become ``%s``; a literal ``%`` directly followed by ``s`` ends an argument, because
    ``input text`` would read the pair as a space; long text is split every 256 characters.
    Newlines are kept (see :func:`type_commands`).
    """
    args: list[str] = []
    cur: list[str] = []
    for ch in text:
        if (ch == "s" and cur and cur[-1] == "%") or len(cur) >= _TEXT_CHARS_PER_COMMAND:
            args.append("".join(cur))
            cur = []
        cur.append("%s" if ch == " " else ch)
    if cur:
        args.append("".join(cur))
    return args


def android_input_text(arg: str) -> str:
    """What Android's ``input text ARG`` types: its ``%s`` → space rule (Input.java, sendText)."""
    out: list[str] = []
    escape = False
    for ch in arg:
        if escape:
            escape = False
            if ch == "s":
                out[-1] = " "  # the '%' and the 's' become one space
                continue
        out.append(ch)
        if ch == "%":
            escape = True
    return "".join(out)


def type_commands(text: str) -> list[str]:
    """Shell commands that type ``text`` (a trailing newline becomes an ENTER key event)."""
    body = text.rstrip("\n")
    cmds = [f"input text {shell_quote(a)}" for a in input_text_args(body)]
    if text.endswith("\n"):
        cmds.append(f"input keyevent {KEYCODE_ENTER}")
    return cmds


def action_commands(action: Action, width: int, height: int) -> list[str]:
    """The shell commands that perform ``action`` on a ``width``×``height`` screen.

    STATUS_* and INVALID actions do nothing on a phone and give no commands; so does a DUAL_POINT
    whose points are out of range (``validate`` turns it INVALID).
    """
    action = validate(action)
    kind = action.kind
    if kind is ActionType.DUAL_POINT:
        x0, y0 = to_pixel(action.touch, width, height)
        if action.is_tap:
            return [f"input tap {x0} {y0}"]
        x1, y1 = to_pixel(action.lift, width, height)
        return [f"input swipe {x0} {y0} {x1} {y1} {SWIPE_MS}"]
    if kind is ActionType.TYPE:
        return type_commands(action.text)
    if kind in KEYCODES:
        return [f"input keyevent {KEYCODES[kind]}"]
    return []


def join_commands(cmds: list[str], limit: int = MAX_COMMAND_BYTES) -> list[str]:
    """Group commands into as few ``a && b && c`` shell lines as fit in ``limit`` bytes each."""
    lines: list[str] = []
    cur = ""
    for c in cmds:
        if len(c.encode()) > limit:
            raise ValueError(
                f"one shell command is {len(c.encode())} bytes, over the {limit}-byte limit; "
                "type long text in several TYPE actions"
            )
        joined = f"{cur} && {c}" if cur else c
        if len(joined.encode()) > limit:
            lines.append(cur)
            joined = c
        cur = joined
    if cur:
        lines.append(cur)
    return lines
