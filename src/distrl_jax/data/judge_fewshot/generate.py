"""Regenerate the VLM judge's few-shot examples from simphone screens.

Run from the repository root: ``python src/distrl_jax/data/judge_fewshot/generate.py``. It plays
simphone's scripted expert on three tasks and keeps one screen of each (a success, and two
near misses that a careless judge would accept), writing ``examples.jsonl`` and the PNGs here.
"""

from __future__ import annotations

import json
from pathlib import Path

from distrl_jax.devices import actions as A
from distrl_jax.devices.simphone.expert import ScriptedExpert
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.vlm_judge import encode_png
from distrl_jax.tasks.goals import Task
from distrl_jax.tasks.parser import parse

HERE = Path(__file__).resolve().parent
SIZE = (320, 160)  # small, yet the text stays legible to a VLM
HISTORY = 3

# (task, steps before the expert's COMPLETE to stop at (0 = the solved screen), success, reason)
EXAMPLES = (
    (
        "What's the weather like in Paris?",
        0,
        True,
        "Google search results for the weather in Paris are on screen.",
    ),
    (
        'Go to costco.com, search for "bose soundsport free"',
        1,
        False,
        "The query is typed on costco.com but not submitted; no search results are shown.",
    ),
    (
        "Set an alarm for 7am",
        1,
        False,
        "The Clock app lists a 7:00 AM alarm, but it is switched off.",
    ),
)


def trajectory(text: str) -> list[tuple[bytes, list[A.Action]]]:
    """Replay the expert on ``text``: (PNG of the screen after k actions, those k actions) per k."""
    task = Task(text, parse(text))
    expert = ScriptedExpert()
    phone = SimPhone(size=SIZE, seed=0, layout_seed=0)
    phone.reset(task)
    actions: list[A.Action] = []
    screens = [encode_png(phone.screenshot())]
    for _ in range(task.horizon * 2):
        a = expert.act(task.goal, phone)
        if a == A.COMPLETE:
            return [(png, actions[:k]) for k, png in enumerate(screens)]
        phone.step(a)
        actions.append(a)
        screens.append(encode_png(phone.screenshot()))
    raise RuntimeError(f"the expert did not solve {text!r}")


def main() -> None:
    """Write examples.jsonl and one PNG per example into this folder."""
    lines = []
    for i, (text, back, success, reason) in enumerate(EXAMPLES):
        png, actions = trajectory(text)[-1 - back]
        name = f"example_{i}.png"
        (HERE / name).write_bytes(png)
        record = {
            "task": text,
            "actions": [A.to_compact(a) for a in actions[-HISTORY:]],
            "image": name,
            "success": success,
            "reason": reason,
        }
        lines.append(json.dumps(record))
    (HERE / "examples.jsonl").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
