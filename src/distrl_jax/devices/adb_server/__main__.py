"""``python -m distrl_jax.devices.adb_server``: serve simphone devices over adb until Ctrl-C.

Prints one line, ``adb server for N simphone devices on HOST:PORT (serials ...)``, then serves.
Point clients at it explicitly (``adb -H HOST -P PORT devices``, ``ANDROID_ADB_SERVER_PORT``,
``adbutils.AdbClient(HOST, PORT)``); a client that finds no server may start a real adb daemon.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from distrl_jax.devices.adb_server.faults import parse_fault_spec
from distrl_jax.devices.adb_server.server import DEFAULT_SIZE, AdbServer


def _size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT (as ``wm size`` prints it) to (height, width)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size must be WIDTHxHEIGHT, e.g. 1080x2400, got {text!r}"
        ) from None
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"size must be at least 8x8 pixels, got {text!r}")
    return h, w


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m distrl_jax.devices.adb_server",
        description="A test adb server whose devices are simphones (for distrl_jax tests and "
        "end-to-end runs of the adb backend without an emulator).",
    )
    p.add_argument("--devices", type=int, default=4, help="number of devices (emulator-5554, ...)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 = any free port")
    default = f"{DEFAULT_SIZE[1]}x{DEFAULT_SIZE[0]}"
    p.add_argument("--size", type=_size, default=DEFAULT_SIZE, help=f"WxH (default {default})")
    p.add_argument("--layout-seed", type=int, default=0, help="fixed device layout seed")
    p.add_argument("--seed", type=int, default=0, help="seed of the devices' first episodes")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SERIAL=SPEC",
        help="inject a fault, e.g. emulator-5556=offline or emulator-5554=delay=0.5,drop,hang",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until SIGINT or SIGTERM."""
    args = _parser().parse_args(argv)
    if args.devices < 1:
        print("error: --devices must be >= 1", file=sys.stderr)
        return 2
    try:
        faults = dict(parse_fault_spec(s) for s in args.fault)
        server = AdbServer(
            args.devices,
            size=args.size,
            host=args.host,
            port=args.port,
            layout_seed=args.layout_seed,
            seed=args.seed,
            faults=faults,
        )
    except (ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    done = threading.Event()
    # Both signals get a handler of ours: a process started in the background by a
    # non-interactive shell inherits SIGINT as ignored, and Ctrl-C would then never stop it.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with server:
        print(
            f"adb server for {len(server.serials)} simphone devices on {server.host}:{server.port} "
            f"(serials {' '.join(server.serials)})",
            flush=True,
        )
        while not done.wait(0.2):  # a timed wait, so the handler runs promptly
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
