"""A test ADB server that serves simphone instances as Android devices (DESIGN §3, adb).

It speaks the adb host protocol on 127.0.0.1, so the real clients (``adbutils``, Debian's
``adb``) drive simphone exactly as they would an emulator, and it can inject per-device faults
(offline, hang, a dropped screenshot, slow answers). It also understands one command no Android
device has, ``distrl-sim`` (:mod:`.sim_control`), for seeded resets and an exact judge in tests.

    with AdbServer(devices=2, size=(800, 360)) as server:
        adbutils.AdbClient("127.0.0.1", server.port).device("emulator-5554").shell("wm size")

From a shell: ``python -m distrl_jax.devices.adb_server --devices 4 --port 0``.
"""

from distrl_jax.devices.adb_server.faults import DeviceFaults, parse_fault_spec
from distrl_jax.devices.adb_server.server import AdbServer, emulator_serials
from distrl_jax.devices.adb_server.sim_control import SIM_COMMAND, decode_task, encode_task

__all__ = [
    "SIM_COMMAND",
    "AdbServer",
    "DeviceFaults",
    "decode_task",
    "emulator_serials",
    "encode_task",
    "parse_fault_spec",
]
