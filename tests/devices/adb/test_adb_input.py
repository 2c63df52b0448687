"""AitW actions as shell commands: coordinates, tap/swipe rule, and our own text escaping."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from distrl_jax.devices import actions as A
from distrl_jax.devices import adb_input as I
from distrl_jax.devices.adb_server.shell_syntax import (
    ShellSyntaxError,
    expand,
    parse_command_line,
)
from distrl_jax.tasks.parser import parse

pytestmark = pytest.mark.timeout(30)

TRICKY = [
    "hello world",
    "  two  spaces  ",
    'it\'s "quoted"',
    "a;b|c&d$e`f`\\g",
    "$(rm -rf /) && echo pwned || true",
    "50% off",
    "100%s literal",
    "%%s and %s and %",
    "tab\there",
    "line1\nline2",
    "café naïve 日本語 🙂",
    "'",
    "*?[glob]~#!",
]


@pytest.mark.parametrize("text", TRICKY)
def test_input_text_args_round_trip_through_androids_percent_s_rule(text):
    args = I.input_text_args(text)
    assert all(" " not in a for a in args)  # spaces always travel as %s
    assert "".join(I.android_input_text(a) for a in args) == text


@pytest.mark.parametrize("text", TRICKY)
def test_shell_quote_gives_one_literal_word_to_our_shell(text):
    cmds = parse_command_line(f"input text {I.shell_quote(text)}")
    assert len(cmds) == 1
    assert [expand(w, 0) for w in cmds[0].words] == ["input", "text", text]


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX sh to compare quoting with")
@pytest.mark.parametrize("text", TRICKY)
def test_shell_quote_matches_a_real_posix_shell(text):
    out = subprocess.run(
        ["sh", "-c", "printf '%s' " + I.shell_quote(text)],
        capture_output=True,
        check=True,
        timeout=10,
    ).stdout.decode()
    assert out == text


def test_long_text_is_split_into_commands_under_the_limit():
    text = "x y%" * 300 + "s"
    cmds = I.type_commands(text)
    assert len(cmds) > 1
    lines = I.join_commands(cmds)
    assert all(len(line.encode()) <= I.MAX_COMMAND_BYTES for line in lines)
    args = I.input_text_args(text)
    assert "".join(I.android_input_text(a) for a in args) == text


def test_trailing_newline_becomes_enter():
    assert I.type_commands("go\n") == ["input text 'go'", "input keyevent 66"]
    assert I.type_commands("\n") == ["input keyevent 66"]


def test_pixels_round_trip_within_half_a_pixel():
    w, h = 1080, 2400
    for y, x in [(0.0, 0.0), (1.0, 1.0), (0.123, 0.987), (0.5, 0.5)]:
        px, py = I.to_pixel((y, x), w, h)
        assert 0 <= px < w and 0 <= py < h
        y2, x2 = I.from_pixel(px, py, w, h)
        assert abs(y2 - y) <= 0.5 / h + 1e-12 and abs(x2 - x) <= 0.5 / w + 1e-12


def test_tap_or_swipe_follows_the_aitw_rule():
    w, h = 1000, 2000
    assert I.action_commands(A.tap(0.5, 0.5), w, h) == ["input tap 500 1000"]
    near = A.swipe(0.5, 0.5, 0.5 + 0.03, 0.5)  # within TAP_DISTANCE: a tap at the touch point
    assert I.action_commands(near, w, h) == ["input tap 500 1000"]
    far = A.swipe(0.8, 0.5, 0.2, 0.5)
    assert I.action_commands(far, w, h) == [f"input swipe 500 1600 500 400 {I.SWIPE_MS}"]


def test_keys_status_and_invalid_actions():
    assert I.action_commands(A.HOME, 10, 10) == ["input keyevent 3"]
    assert I.action_commands(A.BACK, 10, 10) == ["input keyevent 4"]
    assert I.action_commands(A.ENTER, 10, 10) == ["input keyevent 66"]
    assert I.action_commands(A.COMPLETE, 10, 10) == []
    assert I.action_commands(A.invalid("x"), 10, 10) == []
    assert I.action_commands(A.tap(1.5, 0.2), 10, 10) == []  # out of range: validate → INVALID


def test_packages_for_goals():
    assert I.packages_for(parse("Open the clock app")) == ("com.google.android.deskclock",)
    assert "com.android.chrome" in I.packages_for(parse("Go to costco.com"))
    assert I.packages_for(None) == ()


def test_join_commands_rejects_a_command_over_the_limit():
    with pytest.raises(ValueError, match="over the"):
        I.join_commands(["x" * 50], limit=10)
    assert I.join_commands(["a", "b", "c"], limit=6) == ["a && b", "c"]


def test_shell_syntax_sequencing_and_status():
    cmds = parse_command_line("false && echo no || echo $? ; echo '$?' \"$?\"")
    assert [c.op for c in cmds] == [";", "&&", "||", ";"]
    assert [expand(w, 7) for w in cmds[3].words] == ["echo", "$?", "7"]


@pytest.mark.parametrize("line", ["ls | grep x", "echo hi > f", "echo `id`", "echo $(id)", "a &"])
def test_shell_syntax_refuses_what_it_does_not_implement(line):
    with pytest.raises(ShellSyntaxError, match="not supported"):
        parse_command_line(line)


@pytest.mark.parametrize("line", ["echo 'open", 'echo "open', "&& echo x", "echo x &&"])
def test_shell_syntax_rejects_malformed_lines(line):
    with pytest.raises(ShellSyntaxError):
        parse_command_line(line)
