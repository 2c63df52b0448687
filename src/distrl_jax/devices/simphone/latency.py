"""How long an emulator step takes, and how emulators fail: seeded models for simphone.

DESIGN §7's reference setting is the default of both models: a step takes a log-normal time with
a median of 2.0 s and σ = 0.6 (heavy-tailed, like the 1-6 s a step that AndroidWorld and DigiRL
report), and 2% of episodes hit a hang that costs a 60 s restart. ``time_scale`` shrinks every
duration uniformly so a run with emulator-like timing can end in minutes.

A :class:`FaultModel` plans at most one fault per episode (at reset, at a step drawn uniformly
within the horizon): a *hang* blocks for the scaled hang time and then raises
``core.InfrastructureError``; an *offline* device and a *crashed* one raise at once. After any
fault the device keeps raising until ``restart()``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

FAULT_KINDS = ("hang", "offline", "crash")


def _check(name: str, value: float, lo: float, hi: float = math.inf) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")


@dataclasses.dataclass(frozen=True)
class LatencyModel:
    """Per-step latency: ``median_s · exp(sigma · N(0, 1)) · time_scale`` seconds."""

    median_s: float = 2.0
    sigma: float = 0.6
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        _check("LatencyModel.median_s", self.median_s, 0.0)
        _check("LatencyModel.sigma", self.sigma, 0.0, 5.0)
        _check("LatencyModel.time_scale", self.time_scale, 0.0)

    def sampler(self, seed: int) -> LatencySampler:
        """A seeded stream of step latencies from this model."""
        return LatencySampler(self, seed)

    def describe(self) -> dict[str, float]:
        """The parameters, for benchmark and run logs."""
        return dataclasses.asdict(self)


class LatencySampler:
    """Draws step latencies (seconds, already multiplied by the model's time_scale)."""

    def __init__(self, model: LatencyModel, seed: int):
        self.model = model
        self._rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x1A7])

    def next(self) -> float:
        """One step's latency."""
        m = self.model
        return float(m.median_s * math.exp(m.sigma * self._rng.standard_normal()) * m.time_scale)

    def draw(self, n: int) -> np.ndarray:
        """``n`` latencies at once (for statistics and benchmarks)."""
        m = self.model
        return m.median_s * np.exp(m.sigma * self._rng.standard_normal(n)) * m.time_scale


@dataclasses.dataclass(frozen=True)
class FaultPlan:
    """The fault an episode will hit: its kind ("" for none) and the step index it hits at."""

    kind: str = ""
    step: int = -1


NO_FAULT = FaultPlan()


@dataclasses.dataclass(frozen=True)
class FaultModel:
    """Per-episode fault probabilities (mutually exclusive) and the time a hang costs."""

    hang_prob: float = 0.02
    offline_prob: float = 0.0
    crash_prob: float = 0.0
    hang_s: float = 60.0
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("hang_prob", "offline_prob", "crash_prob"):
            _check(f"FaultModel.{name}", getattr(self, name), 0.0, 1.0)
        total = self.hang_prob + self.offline_prob + self.crash_prob
        if total > 1.0 + 1e-12:
            raise ValueError(
                f"FaultModel: hang_prob + offline_prob + crash_prob must be <= 1 (one fault per "
                f"episode at most), got {total}"
            )
        _check("FaultModel.hang_s", self.hang_s, 0.0)
        _check("FaultModel.time_scale", self.time_scale, 0.0)

    @classmethod
    def none(cls) -> FaultModel:
        """A model that never faults."""
        return cls(hang_prob=0.0)

    def sampler(self, seed: int) -> FaultSampler:
        """A seeded planner of per-episode faults."""
        return FaultSampler(self, seed)

    def describe(self) -> dict[str, float]:
        """The parameters, for benchmark and run logs."""
        return dataclasses.asdict(self)


class FaultSampler:
    """Plans, per episode, whether and at which step the device faults."""

    def __init__(self, model: FaultModel, seed: int):
        self.model = model
        self._rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xFA17])

    def plan(self, horizon: int) -> FaultPlan:
        """The fault of the next episode of ``horizon`` steps (NO_FAULT for most episodes)."""
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        m = self.model
        u = float(self._rng.random())
        step = int(self._rng.integers(horizon))  # drawn always, so streams stay aligned
        edges = np.cumsum([m.hang_prob, m.offline_prob, m.crash_prob])
        for kind, edge in zip(FAULT_KINDS, edges, strict=True):
            if u < edge:
                return FaultPlan(kind, step)
        return NO_FAULT


def reference_setting() -> tuple[LatencyModel, FaultModel]:
    """DESIGN §7's reference latency and fault models (2.0 s median, σ 0.6, 2% hangs of 60 s)."""
    return LatencyModel(), FaultModel()
