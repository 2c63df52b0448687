"""Metrics sinks: JSONL lines, real TensorBoard event files, a rate-limited console, fan-out."""

from __future__ import annotations

import io
import json
import math
import pathlib
import struct
import threading
import types
from collections.abc import Mapping

import pytest
from tensorboardX.proto.event_pb2 import Event

from distrl_jax.core import MetricsSink
from distrl_jax.metrics import writers
from distrl_jax.metrics.writers import (
    ConsoleSink,
    JsonlSink,
    MetricsWriter,
    TensorBoardSink,
    read_jsonl,
    run_writer,
)

# ---------------------------------------------------------------- a TFRecord reader of our own


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), masked as TFRecord does."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    c ^= 0xFFFFFFFF
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_events(path: pathlib.Path) -> list[Event]:
    """Parse a TFRecord file: [uint64 len][uint32 crc(len)][data][uint32 crc(data)] records."""
    buf = path.read_bytes()
    events, pos = [], 0
    while pos < len(buf):
        header = buf[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (len_crc,) = struct.unpack("<I", buf[pos + 8 : pos + 12])
        assert len_crc == masked_crc32c(header), "length CRC mismatch"
        data = buf[pos + 12 : pos + 12 + length]
        (data_crc,) = struct.unpack("<I", buf[pos + 12 + length : pos + 16 + length])
        assert data_crc == masked_crc32c(data), "data CRC mismatch"
        events.append(Event.FromString(data))
        pos += 16 + length
    assert pos == len(buf), "trailing bytes after the last record"
    return events


def scalars(logdir: pathlib.Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} from every event file under ``logdir``."""
    files = sorted(logdir.glob("events.out.tfevents.*"))
    assert files, f"no event files in {logdir}"
    out: dict[str, list[tuple[int, float]]] = {}
    for f in files:
        for ev in read_events(f):
            for v in ev.summary.value:
                out.setdefault(v.tag, []).append((ev.step, v.simple_value))
    return out


def test_crc_reference_value() -> None:
    # The CRC-32C check value of "123456789" is 0xE3069283 (RFC 3720, appendix B.4).
    unmasked = (masked_crc32c(b"123456789") - 0xA282EAD8) & 0xFFFFFFFF
    rotated_back = ((unmasked << 15) | (unmasked >> 17)) & 0xFFFFFFFF
    assert rotated_back == 0xE3069283


# ---------------------------------------------------------------- JSONL


def test_jsonl_lines(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "deep" / "metrics.jsonl"
    sink = JsonlSink(path)
    sink.write(1, {"loss": 0.5, "ok": 1})
    sink.write(2, {"loss": math.nan, "grad": math.inf, "neg": -math.inf, "note": "text", "n": None})
    sink.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    # Strict JSON: NaN/Infinity literals would make this raise.
    rows = [json.loads(ln, parse_constant=lambda c: pytest.fail(f"non-JSON {c}")) for ln in lines]
    assert rows[0]["step"] == 1 and rows[0]["loss"] == 0.5 and rows[0]["ok"] == 1.0
    assert isinstance(rows[0]["time"], float) and rows[0]["time"] <= rows[1]["time"]
    assert rows[1]["loss"] is None and rows[1]["grad"] is None and rows[1]["neg"] is None
    assert "note" not in rows[1] and "n" not in rows[1]  # non-numeric values are dropped
    assert read_jsonl(path) == rows


def test_jsonl_appends_on_resume(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "metrics.jsonl"
    for step in (1, 2):
        sink = JsonlSink(path)
        sink.write(step, {"x": float(step)})
        sink.close()
    assert [r["step"] for r in read_jsonl(path)] == [1, 2]


def test_jsonl_lines_are_visible_before_close(tmp_path: pathlib.Path) -> None:
    sink = JsonlSink(tmp_path / "m.jsonl")
    sink.write(7, {"x": 1.0})
    assert read_jsonl(tmp_path / "m.jsonl")[0]["step"] == 7  # line-buffered: a crash loses little
    sink.close()


def test_read_jsonl_skips_a_torn_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "x": 2.0}\n{"step": 2, "x": 3.0}\n{"step": 3, "x"')
    assert read_jsonl(path) == [{"step": 1, "x": 2.0}, {"step": 2, "x": 3.0}]


# ---------------------------------------------------------------- TensorBoard


def test_tensorboard_event_files(tmp_path: pathlib.Path) -> None:
    sink = TensorBoardSink(tmp_path / "tb")
    sink.write(0, {"loss": 2.0, "reward/mean": 0.25})
    sink.write(10, {"loss": 1.5, "skipped": "not a number"})
    sink.write(20, {"loss": math.nan})
    sink.close()
    got = scalars(tmp_path / "tb")
    assert set(got) == {"loss", "reward/mean"}
    assert got["reward/mean"] == [(0, 0.25)]
    steps = [s for s, _ in got["loss"]]
    values = [v for _, v in got["loss"]]
    assert steps == [0, 10, 20]
    assert values[:2] == [2.0, 1.5] and math.isnan(values[2])


# ---------------------------------------------------------------- console


class FakeClock:
    def __init__(self, now: float):
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1.7e9 + self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Replace the clock the writers module reads (not the global time module)."""
    fake = FakeClock(1000.0)
    monkeypatch.setattr(
        writers, "time", types.SimpleNamespace(monotonic=fake.monotonic, time=fake.time)
    )
    return fake


def test_console_rate_limit(clock: FakeClock) -> None:
    out = io.StringIO()
    sink = ConsoleSink(keys=["loss", "absent"], every_s=5.0, stream=out)
    sink.write(1, {"loss": 0.123456, "other": 1.0})  # printed: the first record
    clock.now += 4.9
    sink.write(2, {"loss": 0.2})  # dropped: under 5 s since the last line
    clock.now += 0.1
    sink.write(3, {"loss": 0.3})  # printed: 5 s since the last *printed* line
    clock.now += 1.0
    sink.write(4, {"loss": 0.4})  # dropped
    lines = out.getvalue().splitlines()
    assert lines == ["[step 1] loss=0.1235", "[step 3] loss=0.3"]


def test_console_all_keys_sorted(clock: FakeClock) -> None:
    out = io.StringIO()
    ConsoleSink(keys=None, every_s=0.0, stream=out).write(5, {"b": 2.0, "a": 1.0, "s": "x"})
    assert out.getvalue() == "[step 5] a=1  b=2\n"


def test_console_first_record_always_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClock(3.0)  # monotonic time counts from boot
    monkeypatch.setattr(
        writers, "time", types.SimpleNamespace(monotonic=fake.monotonic, time=fake.time)
    )
    out = io.StringIO()
    ConsoleSink(keys=["x"], every_s=60.0, stream=out).write(1, {"x": 1.0})
    assert out.getvalue() == "[step 1] x=1\n"


# ---------------------------------------------------------------- fan-out


class RecordingSink(MetricsSink):
    """Keeps every record; notices if two threads are inside write() at once."""

    def __init__(self) -> None:
        self.records: list[tuple[int, dict[str, float]]] = []
        self.inside = 0
        self.overlaps = 0
        self.closed = False

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        self.inside += 1
        if self.inside > 1:
            self.overlaps += 1
        self.records.append((step, dict(metrics)))
        self.inside -= 1

    def close(self) -> None:
        self.closed = True


def test_fan_out_from_threads(tmp_path: pathlib.Path) -> None:
    sinks = [RecordingSink(), RecordingSink()]
    jsonl = JsonlSink(tmp_path / "metrics.jsonl")
    writer = MetricsWriter([*sinks, jsonl])
    n_threads, per_thread = 4, 200

    def work(tid: int) -> None:
        for i in range(per_thread):
            writer.write(tid * per_thread + i, {"thread": float(tid), "i": float(i)})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    writer.close()

    expected = {
        (t * per_thread + i, float(t), float(i))
        for t in range(n_threads)
        for i in range(per_thread)
    }
    for s in sinks:
        assert s.closed and s.overlaps == 0
        assert {(st, m["thread"], m["i"]) for st, m in s.records} == expected
        assert len(s.records) == len(expected)
    assert sinks[0].records == sinks[1].records  # one lock: every sink sees the same order
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert {(r["step"], r["thread"], r["i"]) for r in rows} == expected
    assert len(rows) == len(expected)


def test_run_writer_layout(tmp_path: pathlib.Path) -> None:
    w = run_writer(tmp_path / "run", console_keys=())
    assert [type(s) for s in w.sinks] == [JsonlSink, TensorBoardSink]
    w.write(3, {"loss": 1.25})
    w.close()
    assert read_jsonl(tmp_path / "run" / "metrics.jsonl")[0]["loss"] == 1.25
    assert scalars(tmp_path / "run" / "tb") == {"loss": [(3, 1.25)]}


@pytest.mark.parametrize(("keys", "has_console"), [(None, True), (["loss"], True), ((), False)])
def test_run_writer_console(tmp_path: pathlib.Path, keys, has_console: bool) -> None:
    w = run_writer(tmp_path, console_keys=keys, console_every_s=1.0)
    consoles = [s for s in w.sinks if isinstance(s, ConsoleSink)]
    assert bool(consoles) is has_console
    if consoles:
        assert consoles[0].every_s == 1.0 and consoles[0].keys == (None if keys is None else keys)
    w.close()
