"""Faults the test ADB server can inject per device, set at start or changed while it serves.

* ``offline`` — ``host:devices`` lists the device as ``offline`` and choosing its transport
  fails with ``device offline`` (what a phone whose adbd died looks like);
* ``hang`` — a device request is read and never answered (a frozen emulator); the connection
  stays open until the fault is cleared or the server stops, then closes unanswered;
* ``drop_screenshot`` — ``screencap`` sends part of its PNG and closes the connection;
* ``delay_s`` — every device request waits this long before it is answered (a slow device).

Faults are plain data; the server reads them at each request, so changing one takes effect on
the next request. The CLI's ``--fault SERIAL=SPEC`` uses :func:`parse_fault_spec`.
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass
class DeviceFaults:
    """The faults active on one served device (all off by default)."""

    offline: bool = False
    hang: bool = False
    drop_screenshot: bool = False
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise ValueError when a field has an impossible value."""
        if not (isinstance(self.delay_s, (int, float)) and math.isfinite(self.delay_s)):
            raise ValueError(f"delay_s must be a finite number of seconds, got {self.delay_s!r}")
        if self.delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {self.delay_s}")

    @property
    def any(self) -> bool:
        """Whether any fault is active."""
        return self.offline or self.hang or self.drop_screenshot or self.delay_s > 0

    def describe(self) -> str:
        """A short human-readable summary (``none`` when no fault is active)."""
        parts = [n for n in ("offline", "hang", "drop_screenshot") if getattr(self, n)]
        if self.delay_s > 0:
            parts.append(f"delay_s={self.delay_s:g}")
        return ",".join(parts) or "none"


FAULT_NAMES = ("offline", "hang", "drop_screenshot", "delay_s")


def parse_fault_spec(spec: str) -> tuple[str, DeviceFaults]:
    """Parse ``SERIAL=offline,hang,drop,delay=0.5`` into (serial, faults).

    ``drop`` is short for ``drop_screenshot`` and ``delay``/``slow`` for ``delay_s``.
    """
    serial, sep, body = spec.partition("=")
    if not sep or not serial.strip():
        raise ValueError(
            f"fault spec {spec!r} must look like SERIAL=FAULT[,FAULT...], "
            "e.g. emulator-5556=offline or emulator-5554=delay=0.5,drop"
        )
    faults = DeviceFaults()
    for item in filter(None, (p.strip() for p in body.split(","))):
        name, _, value = item.partition("=")
        name = {"drop": "drop_screenshot", "delay": "delay_s", "slow": "delay_s"}.get(name, name)
        if name == "delay_s":
            try:
                faults.delay_s = float(value)
            except ValueError:
                raise ValueError(f"fault {item!r}: delay needs seconds, e.g. delay=0.5") from None
        elif name in FAULT_NAMES and not value:
            setattr(faults, name, True)
        else:
            raise ValueError(
                f"unknown fault {item!r} in {spec!r}; known: offline, hang, drop, delay=SECONDS"
            )
    faults.check()
    return serial.strip(), faults
