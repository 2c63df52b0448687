"""``distrl-sim``: a shell command that exists ONLY on distrl_jax's test ADB server.

No Android device has it. It lets tests and end-to-end runs over ADB start an episode in a
seeded simphone state and judge it exactly, as ``SimPhone.reset(task, seed=)`` and
``SimEvaluator`` do in process:

* ``distrl-sim ping`` prints ``distrl-sim ok`` (how a client detects this server);
* ``distrl-sim reset TASK SEED`` resets the device's simphone to TASK's start state for SEED and
  prints ``ok``;
* ``distrl-sim judge TASK`` prints one JSON line ``{"success": bool, "reason": str}``;
* ``distrl-sim screen`` prints one JSON line naming the current screen and app (for debugging).

TASK is :func:`encode_task`'s form: URL-safe base64 of a small JSON object (text, suite,
horizon, goal intent and slots), so it passes through any shell unquoted. It is parsed as
untrusted input: JSON only, every field checked.
"""

from __future__ import annotations

import base64
import binascii
import json

from distrl_jax.devices.simphone.judge import SimEvaluator
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.tasks.goals import Goal, Intent, Task

SIM_COMMAND = "distrl-sim"
_MAX_TASK_CHARS = 8192


def encode_task(task: Task) -> str:
    """``task`` as one shell-safe word (URL-safe base64 of JSON)."""
    goal = None
    if task.goal is not None:
        goal = {"intent": task.goal.intent.value, "slots": dict(task.goal.slots)}
    doc = {"text": task.text, "suite": task.suite, "horizon": task.horizon, "goal": goal}
    raw = json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_task(word: str) -> Task:
    """The task :func:`encode_task` wrote; ValueError saying what is wrong otherwise."""
    if len(word) > _MAX_TASK_CHARS:
        raise ValueError(f"task is {len(word)} characters, over {_MAX_TASK_CHARS}")
    try:
        doc = json.loads(base64.urlsafe_b64decode(word.encode("ascii")))
    except (binascii.Error, UnicodeError, json.JSONDecodeError, ValueError) as err:
        raise ValueError(f"task is not base64 of JSON ({err})") from None
    if not isinstance(doc, dict):
        raise ValueError("task JSON must be an object")
    text, suite, horizon = doc.get("text"), doc.get("suite", "general"), doc.get("horizon", 10)
    if not isinstance(text, str) or not isinstance(suite, str):
        raise ValueError("task 'text' and 'suite' must be strings")
    if not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"task 'horizon' must be an integer >= 1, got {horizon!r}")
    g = doc.get("goal")
    goal = None
    if g is not None:
        if not isinstance(g, dict) or not isinstance(g.get("slots"), dict):
            raise ValueError("task 'goal' must be null or {intent: str, slots: {name: value}}")
        slots = g["slots"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in slots.items()):
            raise ValueError("goal slots must map strings to strings")
        goal = Goal.make(Intent(g.get("intent")), **slots)  # ValueError on a bad intent/slots
    return Task(text, goal, suite=suite, horizon=horizon)


def run_sim_command(args: list[str], phone: SimPhone) -> tuple[bytes, bytes, int]:
    """Run ``distrl-sim ARGS`` on ``phone``: (stdout, stderr, exit code)."""
    usage = (
        f"usage: {SIM_COMMAND} ping | reset TASK SEED | judge TASK | screen  "
        "(test-server only; TASK is distrl_jax.devices.adb_server.sim_control.encode_task)\n"
    ).encode()
    if not args:
        return b"", usage, 2
    verb, rest = args[0], args[1:]
    try:
        if verb == "ping" and not rest:
            return f"{SIM_COMMAND} ok\n".encode(), b"", 0
        if verb == "reset" and len(rest) == 2:
            task = decode_task(rest[0])
            try:
                seed = int(rest[1])
            except ValueError:
                raise ValueError(f"SEED must be an integer, got {rest[1]!r}") from None
            phone.restart()  # clears a simulated fault, as an emulator snapshot reload would
            phone.reset(task, seed=seed)
            return b"ok\n", b"", 0
        if verb == "judge" and len(rest) == 1:
            task = decode_task(rest[0])
            verdict = SimEvaluator().evaluate(task, phone, phone.screenshot(), ())
            line = json.dumps({"success": verdict.success, "reason": verdict.reason})
            return (line + "\n").encode(), b"", 0
        if verb == "screen" and not rest:
            line = json.dumps({"screen": phone.screen().name, "app": phone.state.view.app})
            return (line + "\n").encode(), b"", 0
    except ValueError as err:
        return b"", f"{SIM_COMMAND} {verb}: {err}\n".encode(), 1
    return b"", usage, 2
