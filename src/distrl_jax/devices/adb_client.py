"""The adb wire plumbing under :class:`~distrl_jax.devices.adb_device.AdbDevice`, and the
reading of the device's answers.

An ``adbutils`` client whose connections never start an adb daemon and never read past one
shared deadline (:class:`DeadlineClient`); binary-clean ``exec:`` commands (:func:`exec_out`);
the exit-status framing of ``shell:`` lines, which carry no exit status of their own
(:func:`with_exit_status` appends an ``echo`` of ``$?``, :func:`split_exit_status` cuts it off);
and the answers of ``screencap -p`` (:func:`decode_png`) and ``wm size`` (:func:`parse_wm_size`).
"""

from __future__ import annotations

import io
import math
import re
import socket
import time

import adbutils
import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_WM_SIZE = re.compile(r"(Override|Physical) size: (\d+)x(\d+)")

# Appended to every shell line: `shell:` has no exit status, so the line prints its own (on a
# line of its own: a trailing comment or newline in the command cannot swallow it).
_STATUS_MARKER = b"__distrl_rc="
_STATUS_SUFFIX = f"\necho {_STATUS_MARKER.decode()}$?"
_STATUS_VALUE = re.compile(rb"(\d{1,3})\s*\Z")


class _DeadlineConnection(adbutils.AdbConnection):
    """An adbutils connection that never spawns a daemon and never reads past a deadline."""

    def __init__(self, host: str, port: int, deadline: float):
        self._deadline = deadline
        super().__init__(host, port)

    def _safe_connect(self) -> socket.socket:
        return self._create_socket()  # no `adb start-server` fallback: fail instead

    def _read_fully(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("adb call deadline passed")
            self.conn.settimeout(left)
            chunk = self.conn.recv(n - len(buf))
            if not chunk:
                break
            buf += chunk
        return buf


class DeadlineClient(adbutils.AdbClient):
    """``adbutils.AdbClient`` whose connections share the deadline the device sets per call."""

    def __init__(self, host: str, port: int):
        super().__init__(host, port)
        self.deadline = math.inf

    def make_connection(self, timeout: float | None = None) -> adbutils.AdbConnection:
        """A connection bounded by the current deadline (``timeout`` is ignored)."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise adbutils.AdbTimeout("adb call deadline passed before connecting")
        conn = _DeadlineConnection(self.host, self.port, self.deadline)
        conn.conn.settimeout(left)
        return conn


def exec_out(device: adbutils.AdbDevice, command: str) -> bytes:
    """``exec:`` (binary-clean: no shell, no pty newline translation) as ``adb exec-out``."""
    conn = device.open_transport()
    try:
        conn.send_command("exec:" + command)
        conn.check_okay()
        return conn.read_until_close(encoding=None)
    finally:
        conn.close()


def with_exit_status(command: str) -> str:
    """``command`` followed, on a line of its own, by an ``echo`` of a marker and its ``$?``."""
    return f"{command}{_STATUS_SUFFIX}"


def split_exit_status(raw: bytes) -> tuple[int, str] | None:
    """(exit status, output as text) of a :func:`with_exit_status` line's raw answer, or None
    when the marker and status are missing (a connection cut short)."""
    at = raw.rfind(_STATUS_MARKER)
    found = _STATUS_VALUE.match(raw, at + len(_STATUS_MARKER)) if at >= 0 else None
    if found is None:
        return None
    return int(found.group(1)), raw[:at].decode("utf-8", errors="replace")


def decode_png(data: bytes) -> np.ndarray:
    """A PNG screenshot as [H, W, 3] uint8; ValueError when it is not a whole PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"screencap did not return a PNG (starts {data[:40]!r})")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError) as err:  # PIL: truncated or corrupt image
        raise ValueError(
            f"screencap PNG of {len(data)} bytes is truncated or corrupt: {err}"
        ) from err


def parse_wm_size(out: str) -> tuple[int, int] | None:
    """The screen's (width, height) from ``wm size``'s answer (its override size if it has one,
    else its physical size), or None when it names neither or a size below 1 pixel."""
    found = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in _WM_SIZE.finditer(out)}
    wh = found.get("Override") or found.get("Physical")
    return None if wh is None or min(wh) < 1 else wh
