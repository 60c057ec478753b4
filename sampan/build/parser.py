"""The low-level Dockerfile parser: text to a list of instruction nodes.

This is the first of two steps, as in BuildKit (``frontend/dockerfile/parser``): it knows the
line syntax — parser directives, comments, line continuations, heredocs, JSON (exec) form
against shell form, flags — but not what an instruction means.  An unknown instruction is kept
here and refused by the second step (:mod:`sampan.build.dockerfile`), which turns nodes into
typed instructions and stages.

Line rules, in order:

1. Parser directives (``# syntax=...``, ``# escape=\\`` or `````, ``# check=...``) are
   recognised only at the very top: the first line that is not a directive — a blank line,
   any other comment, an instruction, an unknown directive name — ends them for good.  Names
   are case-insensitive; each may appear once.
2. A line whose first non-blank character is ``#`` is a comment.  Leading whitespace of an
   instruction line is dropped.
3. A line ending in the escape character (optionally followed by spaces or tabs) continues on
   the next line.  Inside a continuation, comment lines are skipped and empty lines are skipped
   too (with a warning, as BuildKit does); the pieces are joined without a separator and keep
   their leading whitespace.
4. In RUN, COPY and ADD (also under ONBUILD) in shell form, each ``<<WORD``, ``<<-WORD``,
   ``<<"WORD"``, ``<<'WORD'`` or ``N<<WORD`` starts a heredoc whose body is the following lines
   up to a line equal to WORD (after stripping leading tabs for ``<<-``); several heredocs on
   one line take their bodies one after the other.  A quoted WORD turns variable expansion of
   the body off.

A node keeps its arguments as BuildKit's dispatch functions split them: a JSON array gives the
array (``json=True``); otherwise RUN, CMD, ENTRYPOINT, SHELL keep the rest of the line as one
string; ADD, COPY, VOLUME, FROM and EXPOSE split at whitespace; ENV and LABEL give
``key, value, separator`` triples (separator ``"="`` or ``""`` for the legacy ``ENV k v``
form); ARG gives its words; HEALTHCHECK gives its type then the command; ONBUILD holds the
wrapped instruction in ``sub``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sampan.build.arguments import INSTRUCTIONS, parse_words, split_arguments, split_command
from sampan.build.shellwords import Lexer, go_quote
from sampan.errors import DockerfileParseError, InvalidArgument

DEFAULT_ESCAPE = "\\"
MAX_LINE = 65535  # bufio.MaxScanTokenSize - 1, BuildKit's limit for one physical line

_HEREDOC = re.compile(r"^([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_DIRECTIVE = re.compile(r"^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
VALID_DIRECTIVES = frozenset({"syntax", "escape", "check"})
HEREDOC_INSTRUCTIONS = frozenset({"add", "copy", "run"})


@dataclass(frozen=True)
class Heredoc:
    """One heredoc body attached to an instruction (``content`` keeps its newlines)."""

    name: str
    content: str = ""
    file_descriptor: int = 0
    expand: bool = True
    chomp: bool = False


@dataclass
class Node:
    """One instruction as written: see the module docstring for the shape of ``args``."""

    cmd: str
    args: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    json: bool = False
    original: str = ""
    start_line: int = 0
    end_line: int = 0
    heredocs: list[Heredoc] = field(default_factory=list)
    sub: Node | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The instruction name, lower case (``run``)."""
        return self.cmd.lower()

    def can_contain_heredoc(self) -> bool:
        node = self.sub if self.name == "onbuild" and self.sub is not None else self
        return node.name in HEREDOC_INSTRUCTIONS and not node.json


@dataclass
class ParseResult:
    """The nodes of a Dockerfile plus what the directives said."""

    nodes: list[Node]
    escape: str = DEFAULT_ESCAPE
    directives: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class _Directives:
    """Parser-directive state: which were seen, and whether they are still allowed."""

    def __init__(self) -> None:
        self.done = False
        self.seen: dict[str, str] = {}
        self.escape = DEFAULT_ESCAPE
        self._continuation = _continuation_regex(DEFAULT_ESCAPE)

    def possible_directive(self, line: str) -> bool:
        if self.done:
            return False
        if not line.startswith("#"):
            self.done = True
            return False
        match = _DIRECTIVE.match(line[1:].lstrip())
        key = match.group(1).lower() if match else ""
        if match is None or key not in VALID_DIRECTIVES:
            self.done = True
            return False
        if key in self.seen:
            raise InvalidArgument(f"only one {key} parser directive can be used")
        value = match.group(2)
        self.seen[key] = value
        if key == "escape":
            if value not in ("`", "\\"):
                raise InvalidArgument(f"invalid escape token '{value}' does not match ` or \\")
            self.escape = value
            self._continuation = _continuation_regex(value)
        return True

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        """Strip a trailing escape character; return the line and whether it was the end."""
        match = self._continuation.search(line)
        if match is None:
            return line, True
        return line[: match.start()] + (match.group(1) or ""), False


def _continuation_regex(escape: str) -> re.Pattern[str]:
    e = re.escape(escape)
    return re.compile(rf"([^{e}]){e}[ \t]*\Z|^{e}[ \t]*\Z")


