"""A fixed SimPhone (``layout_seed``): one theme, app set and home screen for every episode, as an
emulator reset to one snapshot; the expert still solves every validation task on it; episode
seeds through TaskEnv; and ``evaluate.make_env`` wiring the device config into the phone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distrl_jax.actor.episode import run_episode
from distrl_jax.config import Config, apply_overrides
from distrl_jax.devices.simphone import catalog
from distrl_jax.devices.simphone.expert import ScriptedExpert
from distrl_jax.devices.simphone.judge import SimEvaluator
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.simphone.start import start_state
from distrl_jax.devices.simphone.ui import STATUS_BOTTOM
from distrl_jax.devices.task_env import TaskEnv
from distrl_jax.evaluate import make_env
from distrl_jax.tasks.goals import Goal, Intent, Task
from distrl_jax.tasks.suites import load_tasks

OPEN = Task("Open the calculator", Goal.make(Intent.OPEN_APP, app="Calculator"), horizon=10)
CATALOG = frozenset(a.name for a in catalog.SYSTEM_APPS + catalog.THIRD_PARTY_APPS)


def _device(phone: SimPhone) -> tuple:
    """The parts of the start state that make up "the device" rather than the episode."""
    s = phone.state
    return (s.theme, s.installed, s.layout)


def _on_home(layout) -> set[str]:
    """Every app with an icon on a home-screen page or in the dock."""
    return {n for page in layout.pages for n in page if n} | set(layout.dock)


def _below_status_bar(img: np.ndarray) -> np.ndarray:
    """The screenshot without the status bar (which shows the episode's clock)."""
    return img[math.ceil(STATUS_BOTTOM * img.shape[0]) :]


def test_fixed_layout_is_the_same_device_for_every_episode_seed() -> None:
    """Theme, installed apps and launcher layout do not depend on the episode seed."""
    phone = SimPhone(layout_seed=0)
    shots, devices, clocks = [], [], set()
    for seed in (1, 2, 3, 17, 1234):
        shots.append(phone.reset(OPEN, seed=seed).copy())
        devices.append(_device(phone))
        clocks.add(phone.state.clock)
    assert all(d == devices[0] for d in devices)
    # The episode content still varies (here the clock), so the seed was really used ...
    assert len(clocks) > 1
    # ... and only the status bar differs between the home screens.
    assert all(np.array_equal(_below_status_bar(s), _below_status_bar(shots[0])) for s in shots)
    assert not all(np.array_equal(s, shots[0]) for s in shots)


def test_fixed_layout_is_the_same_across_phone_seeds() -> None:
    """Two phones with different episode seeding but one layout_seed are the same device."""
    a, b = SimPhone(seed=1, layout_seed=5), SimPhone(seed=99, layout_seed=5)
    a.reset(OPEN)
    b.reset(OPEN)
    assert _device(a) == _device(b)


def test_different_layout_seeds_are_different_devices() -> None:
    """Each layout_seed gives its own home screen."""
    layouts = [start_state(OPEN.goal, 7, layout_seed=ls).layout for ls in range(6)]
    assert len(set(layouts)) == len(layouts)


def test_random_layout_varies_with_the_episode_seed() -> None:
    """layout_seed=None draws a new device per episode."""
    phone = SimPhone(layout_seed=None)
    devices = set()
    for seed in range(6):
        phone.reset(OPEN, seed=seed)
        devices.add(_device(phone))
    assert len(devices) > 1
    layouts = {d[2] for d in devices}
    assert len(layouts) == len(devices)


def test_fixed_device_installs_every_catalog_app() -> None:
    """Every app of the catalog is installed on the fixed device (no INSTALL_APP goal)."""
    for goal in (None, OPEN.goal, Goal.make(Intent.SET_ALARM, time="07:00")):
        s = start_state(goal, 3, layout_seed=0)
        assert set(s.installed) == CATALOG
        assert _on_home(s.layout) <= CATALOG


@pytest.mark.parametrize("where", ["dock", "page"])
def test_install_goal_removes_its_app_from_the_fixed_device(where: str) -> None:
    """The app an INSTALL_APP goal asks for is not installed and has no icon anywhere."""
    plain = start_state(None, 3, layout_seed=0).layout
    # Pick an app that the fixed home screen shows, so that removing it is visible.
    candidates = plain.dock if where == "dock" else [n for p in plain.pages for n in p if n]
    name = sorted(candidates)[0]
    s = start_state(Goal.make(Intent.INSTALL_APP, app=name), 3, layout_seed=0)
    assert set(s.installed) == CATALOG - {name}
    assert name not in _on_home(s.layout)
    # Nothing else moved: the rest of the home screen is the plain fixed one.
    assert _on_home(s.layout) == _on_home(plain) - {name}
    assert s.theme == start_state(None, 3, layout_seed=0).theme


def test_install_goal_for_an_unknown_app_keeps_everything_installed() -> None:
    """An app outside the catalog is simply absent; the catalog apps all stay."""
    s = start_state(Goal.make(Intent.INSTALL_APP, app="Frobnicator Pro"), 3, layout_seed=0)
    assert set(s.installed) == CATALOG


@pytest.mark.parametrize("suite", ["general", "webshop"])
def test_expert_solves_every_validation_task_on_the_fixed_device(suite: str) -> None:
    """The zero-noise scripted expert succeeds on every val task of the suite at layout_seed=0."""
    tasks = load_tasks(suite, split="val")
    assert tasks
    env = TaskEnv(SimPhone(seed=3, layout_seed=0), SimEvaluator())
    expert = ScriptedExpert(noise=0.0)
    records = [
        run_episode(env, task, lambda e, obs: expert.act(e.task.goal, e.device)) for task in tasks
    ]
    failed = [r.task for r in records if not r.success]
    assert not failed, failed
    assert not any(r.infra_failure for r in records)


def test_task_env_reset_seed_gives_the_same_start_on_any_phone() -> None:
    """reset(task, seed=s) fixes the start screen whichever phone (phone seed) plays it."""
    for layout_seed in (0, None):
        a = TaskEnv(SimPhone(seed=1, layout_seed=layout_seed), SimEvaluator())
        b = TaskEnv(SimPhone(seed=99, layout_seed=layout_seed), SimEvaluator())
        a.reset(OPEN)  # a different number of earlier episodes must not matter either
        oa, ob = a.reset(OPEN, seed=42), b.reset(OPEN, seed=42)
        assert np.array_equal(oa.screen, ob.screen)
        assert a.device.state.screen_key() == b.device.state.screen_key()
        # Without the seed the two phones draw different episodes.
        a.reset(OPEN)
        b.reset(OPEN)
        assert a.device.state.seed != b.device.state.seed


def test_make_env_wires_layout_latency_and_faults() -> None:
    """evaluate.make_env builds the phone the device config describes."""
    plain = make_env(_default(), seed=4)
    assert isinstance(plain.device, SimPhone)
    assert plain.device.layout_seed == 0
    assert plain.device.latency is None and plain.device.faults is None

    cfg = _default(
        "device.layout=fixed",
        "device.layout_seed=3",
        "device.latency=emulator",
        "device.time_scale=0.01",
        "device.hang_prob=0.5",
    )
    phone = make_env(cfg, seed=4).device
    assert isinstance(phone, SimPhone)
    assert phone.layout_seed == 3
    assert phone.latency is not None
    assert phone.time_scale == cfg.device.time_scale == 0.01
    assert phone.faults is not None and phone.faults.hang_prob == 0.5
    assert phone.seed == 4
    assert phone.size == tuple(cfg.model.image_size)

    rnd = make_env(_default("device.layout=random", "device.layout_seed=3"), seed=4).device
    assert rnd.layout_seed is None


def _default(*overrides: str) -> Config:
    """The default Config with ``overrides`` applied (validated)."""
    return apply_overrides(Config(), list(overrides))
