"""Latency and fault models: the reference distribution, fault rates, and SimPhone's faults."""

from __future__ import annotations

import numpy as np
import pytest

from distrl_jax.core import InfrastructureError
from distrl_jax.devices import actions as A
from distrl_jax.devices.simphone import phone as phone_mod
from distrl_jax.devices.simphone.latency import FaultModel, LatencyModel, reference_setting
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.tasks.goals import Task

N = 40_000


def test_reference_setting_is_the_default() -> None:
    lat, faults = reference_setting()
    assert (lat.median_s, lat.sigma, lat.time_scale) == (2.0, 0.6, 1.0)
    assert (faults.hang_prob, faults.hang_s) == (0.02, 60.0)
    assert lat == LatencyModel() and faults == FaultModel()


def test_latency_is_lognormal_with_median_and_log_std() -> None:
    x = LatencyModel().sampler(seed=1).draw(N)
    # Standard errors at N=40k: median ~0.4%, log-std ~0.35%; tolerances are ~5 sigma.
    assert np.median(x) == pytest.approx(2.0, rel=0.02)
    assert np.std(np.log(x)) == pytest.approx(0.6, rel=0.02)
    assert np.mean(np.log(x)) == pytest.approx(np.log(2.0), abs=0.02)
    assert (x > 0).all()


def test_time_scale_shrinks_latency_uniformly_and_seeds_repeat() -> None:
    a = LatencyModel().sampler(seed=3).draw(100)
    b = LatencyModel(time_scale=0.01).sampler(seed=3).draw(100)
    np.testing.assert_allclose(b, a * 0.01)
    s1, s2 = LatencyModel().sampler(7), LatencyModel().sampler(7)
    assert [s1.next() for _ in range(5)] == [s2.next() for _ in range(5)]
    assert LatencyModel().sampler(8).next() != LatencyModel().sampler(7).next()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"median_s": -1.0}, "median_s"),
        ({"sigma": float("nan")}, "sigma"),
        ({"time_scale": -0.5}, "time_scale"),
    ],
)
def test_latency_model_validation(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        LatencyModel(**kwargs)


def test_fault_model_validation() -> None:
    with pytest.raises(ValueError, match="hang_prob"):
        FaultModel(hang_prob=1.5)
    with pytest.raises(ValueError, match="<= 1"):
        FaultModel(hang_prob=0.6, offline_prob=0.6)
    with pytest.raises(ValueError, match="horizon"):
        FaultModel().sampler(0).plan(0)


def test_fault_rates_and_steps() -> None:
    model = FaultModel(hang_prob=0.02, offline_prob=0.05, crash_prob=0.01)
    sampler = model.sampler(seed=11)
    plans = [sampler.plan(horizon=10) for _ in range(N)]
    for kind, p in (("hang", 0.02), ("offline", 0.05), ("crash", 0.01)):
        rate = sum(pl.kind == kind for pl in plans) / N
        assert abs(rate - p) < 5 * np.sqrt(p * (1 - p) / N), (kind, rate)
    steps = [pl.step for pl in plans if pl.kind]
    assert min(steps) == 0 and max(steps) == 9
    assert all(pl.step == -1 for pl in plans if not pl.kind)
    assert all(not FaultModel.none().sampler(0).plan(10).kind for _ in range(100))


def _run_until_fault(phone: SimPhone) -> int:
    phone.reset(Task("t", None, horizon=10))
    for t in range(10):
        try:
            phone.step(A.tap(0.5, 0.5))
        except InfrastructureError:
            return t
    pytest.fail("no fault within the horizon although one was certain")


def test_hang_sleeps_the_scaled_hang_time_then_raises_until_restart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(phone_mod.time, "sleep", slept.append)
    phone = SimPhone(
        seed=2, faults=FaultModel(hang_prob=1.0, hang_s=60.0, time_scale=0.5), time_scale=0.1
    )
    at = _run_until_fault(phone)
    assert slept == [pytest.approx(60.0 * 0.5 * 0.1)]
    assert phone.last_latency_s == pytest.approx(3.0)
    assert not phone.healthy()
    with pytest.raises(InfrastructureError, match="hung"):
        phone.step(A.BACK)
    with pytest.raises(InfrastructureError):
        phone.reset(Task("t", None))
    assert slept == [pytest.approx(3.0)]  # a hung device raises at once afterwards
    phone.restart()
    assert phone.healthy() and phone.screen().name == "launcher.home"
    phone.step(A.swipe(0.8, 0.5, 0.2, 0.5))
    assert phone.screen().name == "launcher.drawer"
    assert 0 <= at < 10


@pytest.mark.parametrize("kind", ["offline", "crash"])
def test_offline_and_crash_raise_at_once(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    slept: list[float] = []
    monkeypatch.setattr(phone_mod.time, "sleep", slept.append)
    phone = SimPhone(seed=4, faults=FaultModel(hang_prob=0.0, **{f"{kind}_prob": 1.0}))
    _run_until_fault(phone)
    assert slept == []
    with pytest.raises(InfrastructureError) as info:
        phone.step(A.BACK)
    assert info.value.retryable and info.value.device == "simphone"
    phone.restart()
    phone.reset(Task("t", None))
    assert phone.healthy()


def test_latency_sleeps_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(phone_mod.time, "sleep", slept.append)
    phone = SimPhone(seed=1, latency=LatencyModel(), time_scale=0.001)
    phone.reset(Task("t", None))
    for _ in range(3):
        phone.step(A.BACK)
    assert len(slept) == 3 and slept[-1] == pytest.approx(phone.last_latency_s)
    assert all(0 < s < 0.1 for s in slept)


def test_fault_rate_through_the_phone() -> None:
    phone = SimPhone(seed=9, faults=FaultModel(hang_prob=0.0, offline_prob=0.2), sleep=False)
    faults = 0
    episodes = 400
    for _ in range(episodes):
        phone.reset(Task("t", None, horizon=5))
        try:
            for _ in range(5):
                phone.step(A.BACK)
        except InfrastructureError:
            faults += 1
            phone.restart()
    assert abs(faults / episodes - 0.2) < 5 * np.sqrt(0.2 * 0.8 / episodes)
