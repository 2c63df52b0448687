"""The test ADB server: host protocol over raw sockets, adbutils and Debian's adb; the shell;
faults; concurrency; the CLI."""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import adbutils
import numpy as np
import pytest
from PIL import Image

from distrl_jax.devices.adb_server import AdbServer, DeviceFaults, encode_task, parse_fault_spec
from distrl_jax.devices.adb_server import protocol as P
from distrl_jax.devices.simphone.expert import ScriptedExpert
from distrl_jax.devices.simphone.state import LAUNCHER
from distrl_jax.tasks.goals import Task
from distrl_jax.tasks.parser import parse

pytestmark = pytest.mark.timeout(60)
S0, S1 = "emulator-5554", "emulator-5556"


def _connect(server: AdbServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def _query(server: AdbServer, *requests: str) -> bytes:
    """Send requests on one connection and read everything until the server closes."""
    with _connect(server) as sock:
        for r in requests:
            sock.sendall(P.encode_request(r))
        return _read_all(sock)


def _read_status(sock: socket.socket) -> tuple[bytes, str]:
    status = P.recv_exact(sock, 4)
    size = int(P.recv_exact(sock, 4), 16)
    return status, P.recv_exact(sock, size).decode() if size else ""


# ---------------------------------------------------------------- raw protocol


def test_host_version_devices_and_features_over_a_raw_socket(server):
    assert _query(server, "host:version") == b"OKAY00040029"
    assert _query(server, "host:devices") == b"OKAY" + P.encode_block(
        f"{S0}\tdevice\n{S1}\tdevice\n"
    )
    long = _query(server, "host:devices-l").decode()
    assert re.search(rf"{S1} +device product:simphone .*transport_id:2\n", long)
    assert b"shell_v2" in _query(server, f"host-serial:{S0}:features")
    assert _query(server, f"host-serial:{S1}:get-state") == b"OKAY" + P.encode_block("device")
    assert _query(server, f"host-serial:{S1}:get-serialno") == b"OKAY" + P.encode_block(S1)


def test_unknown_services_and_serials_fail_with_a_message(server):
    with _connect(server) as sock:
        sock.sendall(P.encode_request("host:frobnicate"))
        status, msg = _read_status(sock)
    assert status == b"FAIL" and "unknown host service" in msg
    with _connect(server) as sock:
        sock.sendall(P.encode_request("host:transport:emulator-9999"))
        status, msg = _read_status(sock)
    assert (status, msg) == (b"FAIL", "device 'emulator-9999' not found")
    # Two devices: "any" is ambiguous, as with the real server.
    with _connect(server) as sock:
        sock.sendall(P.encode_request("host:transport-any"))
        assert _read_status(sock) == (b"FAIL", "more than one device/emulator")


def test_bad_framing_closes_that_connection_only(server):
    with _connect(server) as sock:
        sock.sendall(b"zzzzhost:version")
        status, msg = _read_status(sock)
        assert status == b"FAIL" and "4-hex-digit length prefix" in msg
        assert _read_all(sock) == b""  # then closed
    assert _query(server, "host:version") == b"OKAY00040029"


def test_tport_then_shell_v1_v2_and_exec(server):
    with _connect(server) as sock:
        sock.sendall(P.encode_request(f"host:tport:serial:{S1}"))
        assert P.recv_exact(sock, 4) == b"OKAY"
        assert int.from_bytes(P.recv_exact(sock, 8), "little") == 2
        sock.sendall(P.encode_request("shell:echo hi; nosuch"))
        assert _read_all(sock) == b"OKAYhi\n/system/bin/sh: nosuch: not found\n"
    with _connect(server) as sock:
        sock.sendall(P.encode_request(f"host:transport:{S0}"))
        sock.sendall(P.encode_request("shell,v2,TERM=xterm,raw:echo out; nosuch"))
        data = _read_all(sock)
    assert data == (
        b"OKAYOKAY"
        + P.shell_packet(P.SHELL_STDOUT, b"out\n")
        + P.shell_packet(P.SHELL_STDERR, b"/system/bin/sh: nosuch: not found\n")
        + P.shell_packet(P.SHELL_EXIT, bytes([127]))
    )
    with _connect(server) as sock:
        sock.sendall(P.encode_request(f"host:transport:{S0}"))
        sock.sendall(P.encode_request("exec:screencap -p"))
        data = _read_all(sock)
    assert data[:8] == b"OKAYOKAY"
    png = np.asarray(Image.open(io.BytesIO(data[8:])).convert("RGB"))
    np.testing.assert_array_equal(png, server.phone(S0).screenshot())


# ---------------------------------------------------------------- through adbutils


def test_adbutils_client_sees_devices_and_runs_commands(server):
    client = adbutils.AdbClient("127.0.0.1", server.port)
    assert client.server_version() == 41
    assert [(i.serial, i.state) for i in client.list()] == [(S0, "device"), (S1, "device")]
    d = client.device(S0)
    assert d.shell("wm size") == "Physical size: 180x400"
    assert tuple(d.window_size()) == (180, 400)
    assert d.shell("getprop sys.boot_completed") == "1"
    assert d.shell("echo -n a   b") == "a b"
    assert d.shell("frob x") == "/system/bin/sh: frob: not found"
    assert "mCurrentFocus=Window{" in d.shell("dumpsys window")
    ret = d.shell2("echo hi; false", v2=True)
    assert (ret.returncode, ret.output) == (1, "hi\n")
    assert d.get_state() == "device"
    img = d.screenshot(error_ok=False)
    np.testing.assert_array_equal(np.asarray(img), server.phone(S0).screenshot())


def test_input_commands_drive_the_simphone(server):
    d = adbutils.AdbClient("127.0.0.1", server.port).device(S0)
    phone = server.phone(S0)
    assert phone.screen().name == "launcher.home"
    d.shell("input swipe 90 320 90 100 300")  # swipe up: the app drawer
    assert phone.screen().name == "launcher.drawer"
    d.shell("input keyevent 3")
    assert phone.screen().name == "launcher.home"
    d.shell("input tap 90 32")  # the launcher's search bar (y=0.08)
    assert phone.state.focus
    d.shell("input text 'a%sb;c'")
    assert phone.state.text == "a b;c"
    bad = d.shell2("input text two words").output
    assert "Invalid arguments" in bad


def test_force_stop_closes_the_running_app_only(server):
    d = adbutils.AdbClient("127.0.0.1", server.port).device(S0)
    task = Task("Open the clock app", parse("Open the clock app"))
    assert d.shell(f"distrl-sim reset {encode_task(task)} 3") == "ok"
    phone = server.phone(S0)
    expert = ScriptedExpert(noise=0.0, seed=0)
    while phone.state.view.app != "clock":
        phone.step(expert.act(task.goal, phone))
    d.shell("am force-stop com.android.chrome")
    assert phone.state.view.app == "clock"
    d.shell("am force-stop com.google.android.deskclock")
    assert phone.state.view.app == LAUNCHER


def test_distrl_sim_reset_and_judge(server):
    d = adbutils.AdbClient("127.0.0.1", server.port).device(S1)
    task = Task("Show me my notifications", parse("Show me my notifications"))
    assert d.shell("distrl-sim ping") == "distrl-sim ok"
    assert d.shell(f"distrl-sim reset {encode_task(task)} 11") == "ok"
    assert server.phone(S1).state.seed == 11
    verdict = d.shell(f"distrl-sim judge {encode_task(task)}")
    assert verdict.startswith('{"success": false')
    d.shell("input swipe 90 2 90 300 300")  # pull down from the status bar: the shade
    assert d.shell(f"distrl-sim judge {encode_task(task)}").startswith('{"success": true')
    err = d.shell2("distrl-sim judge bm90LWpzb24", v2=True)
    assert err.returncode == 1 and "not base64 of JSON" in err.stderr


# ---------------------------------------------------------------- concurrency and faults


def test_concurrent_connections_are_served_in_parallel(server):
    client = adbutils.AdbClient("127.0.0.1", server.port)
    want = {s: server.phone(s).screenshot().copy() for s in (S0, S1)}

    def work(i: int) -> bool:
        serial = (S0, S1)[i % 2]
        d = client.device(serial)
        same = np.array_equal(np.asarray(d.screenshot(error_ok=False)), want[serial])
        return same and d.shell(f"echo {i}") == str(i)

    server.set_faults(S1, delay_s=0.3)
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(work, range(32)))
    elapsed = time.monotonic() - start
    assert all(results)
    # 16 requests to the slow device each wait 0.3 s twice; serially that would be ~10 s.
    assert elapsed < 4.0, f"32 concurrent clients took {elapsed:.1f}s"


