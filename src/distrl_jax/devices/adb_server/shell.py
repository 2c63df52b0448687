"""The shell of a served device: Android commands mapped onto one SimPhone.

Commands: ``wm size|density``, ``screencap -p`` (a PNG of the simphone screen at the device's
resolution), ``input tap X Y``, ``input swipe X1 Y1 X2 Y2 [MS]``, ``input text ARG`` (with
Android's ``%s`` = space rule), ``input keyevent N...`` (3 HOME, 4 BACK, 66 ENTER, or
``KEYCODE_*`` names; other codes do nothing), ``am force-stop PKG``, ``getprop [KEY]``,
``dumpsys window``, ``echo``, ``true``, ``false``, ``exit``, and the test-server-only
``distrl-sim`` (see :mod:`.sim_control`). Anything else answers as Android's shell would:
``/system/bin/sh: NAME: not found`` with status 127.
"""

from __future__ import annotations

import dataclasses
import io
import threading

from PIL import Image

from distrl_jax.devices import actions as A
from distrl_jax.devices.adb_input import PACKAGES, android_input_text, from_pixel
from distrl_jax.devices.adb_server.protocol import SHELL_STDERR, SHELL_STDOUT
from distrl_jax.devices.adb_server.shell_syntax import (
    ShellSyntaxError,
    expand,
    parse_command_line,
)
from distrl_jax.devices.adb_server.sim_control import SIM_COMMAND, run_sim_command
from distrl_jax.devices.simphone import nav
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.simphone.state import LAUNCHER, SHADE

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_KEYS = {
    "3": A.HOME,
    "4": A.BACK,
    "66": A.ENTER,
    "KEYCODE_HOME": A.HOME,
    "KEYCODE_BACK": A.BACK,
    "KEYCODE_ENTER": A.ENTER,
}
_SYSTEM_PACKAGES = {
    LAUNCHER: "com.google.android.apps.nexuslauncher",
    SHADE: "com.android.systemui",
}


@dataclasses.dataclass
class ShellResult:
    """A command line's output as (stream id, bytes) chunks in order, and its exit status.
    ``png`` is set when the output holds a screenshot (where the drop fault cuts it)."""

    chunks: list[tuple[int, bytes]] = dataclasses.field(default_factory=list)
    status: int = 0
    png: bool = False

    @property
    def stdout(self) -> bytes:
        """Standard output alone."""
        return b"".join(d for s, d in self.chunks if s == SHELL_STDOUT)

    @property
    def combined(self) -> bytes:
        """Standard output and error interleaved, as a v1 ``shell:`` stream carries them."""
        return b"".join(d for _, d in self.chunks)


def package_of(app_key: str) -> str:
    """The Android package a simphone app key is served as."""
    return (
        _SYSTEM_PACKAGES.get(app_key)
        or PACKAGES.get(app_key)
        or "com.simphone." + "".join(c for c in app_key if c.isalnum())
    )


