"""AdbDevice through the real adbutils client against the test server: episodes equal to
in-process simphone, typing round trips, fault handling and recovery, the env factory."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator

import chex
import numpy as np
import pytest

from distrl_jax.config import Config
from distrl_jax.core import InfrastructureError
from distrl_jax.devices import actions as A
from distrl_jax.devices.adb_device import (
    AdbDevice,
    AdbSimEvaluator,
    make_adb_env,
    resize_screen,
)
from distrl_jax.devices.adb_server import AdbServer
from distrl_jax.devices.simphone.expert import ScriptedExpert
from distrl_jax.devices.simphone.judge import SimEvaluator
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.task_env import TaskEnv
from distrl_jax.tasks.goals import Task
from distrl_jax.tasks.parser import parse

pytestmark = pytest.mark.timeout(60)
S0, S1 = "emulator-5554", "emulator-5556"
MODEL_SIZE = (128, 64)
SERVED_SIZE = (400, 180)  # the conftest server's screens (height, width)
TASKS = [
    "Open the clock app",
    "Search for hotels in Paris on Google",
    'Go to costco.com, search for "bose soundsport free", and select the first entry',
]


def _task(text: str) -> Task:
    return Task(text, parse(text))


def _device(server: AdbServer, serial: str = S0, **kw) -> AdbDevice:
    opts = dict(port=server.port, size=MODEL_SIZE, timeout_s=1.0, settle_poll_s=0.0)
    return AdbDevice(serial, **{**opts, **kw})


def _focus_search_bar(device) -> None:
    device.step(A.tap(0.08, 0.5))  # the launcher's search bar


@pytest.mark.parametrize("text", TASKS)
def test_episode_over_adb_equals_the_same_episode_on_simphone(server, text):
    task = _task(text)
    dev = _device(server, sim_control=True)
    ref = SimPhone(size=SERVED_SIZE, layout_seed=0)
    expert = ScriptedExpert(noise=0.0, seed=0)
    got = dev.reset(task, seed=7)
    chex.assert_shape(got, (*MODEL_SIZE, 3))
    np.testing.assert_array_equal(got, resize_screen(ref.reset(task, seed=7), MODEL_SIZE))
    for _ in range(task.horizon):
        action = expert.act(task.goal, ref)
        if action.kind is A.ActionType.STATUS_TASK_COMPLETE:
            break
        got = dev.step(action)
        want = resize_screen(ref.step(action), MODEL_SIZE)
        np.testing.assert_array_equal(got, want, err_msg=A.to_compact(action))
        mine = AdbSimEvaluator().evaluate(task, dev, got, [])
        assert mine == SimEvaluator().evaluate(task, ref, want, [])
    assert AdbSimEvaluator().evaluate(task, dev, got, []).success


def test_screens_at_the_served_size_are_exact_without_resizing(server):
    dev = _device(server, size=SERVED_SIZE)
    np.testing.assert_array_equal(dev.screenshot(), server.phone(S0).screenshot())
    assert dev.screen_wh == (SERVED_SIZE[1], SERVED_SIZE[0])


def test_task_env_rewards_match_simphone(server):
    cfg = Config()
    cfg = dataclasses.replace(cfg, device=dataclasses.replace(cfg.device, adb_port=server.port))
    env = make_adb_env(cfg, S1, sim_control=True, timeout_s=2.0)
    env.device.settle_poll_s = 0.0
    ref = TaskEnv(SimPhone(size=SERVED_SIZE, layout_seed=0), SimEvaluator())
    task = _task(TASKS[1])
    expert = ScriptedExpert(noise=0.0, seed=0)
    o1, o2 = env.reset(task, seed=3), ref.reset(task, seed=3)
    np.testing.assert_array_equal(o1.screen, resize_screen(o2.screen, cfg.model.image_size))
    while not ref.done:
        action = expert.act(task.goal, ref.device)
        (o1, i1), (o2, i2) = env.step(action), ref.step(action)
        np.testing.assert_array_equal(o1.screen, resize_screen(o2.screen, cfg.model.image_size))
        assert (i1.reward, i1.done, i1.success, o1.history) == (
            i2.reward,
            i2.done,
            i2.success,
            o2.history,
        )
    assert i1.success
    assert env.device.last_latency_s > 0


@pytest.mark.parametrize(
    "text",
    ["hello world", 'it\'s "quoted"', "a;b|c&d$e`f`\\g $(x)", "50% off, 100%s", "café 日本 🙂"],
)
def test_typing_round_trips_tricky_text(server, text):
    dev = _device(server)
    dev.reset(_task(TASKS[0]))  # home, force-stop: the phone is on the launcher
    _focus_search_bar(dev)
    dev.step(A.type_text(text))
    assert server.phone(S0).state.text == text


def test_typing_with_a_trailing_newline_submits(server):
    dev = _device(server, sim_control=True)
    dev.reset(_task(TASKS[1]), seed=1)
    _focus_search_bar(dev)
    dev.step(A.type_text("weather paris\n"))
    assert server.phone(S0).screen().name.endswith("serp")


def test_reset_without_sim_control_goes_home_and_stops_the_tasks_apps(server):
    task = _task(TASKS[0])
    phone = server.phone(S0)
    expert = ScriptedExpert(noise=0.0, seed=0)
    while phone.state.view.app != "clock":
        phone.step(expert.act(task.goal, phone))
    dev = _device(server)
    assert not dev.seedable
    screen = dev.reset(task)
    assert phone.state.view.app == "launcher"
    np.testing.assert_array_equal(screen, resize_screen(phone.screenshot(), MODEL_SIZE))


# ---------------------------------------------------------------- faults


def _expect_infra_error(dev: AdbDevice, bound_s: float) -> InfrastructureError:
    start = time.monotonic()
    with pytest.raises(InfrastructureError) as info:
        dev.step(A.HOME)
    assert time.monotonic() - start < bound_s
    assert not dev.healthy()
    assert dev.name in str(info.value) and info.value.device == dev.name
    with pytest.raises(InfrastructureError, match="call restart"):
        dev.screenshot()  # stays failed until restart(), without touching the device
    return info.value


@pytest.mark.parametrize(
    "fault",
    [{"hang": True}, {"offline": True}, {"drop_screenshot": True}, {"delay_s": 3.0}],
    ids=["hang", "offline", "drop", "slow"],
)
def test_each_fault_raises_infrastructure_error_within_the_bound_then_recovers(server, fault):
    dev = _device(server, timeout_s=1.0)
    dev.reset(_task(TASKS[0]))
    server.set_faults(S0, **fault)
    # A step is a few adb calls, each bounded by timeout_s = 1 s.
    _expect_infra_error(dev, bound_s=3.5)
    if "drop_screenshot" not in fault:  # the fault persists: reconnecting fails too
        with pytest.raises(InfrastructureError):
            dev.restart()
        assert not dev.healthy()
    server.clear_faults(S0)
    dev.restart()
    assert dev.healthy()
    np.testing.assert_array_equal(
        dev.step(A.HOME), resize_screen(server.phone(S0).screenshot(), MODEL_SIZE)
    )


def test_a_slow_device_within_the_timeout_still_works(server):
    dev = _device(server, timeout_s=2.0, stable_frames=1)
    dev.reset(_task(TASKS[0]))
    server.set_faults(S0, delay_s=0.15)
    dev.step(A.HOME)
    assert dev.healthy()
    assert dev.last_latency_s >= 0.3  # two delayed requests: the keyevent and the screencap


def test_unknown_serial_and_dead_server_raise_and_spawn_no_daemon(server):
    with pytest.raises(InfrastructureError, match="not listed"):
        _device(server, "emulator-9999").reset(_task(TASKS[0]))
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    dev = AdbDevice(S0, port=dead, timeout_s=1.0)
    with pytest.raises(InfrastructureError, match="failed"):
        dev.reset(_task(TASKS[0]))
    with pytest.raises(ConnectionRefusedError):  # adbutils did not start an adb daemon there
        socket.create_connection(("127.0.0.1", dead), timeout=1).close()


def test_sim_evaluator_and_factory_reject_misuse(server):
    with pytest.raises(TypeError, match="AdbDevice"):
        AdbSimEvaluator().evaluate(_task(TASKS[0]), SimPhone(), np.zeros((8, 8, 3)), [])
    with pytest.raises(ValueError, match="evaluator"):
        make_adb_env(Config(), S0)
    with pytest.raises(ValueError, match="size"):
        AdbDevice(S0, size=(4, 4))
    unsupported = Task("do a barrel roll", None)
    verdict = AdbSimEvaluator().evaluate(unsupported, _device(server, sim_control=True), None, [])
    assert not verdict.success and "unsupported" in verdict.reason


@contextlib.contextmanager
def _garbage_server(answer: bytes) -> Iterator[int]:
    """A loopback server that answers every request with ``answer`` and closes: not adb."""
    lst = socket.create_server(("127.0.0.1", 0))
    lst.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = lst.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1.0)
                with contextlib.suppress(OSError):
                    conn.recv(1024)
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield lst.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        lst.close()


@pytest.mark.parametrize(
    "answer",
    [b"OKAYzzzzgarbage", b"OKAY\xff\xfe\xfd\xfcjunk", b"OKAY-001"],
    ids=["non-hex-length", "binary-length", "negative-length"],
)
def test_garbage_from_the_adb_server_is_an_infrastructure_error(answer):
    """A port that answers OKAY and then a length that is not hex (something else listens on
    5037, a proxy mangles the stream) fails the device; it does not crash the actor."""
    with _garbage_server(answer) as port:
        dev = AdbDevice(S0, port=port, timeout_s=1.0, settle_poll_s=0.0)
        start = time.monotonic()
        with pytest.raises(InfrastructureError) as info:
            dev.reset(_task(TASKS[0]))
        assert time.monotonic() - start < 3.0
        assert not dev.healthy() and info.value.device == dev.name
        with pytest.raises(InfrastructureError, match="call restart"):
            dev.screenshot()
        with pytest.raises(InfrastructureError):
            dev.restart()  # still nonsense: restart fails the same way, it does not raise raw
        assert not dev.healthy()


# ---------------------------------------------------------------- shell exit status


@pytest.mark.parametrize(
    ("command", "status"),
    [
        ("input keyevent 3", 0),
        ("input text two words", 1),
        ("input frobnicate", 1),
        ("am start -n x/y", 1),
        ("wm rotate", 1),
        ("nosuchcommand --help", 127),
        ("false", 1),
        ("true && false && true", 1),
        ("false || true", 0),
        ("distrl-sim judge bm90LWpzb24", 1),
    ],
)
def test_shell_reports_the_exit_status_of_the_command_line(server, command, status):
    dev = _device(server)
    assert dev.shell_status(command)[0] == status
    assert dev.healthy()  # shell_status only reports; shell() is what fails the device
    if status == 0:
        dev.shell(command)
        assert dev.healthy()
        return
    with pytest.raises(InfrastructureError, match=f"exit status {status}") as info:
        dev.shell(command)
    assert not dev.healthy() and info.value.device == dev.name
    dev.restart()
    assert dev.healthy()


def test_output_keeps_its_text_without_the_status_marker(server):
    dev = _device(server)
    assert dev.shell_status("echo -n a   b") == (0, "a b")
    assert dev.shell("echo one; echo two") == "one\ntwo\n"
    assert dev.shell("wm size # a trailing comment") == "Physical size: 180x400\n"


def test_a_failing_input_or_force_stop_fails_the_step(server, monkeypatch):
    """A device whose `input` / `am` exits non-zero (a busy or locked phone, a missing binary)
    must not look like one that took the action: the step is an infrastructure fault."""
    dev = _device(server)
    dev.reset(_task(TASKS[0]))
    shell = server._shell(S0)
    monkeypatch.setattr(shell, "_input", lambda args: (b"", b"input: injection failed\n", 1))
    phone_before = server.phone(S0).state.view
    with pytest.raises(InfrastructureError, match=r"exit status 1.*injection failed"):
        dev.step(A.tap(0.5, 0.5))
    assert not dev.healthy()
    assert server.phone(S0).state.view == phone_before  # nothing happened on the phone
    monkeypatch.undo()
    monkeypatch.setattr(shell, "_am", lambda args: (b"", b"am: Security exception\n", 255))
    dev.restart()
    with pytest.raises(InfrastructureError, match="exit status 255"):
        dev.reset(_task(TASKS[0]))  # HOME && force-stop the clock && HOME
    assert not dev.healthy()


def test_sim_control_on_a_device_without_distrl_sim_is_not_retryable(server, monkeypatch):
    monkeypatch.setattr(
        server._shell(S0),
        "_sim",
        lambda args: (b"", b"/system/bin/sh: distrl-sim: not found\n", 127),
    )
    dev = _device(server, sim_control=True)
    with pytest.raises(InfrastructureError, match="only on distrl_jax's test ADB server") as info:
        dev.reset(_task(TASKS[0]))
    assert not info.value.retryable