def test_offline_device_is_listed_and_refuses_its_transport(server):
    server.set_faults(S1, offline=True)
    client = adbutils.AdbClient("127.0.0.1", server.port)
    assert [(i.serial, i.state) for i in client.list()] == [(S0, "device"), (S1, "offline")]
    with pytest.raises(adbutils.AdbError, match="device offline"):
        client.device(S1).shell("echo hi")
    assert client.device(S0).shell("echo ok") == "ok"
    server.clear_faults(S1)
    assert client.device(S1).shell("echo back") == "back"


def test_hang_never_answers_and_does_not_block_other_devices(server):
    server.set_faults(S0, hang=True)
    client = adbutils.AdbClient("127.0.0.1", server.port)
    # A raw socket: adbutils' shell() waits up to its 600 s default for the OKAY of a hung one.
    with _connect(server) as sock:
        sock.sendall(P.encode_request(f"host:transport:{S0}") + P.encode_request("shell:echo"))
        assert P.recv_exact(sock, 4) == b"OKAY"  # the transport is chosen...
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # ...but the command is never answered
        assert client.device(S1).shell("echo fine") == "fine"
    server.clear_faults(S0)
    assert client.device(S0).shell("echo hi") == "hi"


def test_drop_mid_screenshot_truncates_the_png(server):
    server.set_faults(S0, drop_screenshot=True)
    with _connect(server) as sock:
        sock.sendall(P.encode_request(f"host:transport:{S0}"))
        sock.sendall(P.encode_request("exec:screencap -p"))
        data = _read_all(sock)[8:]
    assert data.startswith(b"\x89PNG")
    with pytest.raises(OSError):
        Image.open(io.BytesIO(data)).load()
    d = adbutils.AdbClient("127.0.0.1", server.port).device(S0)
    assert d.shell("echo other commands still work") == "other commands still work"