class DeviceShell:
    """Runs command lines against ``phone`` (one per served device). ``lock`` serialises all
    simphone access in the server: simphone's screen caches are shared module state."""

    def __init__(self, serial: str, phone: SimPhone, lock: threading.Lock):
        self.serial = serial
        self.phone = phone
        self.lock = lock
        self.props = {
            "sys.boot_completed": "1",
            "ro.product.model": "simphone",
            "ro.product.manufacturer": "distrl_jax",
            "ro.build.version.sdk": "34",
            "ro.build.version.release": "14",
            "ro.serialno": serial,
        }

    @property
    def width(self) -> int:
        """Screen width in pixels."""
        return self.phone.size[1]

    @property
    def height(self) -> int:
        """Screen height in pixels."""
        return self.phone.size[0]

    def run(self, line: str) -> ShellResult:
        """Run a command line; the result's status is the last command's."""
        result = ShellResult()
        try:
            commands = parse_command_line(line)
        except ShellSyntaxError as err:
            result.chunks.append((SHELL_STDERR, f"/system/bin/sh: {err}\n".encode()))
            result.status = 2
            return result
        status = 0
        for cmd in commands:
            if (cmd.op == "&&" and status != 0) or (cmd.op == "||" and status == 0):
                continue
            args = [expand(w, status) for w in cmd.words]
            if args[0] == "exit":
                return dataclasses.replace(result, status=_int(args[1:], status) & 0xFF)
            out, err, status, png = self._dispatch(args)
            if out:
                result.chunks.append((SHELL_STDOUT, out))
            if err:
                result.chunks.append((SHELL_STDERR, err))
            result.png = result.png or png
        result.status = status
        return result

    # ------------------------------------------------------------ commands

    def _dispatch(self, args: list[str]) -> tuple[bytes, bytes, int, bool]:
        name, rest = args[0], args[1:]
        handler = {
            "echo": self._echo,
            "true": lambda a: (b"", b"", 0),
            "false": lambda a: (b"", b"", 1),
            "wm": self._wm,
            "input": self._input,
            "am": self._am,
            "getprop": self._getprop,
            "dumpsys": self._dumpsys,
            SIM_COMMAND: self._sim,
        }.get(name)
        if name == "screencap":
            return (*self._screencap(rest), True)
        if handler is None:
            return b"", f"/system/bin/sh: {name}: not found\n".encode(), 127, False
        return (*handler(rest), False)

    @staticmethod
    def _echo(args: list[str]) -> tuple[bytes, bytes, int]:
        newline = "\n"
        if args[:1] == ["-n"]:
            args, newline = args[1:], ""
        return (" ".join(args) + newline).encode(), b"", 0

    def _wm(self, args: list[str]) -> tuple[bytes, bytes, int]:
        if args == ["size"]:
            return f"Physical size: {self.width}x{self.height}\n".encode(), b"", 0
        if args == ["density"]:
            return b"Physical density: 420\n", b"", 0
        return b"", b"wm: this test server supports 'wm size' and 'wm density'\n", 1

    def _screencap(self, args: list[str]) -> tuple[bytes, bytes, int]:
        if args != ["-p"]:
            return b"", b"screencap: this test server supports only 'screencap -p' to stdout\n", 1
        with self.lock:
            img = self.phone.screenshot()
        buf = io.BytesIO()
        # Level 1: screenshots are served every step and PNG is lossless at any level.
        Image.fromarray(img).save(buf, format="PNG", compress_level=1)
        return buf.getvalue(), b"", 0

    def _input(self, args: list[str]) -> tuple[bytes, bytes, int]:
        if args and args[0] in ("touchscreen", "keyboard", "mouse", "touchpad"):
            args = args[1:]  # an input source: all behave alike here
        if not args:
            return b"", b"Usage: input [<source>] <command> [<arg>...]\n", 1
        verb, rest = args[0], args[1:]
        try:
            if verb == "tap" and len(rest) == 2:
                px, py = float(rest[0]), float(rest[1])
                self._step(A.tap(*from_pixel(px, py, self.width, self.height)))
            elif verb == "swipe" and len(rest) in (4, 5):
                x0, y0, x1, y1 = (float(v) for v in rest[:4])
                ya, xa = from_pixel(x0, y0, self.width, self.height)
                yb, xb = from_pixel(x1, y1, self.width, self.height)
                self._step(A.swipe(ya, xa, yb, xb))
            elif verb == "text" and len(rest) == 1:
                text = android_input_text(rest[0])
                if text:
                    self._step(A.type_text(text))
            elif verb == "keyevent" and rest:
                for code in rest:
                    if code in _KEYS:
                        self._step(_KEYS[code])
                    elif not code.isdigit():
                        raise ValueError(f"unknown keycode {code!r}")
            else:
                return b"", f"Error: Invalid arguments for command: {verb}\n".encode(), 1
        except ValueError as err:
            return b"", f"Error: {err}\n".encode(), 1
        return b"", b"", 0

    def _step(self, action: A.Action) -> None:
        with self.lock:
            self.phone.step(action)

    def _am(self, args: list[str]) -> tuple[bytes, bytes, int]:
        if len(args) == 2 and args[0] == "force-stop":
            with self.lock:
                if package_of(self.phone.state.view.app) == args[1]:
                    nav.go_home(self.phone.state)
            return b"", b"", 0
        return b"", b"am: this test server supports only 'am force-stop PACKAGE'\n", 1

    def _getprop(self, args: list[str]) -> tuple[bytes, bytes, int]:
        if not args:
            lines = "".join(f"[{k}]: [{v}]\n" for k, v in sorted(self.props.items()))
            return lines.encode(), b"", 0
        return (self.props.get(args[0], "") + "\n").encode(), b"", 0

    def _dumpsys(self, args: list[str]) -> tuple[bytes, bytes, int]:
        if not args or args[0] not in ("window", "activity", "display"):
            return b"", f"Can't find service: {' '.join(args[:1])}\n".encode(), 0
        with self.lock:
            pkg = package_of(self.phone.state.view.app)
            screen = self.phone.screen().name
        text = (
            f"WINDOW MANAGER WINDOWS (dumpsys window windows)\n"
            f"  mCurrentFocus=Window{{simphone u0 {pkg}/{pkg}.MainActivity}}\n"
            f"  mFocusedApp=ActivityRecord{{simphone u0 {pkg}/.MainActivity t1}}\n"
            f"  simphoneScreen={screen}\n"
            f"  mDisplayInfo: real {self.width} x {self.height}, rotation 0\n"
            f"  DisplayViewport{{valid=true, type=INTERNAL, orientation=0, "
            f"deviceWidth={self.width}, deviceHeight={self.height}}}\n"
        )
        return text.encode(), b"", 0

    def _sim(self, args: list[str]) -> tuple[bytes, bytes, int]:
        with self.lock:
            return run_sim_command(args, self.phone)


def _int(args: list[str], default: int) -> int:
    try:
        return int(args[0]) if args else default
    except ValueError:
        return 2
