"""``python -m distrl_jax.doctor``: what this machine offers a distrl_jax run.

Reports JAX's devices, package versions, adb on PATH (and the server port), KVM for emulators,
whether loopback ports can be bound, and CPU/memory. Exit code 0 unless a core package is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys

from distrl_jax.run_folder import versions


def _free_port() -> int | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    except OSError:
        return None


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def report() -> tuple[list[tuple[str, str, bool]], bool]:
    """Rows of (check, finding, ok) and whether the core stack is usable."""
    rows: list[tuple[str, str, bool]] = []
    vers = versions()
    core_ok = all(
        vers[p] != "missing" for p in ("jax", "flax", "optax", "orbax-checkpoint", "pyzmq")
    )
    rows.append(("packages", ", ".join(f"{k} {v}" for k, v in vers.items()), core_ok))
    try:
        import jax

        devs = jax.devices()
        rows.append(
            ("jax devices", f"{jax.default_backend()}: " + ", ".join(str(d) for d in devs), True)
        )
    except Exception as e:  # doctor reports, it does not crash
        rows.append(("jax devices", f"error: {e}", False))
    adb = shutil.which("adb")
    rows.append(
        (
            "adb on PATH",
            adb or "not found (apt-get install adb; adbutils bundles one too)",
            adb is not None,
        )
    )
    rows.append(("adb server :5037", "listening" if _port_open(5037) else "not running", True))
    kvm = os.path.exists("/dev/kvm")
    rows.append(
        (
            "KVM (/dev/kvm)",
            "present" if kvm else "absent: Android emulators will be slow or fail",
            kvm,
        )
    )
    port = _free_port()
    rows.append(
        ("loopback port", f"bound 127.0.0.1:{port}" if port else "cannot bind", port is not None)
    )
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":")[1].strip()
    except OSError:
        pass
    rows.append(("cpu / memory", f"{os.cpu_count()} cores, {mem or 'unknown'}", True))
    return rows, core_ok


def main() -> int:
    """Print the report; exit 1 if core packages are missing."""
    rows, ok = report()
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="distrl_jax doctor")
        for c in ("check", "finding", "ok"):
            t.add_column(c)
        for name, finding, good in rows:
            t.add_row(name, finding, "yes" if good else "NO")
        Console().print(t)
    except ImportError:
        for name, finding, good in rows:
            print(f"{'ok ' if good else 'NO '} {name}: {finding}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