def test_fault_api_and_specs(server):
    assert server.set_faults(S0, delay_s=0.25).describe() == "delay_s=0.25"
    with pytest.raises(ValueError, match="unknown faults"):
        server.set_faults(S0, explode=True)
    with pytest.raises(ValueError, match=">= 0"):
        server.set_faults(S0, delay_s=-1)
    with pytest.raises(KeyError, match="no served device"):
        server.faults("nope")
    assert parse_fault_spec("emulator-5556=offline,drop,delay=0.5") == (
        "emulator-5556",
        DeviceFaults(offline=True, drop_screenshot=True, delay_s=0.5),
    )
    with pytest.raises(ValueError, match="unknown fault"):
        parse_fault_spec("emulator-5556=melt")


def test_faults_given_at_start():
    with AdbServer(2, size=(64, 32), faults={S1: DeviceFaults(offline=True)}) as s:
        states = [i.state for i in adbutils.AdbClient("127.0.0.1", s.port).list()]
    assert states == ["device", "offline"]


# ---------------------------------------------------------------- Debian adb and the CLI


@pytest.mark.skipif(
    shutil.which("adb") is None, reason="Debian's adb is not installed (apt-get install adb)"
)
def test_debian_adb_client_against_the_server(server):
    base = ["adb", "-H", "127.0.0.1", "-P", str(server.port)]

    def adb(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*base, *args], capture_output=True, timeout=20, stdin=subprocess.DEVNULL
        )

    out = adb("devices")
    assert out.returncode == 0, out.stderr
    assert f"{S0}\tdevice" in out.stdout.decode() and f"{S1}\tdevice" in out.stdout.decode()
    out = adb("-s", S0, "shell", "echo", "hi")
    assert (out.returncode, out.stdout) == (0, b"hi\n")
    assert adb("-s", S0, "shell", "false").returncode == 1
    png = adb("-s", S1, "exec-out", "screencap", "-p").stdout
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    np.testing.assert_array_equal(img, server.phone(S1).screenshot())


def test_cli_prints_its_port_and_serves():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "distrl_jax.devices.adb_server", "--devices", "3", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        m = re.fullmatch(
            r"adb server for 3 simphone devices on 127\.0\.0\.1:(\d+) "
            r"\(serials emulator-5554 emulator-5556 emulator-5558\)\n",
            line,
        )
        assert m, (
            f"unexpected first line {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        )
        client = adbutils.AdbClient("127.0.0.1", int(m.group(1)))
        assert len(client.list()) == 3
        assert client.device("emulator-5558").shell("wm size") == "Physical size: 1080x2400"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=30)  # generous: CI machines are shared
        finally:
            if proc.poll() is None:
                proc.kill()
    assert rc == 0


def test_stop_releases_hung_connections():
    s = AdbServer(1, size=(64, 32)).start()
    s.set_faults(S0, hang=True)
    sock = _connect(s)
    sock.sendall(P.encode_request(f"host:transport:{S0}") + P.encode_request("shell:echo x"))
    assert P.recv_exact(sock, 4) == b"OKAY"
    start = time.monotonic()
    s.stop()
    sock.settimeout(5)
    # Closed unanswered, promptly; with the request still unread, the close arrives as a reset.
    with contextlib.suppress(ConnectionResetError):
        assert _read_all(sock) == b""
    assert time.monotonic() - start < 2
    sock.close()
