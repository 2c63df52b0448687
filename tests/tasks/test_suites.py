"""Task suites: loading, dedup, horizons, the validation split, and the coverage CLI."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from distrl_jax.tasks.__main__ import main
from distrl_jax.tasks.goals import Intent
from distrl_jax.tasks.suites import (
    HELD_OUT_SITES,
    is_validation,
    load_suite,
    load_tasks,
    read_task_strings,
    suite_for_path,
)
from distrl_jax.tasks.text import words


@pytest.mark.parametrize(("suite", "horizon"), [("general", 10), ("webshop", 20)])
def test_builtin_suites_split_into_disjoint_train_and_val(suite: str, horizon: int) -> None:
    train = load_tasks(suite, split="train")
    val = load_tasks(suite, split="val")
    every = load_tasks(suite, split="all")
    assert {t.text for t in train} | {t.text for t in val} == {t.text for t in every}
    assert not {t.text for t in train} & {t.text for t in val}
    # a real held-out set, but most of the data stays for training
    assert 0.05 * len(every) < len(val) < 0.35 * len(every)
    assert all(t.suite == suite and t.horizon == horizon and t.goal for t in every)
    assert all(is_validation(t.goal) for t in val)
    assert not any(is_validation(t.goal) for t in train)


def test_held_out_values_never_reach_train() -> None:
    train = load_tasks("general") + load_tasks("webshop")
    for task in train:
        assert task.goal.get("site") not in HELD_OUT_SITES
        text_words = set(words(task.text))
        for held_out in ("newegg", "tokyo", "seattle", "spotify", "drake", "jbl", "wallpaper"):
            assert held_out not in text_words, task.text
    val_sites = {t.goal.get("site") for t in load_tasks("webshop", split="val")}
    assert "newegg.com" in val_sites


def test_split_is_deterministic() -> None:
    assert load_tasks("general", split="val") == load_tasks("general", split="val")


def test_builtin_lists_are_deduplicated() -> None:
    _, general = read_task_strings("general")
    _, webshop = read_task_strings("webshop")
    assert (len(general), len(webshop)) == (len(set(general)), len(set(webshop)))
    assert len(general) > 500 and len(webshop) > 200


def test_file_lists_dedup_skip_comments_and_report_unsupported(tmp_path: Path, caplog) -> None:
    path = tmp_path / "mine.txt"
    path.write_text(
        "# my tasks\nOpen the clock\n\nOpen the clock\n  Set an alarm for 7am  \nCall mom\n",
        encoding="utf-8",
    )
    loaded = load_suite(path, split="all")
    assert loaded.unique == 3
    assert [t.text for t in loaded.tasks] == ["Open the clock", "Set an alarm for 7am"]
    assert [s for s, _ in loaded.unsupported] == ["Call mom"]
    assert loaded.unsupported[0][1]  # with a reason
    with caplog.at_level(logging.WARNING, logger="distrl_jax.tasks.suites"):
        tasks = load_tasks(path, split="all")
    assert len(tasks) == 2
    assert "1 of 3 unique task strings" in caplog.text


@pytest.mark.parametrize(
    ("filename", "suite"),
    [
        ("webshop_test.txt", "webshop"),
        ("aitw_web_shop.txt", "webshop"),
        ("general_test.txt", "general"),
        ("x.txt", "general"),
    ],
)
def test_suite_from_file_name(tmp_path: Path, filename: str, suite: str) -> None:
    path = tmp_path / filename
    path.write_text("Go to costco.com\n", encoding="utf-8")
    assert suite_for_path(path) == suite
    (task,) = load_tasks(path, split="all")
    assert (task.suite, task.horizon) == (suite, 20 if suite == "webshop" else 10)
    (given,) = load_tasks(path, split="all", horizon=7, suite="mine")
    assert (given.suite, given.horizon) == ("mine", 7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "test"}, "split='test'"),
        ({"horizon": 0}, "horizon=0"),
        ({"horizon": 2.5}, "horizon=2.5"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_tasks("general", **kwargs)


def test_missing_list_names_the_builtins(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="general, webshop"):
        load_tasks(str(tmp_path / "nope.txt"))


def test_cli_coverage_reports_each_list(tmp_path: Path, capsys) -> None:
    path = tmp_path / "extra.txt"
    path.write_text("Open the clock\nTake a selfie\n", encoding="utf-8")
    assert main(["coverage", "webshop", str(path)]) == 0
    out = capsys.readouterr().out
    assert "unique strings: 229" in out
    assert "supported: 1 (50.0%)" in out
    assert "'Take a selfie':" in out
    assert Intent.SITE_SELECT_FIRST.value in out
    assert "split: train" in out


def test_cli_parse(capsys) -> None:
    assert main(["parse", "Set an alarm for 6:30pm"]) == 0
    assert capsys.readouterr().out.split() == ["set_alarm", "time:", "18:30"]
    assert main(["parse", "Call mom"]) == 1
    assert "unsupported" in capsys.readouterr().err


def test_cli_missing_list_is_an_error(tmp_path: Path, capsys) -> None:
    assert main(["coverage", str(tmp_path / "nope.txt")]) == 2
    assert "neither a built-in suite" in capsys.readouterr().err