def _trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _split_lines(text: str) -> list[str]:
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def parse(source: str | bytes) -> ParseResult:
    """Parse Dockerfile text into nodes.  Raises :class:`DockerfileParseError`."""
    text = source.decode("utf-8", "surrogateescape") if isinstance(source, bytes) else source
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _split_lines(text)
    d = _Directives()
    nodes: list[Node] = []
    warnings: list[str] = []
    comments: list[str] = []
    current = 0
    i = 0

    def process(raw: str, strip_left: bool, line_no: int) -> tuple[str, bool]:
        if len(raw.rstrip("\n")) > MAX_LINE:
            raise DockerfileParseError(
                f"dockerfile line greater than max allowed size of {MAX_LINE}", line_no
            )
        token = _trim_newline(raw)
        if strip_left:
            token = token.lstrip()
        try:
            ok = d.possible_directive(token)
        except InvalidArgument as exc:
            raise DockerfileParseError(exc.message, line_no) from None
        return ("" if _is_comment(token) else token), ok

    while i < len(lines):
        raw = lines[i]
        i += 1
        if _is_comment(raw):
            comment = raw[1:].strip()
            comments = [*comments, comment] if comment else []
        token, was_directive = process(raw, True, current + 1)
        if was_directive and comments:
            comments = comments[:-1]
        current += 1
        start = current
        line, eol = d.trim_continuation(token)
        if eol and not line:
            continue
        pieces = [line]
        empty_continuation = False
        while not eol and i < len(lines):
            raw = lines[i]
            i += 1
            token, _ = process(raw, False, current + 1)
            current += 1
            if _is_comment(raw):
                continue
            if not token.lstrip():
                empty_continuation = True
                continue
            token, eol = d.trim_continuation(token)
            pieces.append(token)
        line = "".join(pieces)
        if empty_continuation:
            warnings.append(f"Empty continuation line found in: {line}")
        try:
            node = _node_from_line(line, d.escape)
        except InvalidArgument as exc:
            raise DockerfileParseError(exc.message, start) from None
        node.comments = comments
        if node.can_contain_heredoc() and "<<" in line:
            try:
                markers = heredocs_from_line(line)
            except InvalidArgument as exc:
                raise DockerfileParseError(exc.message, start) from None
            for marker in markers:
                body: list[str] = []
                terminated = False
                while i < len(lines):
                    raw = lines[i]
                    i += 1
                    current += 1
                    candidate = _trim_newline(raw)
                    if marker.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == marker.name:
                        terminated = True
                        break
                    body.append(raw)
                if not terminated:
                    raise DockerfileParseError("unterminated heredoc", start)
                node.heredocs.append(
                    Heredoc(
                        marker.name,
                        "".join(body),
                        marker.file_descriptor,
                        marker.expand,
                        marker.chomp,
                    )
                )
        node.start_line, node.end_line = start, current
        nodes.append(node)
        comments = []
    if not nodes:
        raise DockerfileParseError("file with no instructions", current if current else 0)
    return ParseResult(nodes, d.escape, dict(d.seen), warnings)


# --- one instruction line -------------------------------------------------------------------


def _node_from_line(line: str, escape: str) -> Node:
    cmd, flags, rest = split_command(line, escape)
    node = Node(cmd=cmd, flags=flags, original=line)
    name = cmd.lower()
    if name == "onbuild":
        if rest:
            node.sub = _node_from_line(rest, escape)
        return node
    split = split_arguments(name, rest, escape)
    if split is not None:
        node.args, node.json = split
    return node


# --- heredocs --------------------------------------------------------------------------------


def parse_heredoc(word: str) -> Heredoc | None:
    """The heredoc a word like ``<<EOF``, ``<<-"EOF"`` or ``3<<EOF`` starts, else None."""
    match = _HEREDOC.match(word)
    if match is None or not match.group(3):
        return None
    rest = match.group(3)
    words = Lexer("\\", skip_unset_env=True).process_words(rest, {})
    if len(words) != 1:
        return None
    raw = Lexer("\\", skip_unset_env=True, raw_quotes=True).process_words(rest, {})
    if len(raw) != len(words):
        raise InvalidArgument(f"internal lexing of heredoc produced inconsistent results: {rest}")
    name = words[0]
    quotes = name.count("'") + name.count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return Heredoc(
        name=name,
        file_descriptor=int(match.group(1) or "0"),
        expand=quotes == raw_quotes,
        chomp=match.group(2) == "-",
    )


def heredocs_from_line(line: str) -> list[Heredoc]:
    """The heredoc markers of an instruction line, in order."""
    lexer = Lexer("\\", raw_quotes=True, raw_escapes=True, skip_unset_env=True)
    try:
        words = lexer.process_words(line, {})
    except InvalidArgument:
        words = []
    found = []
    for word in words:
        heredoc = parse_heredoc(word)
        if heredoc is not None:
            found.append(heredoc)
    return found


def chomp_heredoc(content: str) -> str:
    """Strip leading tabs from every line (the ``<<-`` form)."""
    return re.sub(r"(?m)^\t+", "", content)


__all__ = [
    "DockerfileParseError",
    "Heredoc",
    "INSTRUCTIONS",
    "Node",
    "ParseResult",
    "chomp_heredoc",
    "go_quote",
    "heredocs_from_line",
    "parse",
    "parse_heredoc",
    "parse_words",
]
