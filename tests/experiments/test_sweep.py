"""run_variants with a stand-in launcher: parallelism bound, run folders and logs, failures,
reuse of finished runs, timeouts and the shared behaviour-cloning warm start."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

import pytest

from distrl_jax.config import Config, ConfigError
from distrl_jax.experiments.sweep import (
    ABLATIONS,
    DISTILLED_ACTOR,
    FULL_BUDGET,
    TINY_BUDGET,
    SweepError,
    Variant,
    ablation_variants,
    run_variants,
    variant_supported,
)

pytestmark = pytest.mark.timeout(60)

# Stands in for `python -m distrl_jax.launch` / `distrl_jax.pretrain`: records its arguments
# and environment, sleeps, and fails for variants named "broken*".
FAKE = """
import json, os, pathlib, sys, time
run = pathlib.Path(next(a for a in sys.argv if a.startswith("--run-dir="))[len("--run-dir="):])
print("fake launch", run, flush=True)
with (run.parent.parent / "calls.jsonl").open("a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "cache": os.environ["JAX_COMPILATION_CACHE_DIR"],
                        "platforms": os.environ["JAX_PLATFORMS"]}) + "\\n")
time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
if sys.argv[1] == "pretrain":
    (run / "checkpoints" / "0").mkdir(parents=True)
    sys.exit(0)
if run.parent.name.startswith("broken"):
    print("boom", file=sys.stderr)
    sys.exit(3)
