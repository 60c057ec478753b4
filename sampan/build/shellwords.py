"""Dockerfile variable substitution and word splitting, as BuildKit's shell lexer does it.

A Dockerfile is not run through a shell to expand ``$VAR``: the builder expands variables
itself, for the instructions in :data:`sampan.build.instructions.EXPANDING_INSTRUCTIONS`, with
this lexer.  The grammar is a small part of POSIX sh:

- ``$NAME``, ``${NAME}`` and the special parameters ``$1``, ``$@``, ``$*``, ``$#``, ``$?``,
  ``$-``, ``$$``, ``$!``, ``$0`` (never set in a build, so they expand to nothing);
- ``${NAME:-word}``, ``${NAME-word}`` (default), ``${NAME:+word}``, ``${NAME+word}``
  (alternative), ``${NAME:?msg}``, ``${NAME?msg}`` (error), ``${NAME#pat}``, ``${NAME##pat}``,
  ``${NAME%pat}``, ``${NAME%%pat}`` (trim, with ``*`` and ``?`` wildcards), ``${NAME/pat/rep}``,
  ``${NAME//pat/rep}`` (replace);
- single quotes (literal), double quotes (``$`` still expands), and the escape character of the
  Dockerfile (``\\`` or, with ``# escape=`` ``\\```, a backtick).

:meth:`Lexer.process_word` returns one string (quotes removed); :meth:`Lexer.process_words`
splits the result into words at unquoted whitespace, which is what EXPOSE and the heredoc
detection need.  Options mirror BuildKit's ``shell.Lex``: ``raw_quotes`` keeps the quote
characters, ``raw_escapes`` keeps escape characters, ``skip_unset_env`` leaves references to
unset variables as written (used to find heredoc markers without an environment).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sampan.errors import InvalidArgument

_SPECIAL_PARAMS = frozenset("@*#?-$!0")


def go_quote(text: str) -> str:
    """Quote ``text`` roughly as Go's ``%q`` does (used to keep Docker's error wording)."""
    return json.dumps(text, ensure_ascii=False)


class _LexError(Exception):
    """Internal: a lexing failure before it gets the 'failed to process' prefix."""


@dataclass
class WordResult:
    """The outcome of expanding one word: the joined result, the split words and the names
    of the variables that were found (``matched``) or not (``unmatched``) in the environment."""

    result: str
    words: list[str]
    matched: set[str] = field(default_factory=set)
    unmatched: set[str] = field(default_factory=set)


class _Words:
    """Collects whitespace-separated words while a word is expanded."""

    def __init__(self) -> None:
        self.buf = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.buf:
                self.words.append(self.buf)
                self.buf = ""
                self.in_word = False
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.buf += ch
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw_string(self, text: str) -> None:
        self.buf += text
        self.in_word = True

    def get(self) -> list[str]:
        if self.buf:
            self.words.append(self.buf)
        self.buf = ""
        self.in_word = False
        return self.words


class Lexer:
    """Expands Dockerfile words against an environment (see the module docstring)."""

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_process_quotes: bool = False,
        skip_unset_env: bool = False,
    ) -> None:
        if escape not in ("\\", "`"):
            raise InvalidArgument(f"invalid escape token {escape!r}: must be ` or \\")
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_process_quotes = skip_process_quotes
        self.skip_unset_env = skip_unset_env

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """Expand ``word`` to one string (quotes and escapes removed)."""
        return self.process(word, env).result

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Expand ``word`` and split the result at unquoted whitespace."""
        return self.process(word, env).words

    def process(self, word: str, env: Mapping[str, str]) -> WordResult:
        run = _Run(self, word, env)
        try:
            result, words = run.stop_on(None, self.raw_escapes)
        except _LexError as exc:
            raise InvalidArgument(f"failed to process {go_quote(word)}: {exc}") from None
        return WordResult(result, words, run.matched, run.unmatched)


