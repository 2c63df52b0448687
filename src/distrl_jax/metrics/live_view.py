"""A live terminal view of a training run (rich), and plain log lines when there is no terminal.

``live_sink`` picks: on a terminal, a panel redrawn in place with the figures an operator watches
(throughput of devices, actors and learner, replay, policy lag, success, restarts, the time since
the last broadcast, per-stage timers); otherwise the rate-limited :class:`ConsoleSink` lines.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Mapping

from distrl_jax.core import MetricsSink
from distrl_jax.metrics.writers import ConsoleSink

# (label, metric key, format): the rows of the live panel, in reading order.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("learner step", "step", "{:.0f}"),
    ("learner steps/s", "learner_steps_per_s", "{:.2f}"),
    ("device steps/s", "device_steps_per_s", "{:.1f}"),
    ("trajectories/min", "trajectories_per_min", "{:.0f}"),
    ("trajectories received", "trajectories", "{:.0f}"),
    ("replay size", "replay_size", "{:.0f}"),
    ("policy lag min/mean/max", "policy_lag", "{}"),
    ("success (last 200 episodes)", "train_success_recent", "{:.1%}"),
    ("penalised step rate", "penalised_step_rate", "{:.1%}"),
    ("loss", "loss", "{:.4f}"),
    ("entropy", "entropy", "{:.2f}"),
    ("actors alive / restarts", "actors", "{}"),
    ("since last broadcast", "since_broadcast_s", "{:.1f} s"),
    ("time sample / train", "timers", "{}"),
    ("actor time device / inference / send", "actor_time", "{}"),
    ("actor outbox / dropped / infra failures", "actor_queues", "{}"),
)


class LiveView(MetricsSink):
    """Redraws a rich table at most ``refresh_per_s`` times a second from the latest metrics."""

    def __init__(self, title: str = "distrl_jax", refresh_per_s: float = 2.0, console=None):
        from rich.console import Console
        from rich.live import Live

        self.title = title
        self._latest: dict[str, float] = {}
        self._live = Live(
            self._render(), console=console or Console(), refresh_per_second=refresh_per_s
        )
        self._live.start()
        self._last = 0.0
        self._every = 1.0 / refresh_per_s

    def _render(self):
        from rich.table import Table

        m = self._latest
        table = Table(title=self.title, show_header=False, expand=False)
        table.add_column("what", style="bold")
        table.add_column("value", justify="right")
        derived = {
            "policy_lag": (
                f"{m['policy_lag_min']:.0f} / {m['policy_lag_mean']:.1f} / {m['policy_lag_max']:.0f}"
                if "policy_lag_mean" in m
                else None
            ),
            "actors": (
                f"{m.get('actors_alive', 0):.0f} / {m.get('actor_restarts', 0):.0f}"
                if "actors_alive" in m
                else None
            ),
            "actor_time": (
                f"{m['actor_device_step_frac']:.0%} / {m['actor_inference_frac']:.0%} / "
                f"{m['actor_send_frac']:.0%}"
                if "actor_device_step_frac" in m
                else None
            ),
            "actor_queues": (
                f"{m['actor_outbox_depth']:.0f} / {m['actor_dropped']:.0f} / "
                f"{m.get('actor_infra_failures', 0):.0f}"
                if "actor_outbox_depth" in m
                else None
            ),
            "timers": (
                f"{1e3 * m['time_sample_s']:.0f} / {1e3 * m['time_train_s']:.0f} ms"
                if "time_train_s" in m
                else None
            ),
        }
        for label, key, fmt in ROWS:
            value = derived.get(key, m.get(key))
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                text = "-"
            else:
                text = fmt.format(value)
            table.add_row(label, text)
        return table

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Remember the newest values; redraw if the refresh interval has passed."""
        self._latest.update({k: float(v) for k, v in metrics.items()})
        self._latest["step"] = float(step)
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            self._live.update(self._render())

    def close(self) -> None:
        """Draw the final state and stop redrawing."""
        self._live.update(self._render())
        self._live.stop()


def live_sink(keys: Iterable[str], every_s: float = 5.0, stream=None) -> MetricsSink:
    """A :class:`LiveView` on a terminal, else plain :class:`ConsoleSink` lines of ``keys``."""
    stream = stream or sys.stdout
    if getattr(stream, "isatty", lambda: False)():
        from rich.console import Console

        return LiveView(console=Console(file=stream))
    return ConsoleSink(keys, every_s, stream)
