"""AdbDevice through the real adbutils client against the test server: episodes equal to
in-process simphone, typing round trips, fault handling and recovery, the env factory."""

from __future__ import annotations

import dataclasses
import socket
import time

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
