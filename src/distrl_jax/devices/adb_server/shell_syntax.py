"""The subset of ``/system/bin/sh`` syntax the test ADB server understands.

Words with single quotes (all literal), double quotes (``\\`` escapes ``$ ` " \\`` and newline),
backslash escapes, ``$?`` (the last exit status, outside single quotes) and ``$NAME`` (always
empty: the server has no environment); commands separated by ``;``, newlines, ``&&`` and ``||``;
``#`` comments. Pipes, redirections, background jobs, subshells and command substitution are
refused with a :class:`ShellSyntaxError` that says so, rather than misread.
"""

from __future__ import annotations

import dataclasses


class ShellSyntaxError(ValueError):
    """The command line uses syntax this server's shell does not implement (or is malformed)."""


class _Status:
    """Marks where ``$?`` expands in a word."""


STATUS = _Status()
Word = tuple[str | _Status, ...]

_UNSUPPORTED = {
    "|": "pipes",
    ">": "redirection",
    "<": "redirection",
    "&": "background jobs",
    "`": "command substitution",
    "(": "subshells",
    ")": "subshells",
}


@dataclasses.dataclass(frozen=True)
class Command:
    """One simple command and the operator that joins it to the previous one (";", "&&", "||")."""

    op: str
    words: tuple[Word, ...]


def expand(word: Word, status: int) -> str:
    """A word's text with ``$?`` replaced by ``status``."""
    return "".join(str(status) if p is STATUS else p for p in word)


class _Lexer:
    def __init__(self, line: str):
        self.s = line
        self.i = 0
        self.commands: list[Command] = []
        self.words: list[Word] = []
        self.parts: list[str | _Status] = []
        self.have_word = False
        self.op = ";"

    def _unsupported(self, ch: str) -> ShellSyntaxError:
        return ShellSyntaxError(
            f"{_UNSUPPORTED[ch]} ({ch!r}) are not supported by distrl_jax's test adb shell; "
            "send one simple command per line, joined with ';', '&&' or '||'"
        )

    def end_word(self) -> None:
        if self.have_word:
            self.words.append(tuple(self.parts))
        self.parts, self.have_word = [], False

    def end_command(self, next_op: str) -> None:
        self.end_word()
        if self.words:
            self.commands.append(Command(self.op, tuple(self.words)))
        elif next_op != ";":
            raise ShellSyntaxError(f"'{next_op}' with no command before it")
        elif self.op != ";":
            raise ShellSyntaxError(f"'{self.op}' with no command after it")
        self.words, self.op = [], next_op

    def dollar(self) -> None:
        s, i = self.s, self.i + 1
        nxt = s[i] if i < len(s) else ""
        if nxt == "?":
            self.parts.append(STATUS)
            self.i = i + 1
        elif nxt == "(":
            raise self._unsupported("`")
        elif nxt == "{":
            end = s.find("}", i)
            if end < 0:
                raise ShellSyntaxError("unterminated ${")
            self.i = end + 1  # unset variable: empty
        elif nxt.isalnum() or nxt == "_":
            while i < len(s) and (s[i].isalnum() or s[i] == "_"):
                i += 1
            self.i = i  # unset variable: empty
        else:
            self.parts.append("$")
            self.i = i
        self.have_word = True

    def single_quoted(self) -> None:
        end = self.s.find("'", self.i + 1)
        if end < 0:
            raise ShellSyntaxError("unterminated single quote")
        self.parts.append(self.s[self.i + 1 : end])
        self.have_word = True
        self.i = end + 1

    def double_quoted(self) -> None:
        s = self.s
        self.i += 1
        self.have_word = True
        while True:
            if self.i >= len(s):
                raise ShellSyntaxError("unterminated double quote")
            ch = s[self.i]
            if ch == '"':
                self.i += 1
                return
            if ch == "\\" and self.i + 1 < len(s) and s[self.i + 1] in '$`"\\\n':
                if s[self.i + 1] != "\n":
                    self.parts.append(s[self.i + 1])
                self.i += 2
            elif ch == "$":
                self.dollar()
            elif ch == "`":
                raise self._unsupported("`")
            else:
                self.parts.append(ch)
                self.i += 1

    def run(self) -> list[Command]:
        s = self.s
        while self.i < len(s):
            ch = s[self.i]
            two = s[self.i : self.i + 2]
            if ch in " \t":
                self.end_word()
                self.i += 1
            elif ch == "\n" or ch == ";":
                self.end_command(";")
                self.i += 1
            elif two in ("&&", "||"):
                self.end_command(two)
                self.i += 2
            elif ch in _UNSUPPORTED:
                raise self._unsupported(ch)
            elif ch == "#" and not self.have_word:
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end
            elif ch == "\\":
                if self.i + 1 < len(s) and s[self.i + 1] != "\n":
                    self.parts.append(s[self.i + 1])
                    self.have_word = True
                self.i += 2
            elif ch == "'":
                self.single_quoted()
            elif ch == '"':
                self.double_quoted()
            elif ch == "$":
                self.dollar()
            else:
                self.parts.append(ch)
                self.have_word = True
                self.i += 1
        self.end_command(";")
        return self.commands


def parse_command_line(line: str) -> list[Command]:
    """Split a shell command line into simple commands; ShellSyntaxError on unsupported syntax."""
    return _Lexer(line).run()
