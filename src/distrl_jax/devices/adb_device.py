"""An Android emulator or phone as a ``core.Device``, through the real ``adbutils`` client.

Screens come from ``screencap -p`` (decoded with PIL, resized to the model's resolution),
actions go out as ``input tap|swipe|text|keyevent`` (:mod:`.adb_input` builds and escapes them),
and the screen size comes from ``wm size``; :mod:`.adb_client` holds the wire plumbing and
reads these answers. After each action the device is polled until ``stable_frames`` consecutive
screenshots agree (or ``settle_timeout_s`` passes: a playing video never settles, and that is
not an error).

Every adb call runs under one deadline of ``timeout_s``: a connection never waits longer, in
total, than what is left of it. A device that hangs, goes offline, drops a screenshot or answers
nonsense, or whose shell command exits non-zero (an ``input`` or ``am`` that failed), raises
``InfrastructureError``, is marked unhealthy and keeps raising until ``restart()`` reconnects
(re-discovering the serial and its screen size).

The client never starts an adb daemon: ``adbutils`` would run ``adb start-server`` when it
cannot connect, so the connections used here fail instead (a daemon left running on 5037 would
outlive tests and runs).

``sim_control=True`` is for distrl_jax's test ADB server only (:mod:`.adb_server`): resets go
through its ``distrl-sim reset`` (a seeded simphone start state) and :class:`AdbSimEvaluator`
asks its ``distrl-sim judge``. On a real device, ``reset`` goes home and force-stops the task's
apps, and judging needs an evaluator that reads screenshots.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn, TypeVar

import adbutils
import numpy as np
from PIL import Image

from distrl_jax.core import Device, Evaluator, InfrastructureError, Verdict
from distrl_jax.devices import adb_input
from distrl_jax.devices.actions import Action
from distrl_jax.devices.adb_client import (
    DeadlineClient,
    decode_png,
    exec_out,
    parse_wm_size,
    split_exit_status,
    with_exit_status,
)
from distrl_jax.devices.adb_server.sim_control import SIM_COMMAND, encode_task
from distrl_jax.tasks.goals import Task

if TYPE_CHECKING:
    from distrl_jax.config import Config
    from distrl_jax.devices.task_env import TaskEnv

T = TypeVar("T")


def resize_screen(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` [H, W, 3] uint8 at (height, width) ``size``: area averaging when shrinking,
    bilinear when enlarging, unchanged when the size already matches."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    shrink = h <= img.shape[0] and w <= img.shape[1]
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(img).resize((w, h), method), dtype=np.uint8)


class AdbDevice(Device):
    """One adb serial (an emulator or phone) as a Device; see the module docstring.

    ``size`` is the (height, width) screenshots are resized to (the model's resolution).
    """

    def __init__(
        self,
        serial: str,
        *,
        host: str = "127.0.0.1",
        port: int = 5037,
        size: tuple[int, int] = (128, 64),
        timeout_s: float = 10.0,
        stable_frames: int = 2,
        settle_timeout_s: float = 2.0,
        settle_poll_s: float = 0.1,
        sim_control: bool = False,
    ):
        if not serial:
            raise ValueError("serial must be an adb serial such as emulator-5554 (`adb devices`)")
        if len(size) != 2 or not all(isinstance(v, int) and v >= 8 for v in size):
            raise ValueError(f"size must be (height, width) in pixels, each >= 8, got {size!r}")
        if not (timeout_s > 0 and settle_timeout_s >= 0 and settle_poll_s >= 0):
            raise ValueError(
                f"timeouts must be positive, got timeout_s={timeout_s}, "
                f"settle_timeout_s={settle_timeout_s}, settle_poll_s={settle_poll_s}"
            )
        if stable_frames < 1:
            raise ValueError(f"stable_frames must be >= 1, got {stable_frames}")
        self.serial = serial
        self.host, self.port = host, int(port)
        self.size = (int(size[0]), int(size[1]))
        self.timeout_s = float(timeout_s)
        self.stable_frames = int(stable_frames)
        self.settle_timeout_s = float(settle_timeout_s)
        self.settle_poll_s = float(settle_poll_s)
        self.sim_control = bool(sim_control)
        self.seedable = self.sim_control  # only the test server can pick a start state
        self.name = f"adb:{serial}@{host}:{port}"
        self.screen_wh: tuple[int, int] | None = None  # the device's (width, height) in pixels
        self.last_latency_s = 0.0
        self._client: DeadlineClient | None = None
        self._device: adbutils.AdbDevice | None = None
        self._broken = ""
        self._episode = 0

    # ------------------------------------------------------------ Device interface

    def reset(self, task: Task, *, seed: int | None = None) -> np.ndarray:
        """Bring the device to ``task``'s start: ``distrl-sim reset`` with ``sim_control``, else
        HOME, force-stop the task's apps, HOME. Returns the settled first screen."""
        self._ensure_connected()
        self._episode += 1
        if self.sim_control:
            if seed is None:
                seed = zlib.crc32(f"{self.serial}:{self._episode}".encode())
            out = self.shell(f"{SIM_COMMAND} reset {encode_task(task)} {int(seed)}")
            if out.strip() != "ok":
                self._fail("distrl-sim reset", ValueError(f"answered {out.strip()[:200]!r}"))
        else:
            home = f"input keyevent {adb_input.KEYCODE_HOME}"
            stops = [f"am force-stop {p}" for p in adb_input.packages_for(task.goal)]
            for line in adb_input.join_commands([home, *stops, home]):
                self.shell(line)
        return self._settled_screenshot()

    def step(self, action: Action) -> np.ndarray:
        """Send ``action`` (STATUS and INVALID actions send nothing) and return the settled
        screen; ``last_latency_s`` is the step's wall time."""
        start = time.monotonic()
        self._ensure_connected()
        assert self.screen_wh is not None
        cmds = adb_input.action_commands(action, *self.screen_wh)
        for line in adb_input.join_commands(cmds):
            self.shell(line)
        screen = self._settled_screenshot() if cmds else self.screenshot()
        self.last_latency_s = time.monotonic() - start
        return screen

    def screenshot(self) -> np.ndarray:
        """The current screen at ``size`` [H, W, 3] uint8 (``screencap -p`` over ``exec:``)."""
        self._ensure_connected()
        data = self._call("screencap", lambda d: exec_out(d, "screencap -p"))
        try:
            img = decode_png(data)
        except ValueError as err:
            self._fail("screencap", err)
        return resize_screen(img, self.size)

    def healthy(self) -> bool:
        """False after a fault until ``restart()`` succeeds."""
        return not self._broken

    def restart(self) -> None:
        """Reconnect: find the serial again, read its screen size, check its shell answers.
        Raises InfrastructureError (and stays unhealthy) when the device is still gone."""
        self.close()
        self._broken = ""
        self._connect()

    def close(self) -> None:
        """Forget the connection (adb connections are per request; nothing stays open)."""
        self._client = None
        self._device = None

    # ------------------------------------------------------------ test-server extras

    def sim_judge(self, task: Task) -> Verdict:
        """Ask the test server's ``distrl-sim judge`` whether ``task``'s goal holds now."""
        self._ensure_connected()
        out = self.shell(f"{SIM_COMMAND} judge {encode_task(task)}")
        try:
            doc = json.loads(out)
            if not isinstance(doc, dict) or not isinstance(doc.get("success"), bool):
                raise ValueError("expected {success: bool, reason: str}")
        except ValueError as err:
            self._fail("distrl-sim judge", ValueError(f"{err}; it answered {out[:200]!r}"))
        return Verdict(doc["success"], str(doc.get("reason", "")))

    # ------------------------------------------------------------ adb plumbing

    def shell(self, command: str) -> str:
        """Run one shell command line under the call deadline; its output as text.

        A non-zero exit status (a rejected ``input``, a failing ``am``) is a device fault:
        InfrastructureError, and the device is marked unhealthy."""
        status, out = self.shell_status(command)
        if status != 0:
            what = command.split(" ", 1)[0]
            tail = out.strip()[-300:]
            self._fail(what, RuntimeError(f"exit status {status} from {command[:200]!r}: {tail!r}"))
        return out

    def shell_status(self, command: str) -> tuple[int, str]:
        """Run one shell command line under the call deadline: (exit status, output as text).

        ``shell:`` (v1, what every Android version has) carries no exit status, so the line runs
        with ``echo <marker>$?`` on a line after it, and the marker is cut off the output.
        Output without the marker (a connection cut short) is a device fault."""
        self._ensure_connected()
        raw = self._call(
            command.split(" ", 1)[0],
            lambda d: d.shell(
                with_exit_status(command), timeout=self.timeout_s, encoding=None, rstrip=False
            ),
        )
        parsed = split_exit_status(raw)
        if parsed is None:
            tail = raw[-200:].decode("utf-8", errors="replace")
            self._fail(
                command.split(" ", 1)[0],
                ValueError(f"the shell's answer has no exit status (it ends {tail!r})"),
            )
        return parsed

    def _call(self, what: str, fn: Callable[[adbutils.AdbDevice], T]) -> T:
        if self._broken:
            raise InfrastructureError(
                f"{self.name} is {self._broken}; call restart()", device=self.name
            )
        assert self._client is not None and self._device is not None
        start = time.monotonic()
        self._client.deadline = start + self.timeout_s
        try:
            return fn(self._device)
        # AdbTimeout is an AdbError; ValueError is what adbutils raises on a malformed answer
        # (a length prefix that is not hex, a version that is not a number).
        except (adbutils.AdbError, OSError, EOFError, ValueError) as err:
            self._fail(what, err, time.monotonic() - start)
        finally:
            self._client.deadline = math.inf

    def _fail(self, what: str, err: Exception, elapsed: float | None = None) -> NoReturn:
        timed_out = isinstance(err, (adbutils.AdbTimeout, TimeoutError))
        self._broken = "hung" if timed_out else "failing"
        after = f" after {elapsed:.1f}s" if elapsed is not None else ""
        raise InfrastructureError(
            f"{self.name}: {what} failed{after} ({type(err).__name__}: {err}); the device is "
            "marked unhealthy and restart() reconnects",
            device=self.name,
        ) from err

    def _ensure_connected(self) -> None:
        if self._broken:
            raise InfrastructureError(
                f"{self.name} is {self._broken}; call restart()", device=self.name
            )
        if self._device is None:
            self._connect()

    def _connect(self) -> None:
        client = DeadlineClient(self.host, self.port)
        self._client = client
        self._device = adbutils.AdbDevice(client, serial=self.serial)
        infos = self._call("host:devices", lambda d: client.list())
        states = {i.serial: i.state for i in infos}
        if states.get(self.serial) != "device":
            self._broken = "offline"
            seen = ", ".join(f"{s} ({st})" for s, st in states.items()) or "none"
            state = states.get(self.serial, "not listed")
            raise InfrastructureError(
                f"{self.name}: serial is {state}; the adb server lists: {seen}", device=self.name
            )
        out = self.shell("wm size")
        wh = parse_wm_size(out)
        if wh is None:
            self._fail("wm size", ValueError(f"unexpected answer {out.strip()[:200]!r}"))
        self.screen_wh = wh
        if self.sim_control:
            status, pong = self.shell_status(f"{SIM_COMMAND} ping")
            pong = pong.strip()
            if status != 0 or pong != f"{SIM_COMMAND} ok":
                self._broken = "failing"
                raise InfrastructureError(
                    f"{self.name}: sim_control=True but the device has no {SIM_COMMAND} (it "
                    f"answered {pong[:120]!r}); that command exists only on distrl_jax's test ADB "
                    "server (python -m distrl_jax.devices.adb_server)",
                    device=self.name,
                    retryable=False,
                )

    def _settled_screenshot(self) -> np.ndarray:
        """Screenshots until ``stable_frames`` in a row agree, or ``settle_timeout_s`` passes."""
        deadline = time.monotonic() + self.settle_timeout_s
        last = self.screenshot()
        same = 1
        while same < self.stable_frames and time.monotonic() < deadline:
            if self.settle_poll_s:
                time.sleep(self.settle_poll_s)
            img = self.screenshot()
            same = same + 1 if np.array_equal(img, last) else 1
            last = img
        return last


class AdbSimEvaluator(Evaluator):
    """The exact simphone judge, asked over adb (``distrl-sim judge``); it works only with
    distrl_jax's test ADB server, for tests and end-to-end runs of the adb backend."""

    def evaluate(
        self, task: Task, device: Device, screen: np.ndarray, history: Sequence[Action]
    ) -> Verdict:
        """The server's verdict on ``task`` now; InfrastructureError when it cannot answer."""
        if not isinstance(device, AdbDevice):
            raise TypeError(
                f"AdbSimEvaluator asks an AdbDevice's test server, got {type(device).__name__}; "
                "use SimEvaluator for an in-process SimPhone"
            )
        if task.goal is None:
            return Verdict(False, f"unsupported task {task.text!r}: no goal to check")
        return device.sim_judge(task)


def make_adb_env(
    cfg: Config,
    serial: str,
    *,
    sim_control: bool = False,
    evaluator: Evaluator | None = None,
    timeout_s: float = 10.0,
) -> TaskEnv:
    """A TaskEnv on adb device ``serial`` (``cfg.device.adb_host``/``adb_port``) at the model's
    screen size, with the config's penalties, mirroring ``evaluate.make_env``.

    ``evaluator`` judges success; without one, ``sim_control=True`` (distrl_jax's test ADB
    server) uses :class:`AdbSimEvaluator`, and a real device needs one passed in.
    """
    from distrl_jax.devices.task_env import TaskEnv  # task_env imports core, as this module does

    if evaluator is None:
        if not sim_control:
            raise ValueError(
                "an adb device needs an evaluator that reads screenshots (e.g. a VLM judge); "
                "pass evaluator=..., or sim_control=True when serving simphone through "
                "distrl_jax's test ADB server"
            )
        evaluator = AdbSimEvaluator()
    dc = cfg.device
    device = AdbDevice(
        serial,
        host=dc.adb_host,
        port=dc.adb_port,
        size=tuple(cfg.model.image_size),
        timeout_s=timeout_s,
        sim_control=sim_control,
    )
    return TaskEnv(
        device,
        evaluator,
        history_k=cfg.model.history_k,
        invalid_penalty=cfg.tasks.invalid_penalty,
        repeat_penalty=cfg.tasks.repeat_penalty,
    )
