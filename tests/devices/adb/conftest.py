"""Fixtures for the adb backend tests: a test ADB server serving simphones on 127.0.0.1:0.

Every client here is pointed at the fixture server's port; AdbDevice never starts an adb daemon,
and raw adbutils clients are only used while their server is up (adbutils would otherwise run
`adb start-server`).
"""

from __future__ import annotations

import pytest

from distrl_jax.devices.adb_server import AdbServer

SERVED_SIZE = (400, 180)  # (height, width): small enough to render and encode in ~1 ms


@pytest.fixture
def server():
    """Two simphone devices (emulator-5554, emulator-5556) with a fixed layout."""
    with AdbServer(2, size=SERVED_SIZE, layout_seed=0) as s:
        yield s