(run / "eval").mkdir(parents=True, exist_ok=True)
(run / "eval" / "final.json").write_text("{}")
"""


@pytest.fixture
def fake(tmp_path: pathlib.Path) -> tuple[list[str], list[str]]:
    script = tmp_path / "fake_launch.py"
    script.write_text(FAKE)
    return [sys.executable, str(script), "launch"], [sys.executable, str(script), "pretrain"]


def calls(folder: pathlib.Path) -> list[dict]:
    """What the stand-in recorded for the runs two levels below ``folder``."""
    return [json.loads(line) for line in (folder / "calls.jsonl").read_text().splitlines()]


def max_overlap(results) -> int:
    events = sorted(
        [(r.started, 1) for r in results] + [(r.started + r.seconds, -1) for r in results],
        key=lambda e: (e[0], e[1]),
    )
    level = peak = 0
    for _, d in events:
        level += d
        peak = max(peak, level)
    return peak


def test_runs_every_variant_and_seed_within_the_parallel_bound(tmp_path, fake, monkeypatch):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    out = tmp_path / "sweep"
    variants = [Variant("A-RIDE"), Variant("no-entropy", ("learner.entropy_coef=0",))]
    results = run_variants(
        variants, [0, 1], "smoke", TINY_BUDGET, out, parallel=2, launcher=fake[0],
        env={"FAKE_SLEEP": "0.5"}, quiet=True,
    )  # fmt: skip
    assert [(r.variant, r.seed, r.exit_code) for r in results] == [
        ("A-RIDE", 0, 0), ("A-RIDE", 1, 0), ("no-entropy", 0, 0), ("no-entropy", 1, 0),
    ]  # fmt: skip
    assert max_overlap(results) == 2
    for r in results:
        assert r.path == out.resolve() / r.variant / f"seed-{r.seed}"
        assert r.log == r.path / "launch.log"
        assert r.log.read_text().startswith(f"fake launch {r.path}")
        assert r.seconds >= 0.5 and not r.skipped
    recorded = {c["argv"][-1]: c for c in calls(out)}
    no_entropy_1 = recorded[f"--run-dir={out.resolve()}/no-entropy/seed-1"]
    assert no_entropy_1["argv"][:3] == ["launch", "--config=smoke", "--set"]
    sets = no_entropy_1["argv"][2:-1:2]
    assert set(sets) == {"--set"}
    assert no_entropy_1["argv"][3:-1:2] == [*TINY_BUDGET, "learner.entropy_coef=0", "seed=1"]
    assert {c["cache"] for c in recorded.values()} == {str(out.resolve() / ".jax-cache")}
    assert {c["platforms"] for c in recorded.values()} == {"cpu"}


def test_one_at_a_time_when_parallel_is_one(tmp_path, fake) -> None:
    results = run_variants(
        [Variant("A-RIDE")], [0, 1, 2], "smoke", TINY_BUDGET, tmp_path / "s", parallel=1,
        launcher=fake[0], env={"FAKE_SLEEP": "0.2"}, quiet=True,
    )  # fmt: skip
    assert max_overlap(results) == 1 and len(results) == 3


def test_failures_are_reported_with_their_logs_after_all_runs_end(tmp_path, fake) -> None:
    out = tmp_path / "sweep"
    variants = [Variant("broken-lr", ("learner.lr=0.001",)), Variant("A-RIDE")]
    with pytest.raises(SweepError) as err:
        run_variants(variants, [0], "smoke", TINY_BUDGET, out, parallel=1, launcher=fake[0],
                     quiet=True)  # fmt: skip
    log = out.resolve() / "broken-lr" / "seed-0" / "launch.log"
    assert f"broken-lr seed 0: exit code 3; log: {log}" in str(err.value)
    assert "1 of 2 runs failed" in str(err.value)
    assert "boom" in log.read_text()  # stderr is captured too
    assert [r.exit_code for r in err.value.results] == [3, 0]  # A-RIDE still ran


def test_finished_runs_are_reused_unless_rerun(tmp_path, fake) -> None:
    out = tmp_path / "sweep"
    args = ([Variant("A-RIDE")], [0], "smoke", TINY_BUDGET, out)
    run_variants(*args, launcher=fake[0], quiet=True)
    (again,) = run_variants(*args, launcher=fake[0], quiet=True)
    assert again.skipped and again.exit_code == 0 and len(calls(out)) == 1
    (fresh,) = run_variants(*args, launcher=fake[0], quiet=True, rerun=True)
    assert not fresh.skipped and len(calls(out)) == 2


def test_timeout_stops_the_run(tmp_path, fake) -> None:
    with pytest.raises(SweepError, match="exit code -15"):
        run_variants(
            [Variant("A-RIDE")], [0], "smoke", TINY_BUDGET, tmp_path / "s", launcher=fake[0],
            env={"FAKE_SLEEP": "30"}, timeout_s=1.0, quiet=True,
        )  # fmt: skip


def test_bc_warm_start_is_trained_once_per_seed_before_the_runs(tmp_path, fake) -> None:
    out = tmp_path / "sweep"
    variants = [Variant("A-RIDE"), Variant("sync", ("runtime.mode=sync",))]
    run_variants(
        variants, [0], "smoke", FULL_BUDGET, out, parallel=2, launcher=fake[0],
        pretrainer=fake[1], quiet=True,
    )  # fmt: skip
    made = calls(tmp_path)
    pretrain = [c for c in made if c["argv"][0] == "pretrain"]
    assert len(pretrain) == 1
    folder = pretrain[0]["argv"][-1][len("--run-dir=") :]
    assert pathlib.Path(folder).parent == (tmp_path / "warm-starts").resolve()
    launches = calls(out)
    assert len(launches) == 2
    for c in launches:
        assert f"checkpoint.init_from={folder}/checkpoints" in c["argv"]


def test_bad_config_fails_before_anything_runs(tmp_path, fake) -> None:
    with pytest.raises(ConfigError, match="variant 'typo', seed 0: unknown config field"):
        run_variants([Variant("A-RIDE"), Variant("typo", ("learner.entropy=0",))], [0],
                     "smoke", TINY_BUDGET, tmp_path / "s", launcher=fake[0])  # fmt: skip
    assert not (tmp_path / "s").exists()
    with pytest.raises(ValueError, match="unique"):
        run_variants([Variant("a"), Variant("a")], [0], launcher=fake[0])


def test_variant_names_and_the_standard_list() -> None:
    with pytest.raises(ValueError, match="folder name"):
        Variant("../escape")
    with pytest.raises(ValueError, match="field=value"):
        Variant("x", ("learner.lr",))
    assert [v.name for v in ABLATIONS] == [
        "A-RIDE", "no-retrace", "uniform-replay", "no-entropy", "digirl-async", "sync",
    ]  # fmt: skip
    assert all(variant_supported(v) for v in ABLATIONS)
    has_actor_policy = any(f.name == "actor" for f in dataclasses.fields(Config))
    assert variant_supported(DISTILLED_ACTOR) == has_actor_policy
    assert (DISTILLED_ACTOR in ablation_variants()) == has_actor_policy
    assert not variant_supported(Variant("bad", ("replay.sampling=sometimes",)))


def test_budgets_are_named_valid_configs_for_every_variant() -> None:
    """Each named budget resolves, with every ablation variant and seed, to a valid config of
    its base preset; the short and full budgets start from the warm start and run for a time;
    an unknown name lists the known ones."""
    from distrl_jax.experiments.sweep import BUDGETS, SHORT_BUDGET, budget, resolve_config

    assert list(BUDGETS) == ["tiny", "short", "full"]
    assert budget("tiny").overrides == TINY_BUDGET and budget("short").overrides == SHORT_BUDGET
    assert budget("full").overrides == FULL_BUDGET
    for b in BUDGETS.values():
        for v in ablation_variants(b.base_config):
            for s in b.seeds:
                cfg = resolve_config(b.base_config, [*b.overrides, *v.overrides, f"seed={s}"])
                assert cfg.seed == s
        if b.name != "tiny":
            cfg = resolve_config(b.base_config, b.overrides)
            assert cfg.checkpoint.init_from == "bc" and cfg.runtime.seconds > 0
            assert cfg.learner.steps == 0 and len(b.seeds) >= 2
    with pytest.raises(ValueError, match="'huge' is not one of tiny, short, full"):
        budget("huge")
