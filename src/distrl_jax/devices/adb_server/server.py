"""A threaded adb server on 127.0.0.1 that serves simphone instances as Android devices.

Clients are the real ones: ``adbutils.AdbClient(host, port)`` and Debian's ``adb -H HOST -P
PORT``. Host services: ``host:version`` (41), ``host:devices``, ``host:devices-l``,
``host:features``, ``host:kill`` (acknowledged, ignored: tests own the server's lifetime),
``host:tport:serial:S|any``, ``host:transport:S``, ``host:transport-any``,
``host:transport-id:N`` and ``host-serial:S:features|get-state|get-serialno|get-devpath``; then
the device services ``shell:``, ``shell,v2,...:`` and ``exec:`` (see :mod:`.shell`). Every
connection runs on its own thread; each served device is one SimPhone with a fixed, seeded
layout. Faults (:mod:`.faults`) are set per device at start or any time later.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Mapping, Sequence

from distrl_jax.devices.adb_server import protocol as P
from distrl_jax.devices.adb_server.faults import DeviceFaults
from distrl_jax.devices.adb_server.shell import DeviceShell, ShellResult
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.tasks.goals import Task

log = logging.getLogger(__name__)

HOST_FEATURES = "shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir,apex,abb,abb_exec"
DEFAULT_SIZE = (2400, 1080)  # (height, width): a Pixel-class phone, as AitW's screenshots


def emulator_serials(n: int) -> list[str]:
    """``emulator-5554``, ``emulator-5556``, ... as the Android emulator numbers its instances."""
    return [f"emulator-{5554 + 2 * i}" for i in range(n)]


class AdbServer:
    """Serve ``devices`` simphones (a count or a list of serials) over the adb host protocol.

    ``size`` is each screen's (height, width) in pixels; ``layout_seed`` fixes every device's
    layout (theme, apps, home screen); ``seed`` seeds the devices' first episodes. Use as a
    context manager, or call ``start()``/``stop()``; ``port`` is the bound port.
    """

    def __init__(
        self,
        devices: int | Sequence[str] = 4,
        *,
        size: tuple[int, int] = DEFAULT_SIZE,
        host: str = "127.0.0.1",
        port: int = 0,
        layout_seed: int = 0,
        seed: int = 0,
        faults: Mapping[str, DeviceFaults] | None = None,
    ):
        serials = emulator_serials(devices) if isinstance(devices, int) else list(devices)
        if not serials or len(set(serials)) != len(serials):
            raise ValueError(f"need at least one device and unique serials, got {serials!r}")
        bad = [s for s in serials if not s or any(c.isspace() for c in s) or ":" in s]
        if bad:
            raise ValueError(f"serials must be non-empty, without spaces or ':', got {bad!r}")
        self.serials = serials
        self.host = host
        self._requested_port = port
        self._lock = threading.Lock()  # one lock for all simphones (shared screen caches)
        self._shells: dict[str, DeviceShell] = {}
        for i, serial in enumerate(serials):
            phone = SimPhone(size=tuple(size), seed=seed + i, layout_seed=layout_seed)
            phone.reset(Task("home", None), seed=seed + i)
            self._shells[serial] = DeviceShell(serial, phone, self._lock)
        self._faults = {s: DeviceFaults() for s in serials}
        for serial, f in (faults or {}).items():
            self.set_faults(serial, **vars(f))
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self.port = 0

    # ------------------------------------------------------------ lifecycle

    def start(self) -> AdbServer:
        """Bind and start accepting connections; returns self."""
        if self._listener is not None:
            raise RuntimeError("AdbServer already started")
        lst = socket.create_server((self.host, self._requested_port), backlog=64)
        self._listener = lst
        self.port = lst.getsockname()[1]
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"adb-server:{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: close the listener and every open connection (hung ones included)."""
        self._stop.set()
        if self._listener is not None:
            # close() alone does not wake a thread blocked in accept() on Linux; shutdown does.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._conns_lock:
            for c in list(self._conns):
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)

    def __enter__(self) -> AdbServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ devices and faults

    def phone(self, serial: str) -> SimPhone:
        """The SimPhone behind ``serial`` (tests read its state directly)."""
        return self._shell(serial).phone

    def faults(self, serial: str) -> DeviceFaults:
        """The live fault settings of ``serial`` (a copy: change them with ``set_faults``)."""
        self._shell(serial)
        return DeviceFaults(**vars(self._faults[serial]))

    def set_faults(self, serial: str, **changes: object) -> DeviceFaults:
        """Change ``serial``'s faults (``offline=True``, ``hang=True``, ``drop_screenshot=True``,
        ``delay_s=0.5``); unnamed ones keep their values. Takes effect on the next request."""
        self._shell(serial)
        unknown = set(changes) - set(vars(DeviceFaults()))
        if unknown:
            raise ValueError(
                f"unknown faults {sorted(unknown)}; known: {sorted(vars(DeviceFaults()))}"
            )
        merged = DeviceFaults(**{**vars(self._faults[serial]), **changes})  # validates
        self._faults[serial] = merged
        return DeviceFaults(**vars(merged))

    def clear_faults(self, serial: str | None = None) -> None:
        """Remove every fault from ``serial`` (all devices when None)."""
        for s in [serial] if serial is not None else self.serials:
            self._shell(s)
            self._faults[s] = DeviceFaults()

    def _shell(self, serial: str) -> DeviceShell:
        try:
            return self._shells[serial]
        except KeyError:
            raise KeyError(f"no served device {serial!r}; serving {self.serials}") from None

    def _state(self, serial: str) -> str:
        return "offline" if self._faults[serial].offline else "device"

    # ------------------------------------------------------------ connections

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed by stop()
            with self._conns_lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._handle(conn)
        except P.ProtocolError as err:  # say what was wrong, then close
            with contextlib.suppress(OSError):
                conn.sendall(P.fail(f"bad adb request: {err}"[: P.MAX_REQUEST_BYTES]))
                _finish(conn)
        except OSError:
            pass  # the client went away
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            conn.close()

    def _handle(self, conn: socket.socket) -> None:
        serial: str | None = None  # the transport chosen on this connection
        while not self._stop.is_set():
            req = P.read_request(conn)
            if req is None:
                return
            log.debug("adb request %r (transport %s)", req, serial)
            if serial is not None:
                self._device_service(conn, serial, req)
                return
            # As the real server does, a host query is answered and the connection closed
            # (adb's client waits for that close); only a transport choice keeps it open.
            if req.startswith("host-serial:"):
                self._host_serial(conn, req[len("host-serial:") :])
                _finish(conn)
                return
            chosen = self._transport(conn, req)
            if chosen is None:
                self._host_service(conn, req)
                _finish(conn)
                return
            if not chosen:
                return  # transport refused; the FAIL has been sent
            serial = chosen

    def _host_service(self, conn: socket.socket, req: str) -> None:
        if req == "host:version":
            conn.sendall(P.okay(f"{P.ADB_SERVER_VERSION:04x}"))
        elif req in ("host:devices", "host:devices-l"):
            lines = []
            for i, s in enumerate(self.serials):
                if req.endswith("-l"):
                    tags = f"product:simphone model:simphone device:simphone transport_id:{i + 1}"
                    lines.append(f"{s:<22} {self._state(s)} {tags}\n")
                else:
                    lines.append(f"{s}\t{self._state(s)}\n")
            conn.sendall(P.okay("".join(lines)))
        elif req == "host:features" or req == "host:host-features":
            conn.sendall(P.okay(HOST_FEATURES))
        elif req == "host:kill":
            conn.sendall(P.okay())
        else:
            conn.sendall(P.fail(f"unknown host service {req!r} (distrl_jax test adb server)"))

    def _transport(self, conn: socket.socket, req: str) -> str | None:
        """Handle a transport request: the chosen serial, "" if refused, None if not one."""
        tport = req.startswith("host:tport:")
        if tport:
            which = req[len("host:tport:") :]
            target = "" if which == "any" else which.removeprefix("serial:")
        elif req.startswith("host:transport:"):
            target = req[len("host:transport:") :]
        elif req in ("host:transport-any", "host:transport-local", "host:transport-usb"):
            target = ""
        elif req.startswith("host:transport-id:"):
            tid = req[len("host:transport-id:") :]
            idx = int(tid) - 1 if tid.isdigit() else -1
            target = self.serials[idx] if 0 <= idx < len(self.serials) else f"id {tid}"
        else:
            return None
        if not target:
            online = [s for s in self.serials if self._state(s) == "device"]
            if len(online) != 1:
                conn.sendall(
                    P.fail(
                        "more than one device/emulator" if online else "no devices/emulators found"
                    )
                )
                return ""
            target = online[0]
        if target not in self._faults:
            conn.sendall(P.fail(f"device '{target}' not found"))
            return ""
        if self._faults[target].offline:
            conn.sendall(P.fail("device offline"))
            return ""
        tid_bytes = P.transport_id_bytes(self.serials.index(target) + 1) if tport else b""
        conn.sendall(P.okay() + tid_bytes)
        return target

    def _host_serial(self, conn: socket.socket, rest: str) -> None:
        serial, _, command = rest.rpartition(":")
        if serial not in self._faults:
            conn.sendall(P.fail(f"device '{serial}' not found"))
            return
        if command == "get-state":
            if self._state(serial) == "offline":
                conn.sendall(P.fail("device offline"))
            else:
                conn.sendall(P.okay("device"))
        elif command == "get-serialno":
            conn.sendall(P.okay(serial))
        elif command == "get-devpath":
            conn.sendall(P.okay(f"simphone:{serial}"))
        elif command == "features":
            conn.sendall(P.okay(HOST_FEATURES))
        elif command.startswith("wait-for-"):
            conn.sendall(
                P.okay()
                + (P.okay() if self._state(serial) == "device" else P.fail("device offline"))
            )
        else:
            conn.sendall(P.fail(f"unknown service host-serial:{serial}:{command}"))

    def _device_service(self, conn: socket.socket, serial: str, req: str) -> None:
        if not self._wait_out_faults(serial):
            return  # hung: the request is never answered
        service = P.parse_service(req)
        if service is None or not service.command:
            conn.sendall(
                P.fail(
                    f"service {req!r} is not supported by distrl_jax's test adb server (shell:CMD, shell,v2:CMD, exec:CMD)"
                )
            )
            return
        result = self._shell(serial).run(service.command)
        conn.sendall(P.okay())
        if service.kind == "shell_v2":
            payload = b"".join(P.shell_packet(s, d) for s, d in result.chunks)
            exit_packet = P.shell_packet(P.SHELL_EXIT, bytes([result.status & 0xFF]))
        else:
            payload = result.stdout if service.kind == "exec" else result.combined
            exit_packet = b""
        if result.png and self._faults[serial].drop_screenshot:
            conn.sendall(payload[: max(1, len(payload) // 3)])
            return  # closed mid-screenshot, with no exit status
        conn.sendall(payload + exit_packet)
        _finish(conn)

    def _wait_out_faults(self, serial: str) -> bool:
        """Sleep a slow device's delay; block while it hangs. False when it hung (never answer)."""
        delay = self._faults[serial].delay_s
        if delay > 0 and self._stop.wait(delay):
            return False
        if not self._faults[serial].hang:
            return True
        while self._faults[serial].hang and not self._stop.wait(0.05):
            pass
        return False


def _finish(conn: socket.socket) -> None:
    """Half-close, then drain what the client still sends (a v2 client's close-stdin packet):
    closing with unread input would reset the connection and could discard our output."""
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(2.0)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and conn.recv(4096):
            pass
    except OSError:
        pass


__all__ = ["AdbServer", "DeviceFaults", "ShellResult", "emulator_serials"]