class _Run:
    """One expansion: a cursor over the word plus the options of its Lexer."""

    def __init__(self, lexer: Lexer, text: str, env: Mapping[str, str]) -> None:
        self.lx = lexer
        self.text = text
        self.pos = 0
        self.env = env
        self.raw_escapes = lexer.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        if self.pos >= len(self.text):
            return ""
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def get_env(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            self.matched.add(name)
            return self.env[name], True
        self.unmatched.add(name)
        return "", False

    def stop_on(self, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        handlers: dict[str, Callable[[], str]] = {"$": self.dollar, "<": self.possible_heredoc}
        if not self.lx.skip_process_quotes:
            handlers["'"] = self.single_quote
            handlers['"'] = self.double_quote
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            while self.peek():
                ch = self.peek()
                if stop is not None and ch == stop:
                    self.next()
                    return "".join(result), words.get()
                handler = handlers.get(ch)
                if handler is not None:
                    tmp = handler()
                    result.append(tmp)
                    if ch == "$":
                        words.add_string(tmp)
                    else:
                        words.add_raw_string(tmp)
                    continue
                ch = self.next()
                if ch == self.lx.escape:
                    if self.raw_escapes:
                        words.add_raw_char(ch)
                        result.append(ch)
                    ch = self.next()
                    if not ch:
                        break
                    words.add_raw_char(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
            if stop is not None:
                raise _LexError(f"unexpected end of statement while looking for matching {stop}")
            return "".join(result), words.get()
        finally:
            self.raw_escapes = saved

    def single_quote(self) -> str:
        out: list[str] = []
        ch = self.next()
        if self.lx.raw_quotes:
            out.append(ch)
        while True:
            ch = self.next()
            if not ch:
                raise _LexError(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                if self.lx.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        out: list[str] = []
        ch = self.next()
        if self.lx.raw_quotes:
            out.append(ch)
        while True:
            nxt = self.peek()
            if not nxt:
                raise _LexError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if nxt == '"':
                ch = self.next()
                if self.lx.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if nxt == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.lx.escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", self.lx.escape):
                    ch = self.next()
            out.append(ch)

    def possible_heredoc(self) -> str:
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        space: list[str] = []
        while self.peek() in ("\t", "\r", " ") and self.peek():
            space.append(self.next())
        return "<<" + "".join(space)

    def name(self) -> str:
        out: list[str] = []
        while self.peek():
            ch = self.peek()
            if not out and ch.isdecimal():
                while self.peek() and self.peek().isdecimal():
                    out.append(self.next())
                return "".join(out)
            if not out and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value, found = self.get_env(name)
            if not found and self.lx.skip_unset_env:
                return "$" + name
            return value
        self.next()
        first = self.peek()
        if not first:
            raise _LexError("syntax error: missing '}'")
        if first in "{}:":
            raise _LexError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        modifier = ch
        null_is_unset = False
        if ch == "}":
            value, found = self.get_env(name)
            if not found and self.lx.skip_unset_env:
                return "${" + name + "}"
            return value
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            modifier += ch
        if ch in ("+", "-", "?", "#", "%") and ch:
            return self._modifier(name, ch, modifier, null_is_unset)
        if ch == "/" and not null_is_unset:
            return self._replace(name)
        raise _LexError(f"unsupported modifier ({modifier}) in substitution")

    def _modifier(self, name: str, ch: str, modifier: str, null_is_unset: bool) -> str:
        trims = ch in ("#", "%")
        if null_is_unset and trims:
            raise _LexError(f"unsupported modifier ({modifier}) in substitution")
        try:
            word, _ = self.stop_on("}", trims)
        except _LexError:
            if not self.peek():
                raise _LexError("syntax error: missing '}'") from None
            raise
        value, found = self.get_env(name)
        if self.lx.skip_unset_env and not found:
            return "${" + name + modifier + word + "}"
        unset_or_null = not found or (null_is_unset and value == "")
        if ch == "-":
            return word if unset_or_null else value
        if ch == "+":
            return "" if unset_or_null else word
        if ch == "?":
            if not found:
                raise _LexError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _LexError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        greedy = word.startswith(ch)
        if greedy:
            word = word[1:]
        if ch == "%":
            return _trim_suffix(word, value, greedy)
        return _trim_prefix(word, value, greedy)

    def _replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        try:
            pattern, _ = self.stop_on("/", True)
        except _LexError:
            if not self.peek():
                raise _LexError("syntax error: missing '/' in ${}") from None
            raise
        try:
            replacement, _ = self.stop_on("}", True)
        except _LexError:
            if not self.peek():
                raise _LexError("syntax error: missing '}'") from None
            raise
        value, found = self.get_env(name)
        if self.lx.skip_unset_env and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        if replace_all:
            return regex.sub(lambda _m: replacement, value)
        return regex.sub(lambda _m: replacement, value, count=1)


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """Translate a shell pattern (``*``, ``?``, ``\\`` escapes) to a regular expression."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(pattern):
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(star)
        elif tok == "?":
            out.append(".")
        elif tok == "\\":
            nxt = pattern[i] if i < len(pattern) else ""
            if nxt in ("}", "/"):
                continue
            if nxt not in ("*", "?", "\\"):
                raise _LexError(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{nxt}'"
                )
            out.append(re.escape(nxt))
            i += 1
        else:
            out.append(re.escape(tok))
    return re.compile("".join(out), re.DOTALL)


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    regex = _pattern_regex(pattern, greedy=greedy, anchored=True)
    match = regex.search(value)
    return value[match.end() :] if match else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern keeping each ``\\x`` escape pair in order."""
    units: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            units.append(pattern[i : i + 2])
            i += 2
        else:
            units.append(pattern[i])
            i += 1
    return "".join(reversed(units))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]
