"""The live terminal view (rich) of a training run, the sink picker, and the console's rate limit."""

from __future__ import annotations

import io
import re

from rich.console import Console

from distrl_jax.metrics.live_view import ROWS, LiveView, live_sink
from distrl_jax.metrics.writers import ConsoleSink

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _Tty(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        """Always a terminal."""
        return True


def _cells(output: str) -> dict[str, str]:
    """The value cell of each ROWS label in the *last* drawn frame (rows redraw in place)."""
    text = _ANSI.sub("", output)
    cells: dict[str, str] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in re.split(r"[│┃|]", line) if p.strip()]
        if len(parts) == 2:
            cells[parts[0]] = parts[1]  # later frames overwrite earlier ones
    return cells


def _render(records: list[tuple[int, dict[str, float]]]) -> dict[str, str]:
    """Write ``records`` to a LiveView on an in-memory terminal, close it, parse the last frame."""
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100)
    view = LiveView(title="run-x", console=console)
    for step, metrics in records:
        view.write(step, metrics)
    view.close()
    out = buf.getvalue()
    assert "run-x" in out
    return _cells(out)


def test_live_view_renders_every_row_with_derived_and_formatted_values() -> None:
    """Labels all appear; lag, actors and timers are combined; percentages and '-' for gaps."""
    cells = _render(
        [
            (3, {"loss": 0.5, "policy_lag_min": 9.0}),
            (
                7,
                {
                    "policy_lag_min": 0.0,
                    "policy_lag_mean": 1.5,
                    "policy_lag_max": 3.0,
                    "actors_alive": 2,
                    "actor_restarts": 1,
                    "time_sample_s": 0.012,
                    "time_train_s": 0.034,
                    "train_success_recent": 0.25,
                    "since_broadcast_s": 2.5,
                    "loss": float("nan"),  # the newest value wins, and NaN shows as '-'
                    "learner_steps_per_s": 3.14159,
                    "actor_device_step_frac": 0.71,
                    "actor_inference_frac": 0.2,
                    "actor_send_frac": 0.004,
                    "actor_outbox_depth": 3.0,
                    "actor_dropped": 0.0,
                    "actor_infra_failures": 2.0,
                },
            ),
        ]
    )
    assert {label for label, _, _ in ROWS} <= set(cells), sorted(cells)
    assert cells["learner step"] == "7"
    assert cells["policy lag min/mean/max"] == "0 / 1.5 / 3"
    assert cells["actors alive / restarts"] == "2 / 1"
    assert cells["time sample / train"] == "12 / 34 ms"
    assert cells["success (last 200 episodes)"] == "25.0%"
    assert cells["since last broadcast"] == "2.5 s"
    assert cells["learner steps/s"] == "3.14"
    assert cells["loss"] == "-"
    assert cells["actor time device / inference / send"] == "71% / 20% / 0%"
    assert cells["actor outbox / dropped / infra failures"] == "3 / 0 / 2"
    # Never written: shown as a dash rather than a stale or zero number.
    assert cells["replay size"] == "-"
    assert cells["penalised step rate"] == "-"


def test_live_view_without_derived_inputs_shows_dashes() -> None:
    """Partial inputs (no mean lag, no train timer, no alive count) leave the derived rows empty."""
    cells = _render([(1, {"policy_lag_min": 0.0, "time_sample_s": 0.5, "actor_restarts": 4})])
    assert cells["policy lag min/mean/max"] == "-"
    assert cells["time sample / train"] == "-"
    assert cells["actors alive / restarts"] == "-"
    assert cells["learner step"] == "1"


def test_live_sink_plain_stream_gives_console_lines() -> None:
    """Not a terminal: a ConsoleSink that prints the chosen keys to the given stream."""
    stream = io.StringIO()
    sink = live_sink(["loss"], every_s=0.0, stream=stream)
    assert isinstance(sink, ConsoleSink)
    assert not isinstance(sink, LiveView)
    sink.write(4, {"loss": 0.25, "other": 1.0})
    sink.close()
    assert stream.getvalue() == "[step 4] loss=0.25\n"


def test_live_sink_terminal_stream_gives_live_view() -> None:
    """A stream that is a terminal gets the live panel."""
    sink = live_sink(["loss"], stream=_Tty())
    try:
        assert isinstance(sink, LiveView)
        sink.write(1, {"loss": 0.1})
    finally:
        sink.close()


def test_console_sink_side_record_does_not_use_the_print_slot() -> None:
    """A record without any selected key prints nothing and leaves the rate limit untouched."""
    stream = io.StringIO()
    sink = ConsoleSink(["loss"], every_s=3600.0, stream=stream)
    sink.write(1, {"time_sample_s": 0.1})
    assert stream.getvalue() == ""
    sink.write(2, {"loss": 0.5})  # prints at once: the side record did not start the hour
    assert stream.getvalue() == "[step 2] loss=0.5\n"
    sink.write(3, {"loss": 0.4})  # inside the hour: rate-limited
    assert stream.getvalue() == "[step 2] loss=0.5\n"
