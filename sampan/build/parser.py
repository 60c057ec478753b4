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

import json
import re
from dataclasses import dataclass, field

from sampan.build.shellwords import Lexer, go_quote
from sampan.errors import DockerfileParseError, InvalidArgument

DEFAULT_ESCAPE = "\\"
MAX_LINE = 65535  # bufio.MaxScanTokenSize - 1, BuildKit's limit for one physical line

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
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
    cmd, flags, rest = _split_command(line, escape)
    node = Node(cmd=cmd, flags=flags, original=line)
    name = cmd.lower()
    if name == "onbuild":
        if rest:
            node.sub = _node_from_line(rest, escape)
        return node
    dispatch = _DISPATCH.get(name)
    if dispatch is not None:
        node.args, node.json = dispatch(rest, escape)
    return node


def _split_command(line: str, escape: str) -> tuple[str, list[str], str]:
    parts = _WHITESPACE.split(line.strip(), maxsplit=1)
    if len(parts) < 2:
        return parts[0], [], ""
    rest, flags = _extract_flags(parts[1], escape)
    return parts[0], flags, rest.strip()


def _extract_flags(line: str, escape: str) -> tuple[str, list[str]]:
    """Take the leading ``--flag[=value]`` words off ``line`` (quotes and escapes removed)."""
    words: list[str] = []
    word = ""
    blank_ok = False
    quote = ""
    pos = 0
    n = len(line)
    while True:
        while pos < n and line[pos].isspace():
            pos += 1
        if pos == n:
            return "", words
        if not line.startswith("--", pos):
            return line[pos:], words
        word, blank_ok, quote = "", False, ""
        while pos < n:
            ch = line[pos]
            if quote:
                if ch == quote:
                    quote = ""
                elif ch == escape:
                    if pos + 1 == n:
                        quote = ""
                    else:
                        pos += 1
                        word += line[pos]
                else:
                    word += ch
                pos += 1
                continue
            if ch.isspace():
                break
            if ch in ("'", '"'):
                quote, blank_ok = ch, True
            elif ch == escape:
                if pos + 1 < n:
                    pos += 1
                    word += line[pos]
            else:
                word += ch
            pos += 1
        if pos < n and word == "--":
            return line[pos:], words
        if pos == n:
            if word != "--" and (blank_ok or word):
                words.append(word)
            return "", words
        if blank_ok or word:
            words.append(word)


def parse_words(rest: str, escape: str) -> list[str]:
    """Split at whitespace keeping quotes and escapes (BuildKit's ``parseWords``)."""
    words: list[str] = []
    word = ""
    in_word = False
    quote = ""
    blank_ok = False
    pos = 0
    n = len(rest)
    while pos < n:
        ch = rest[pos]
        if not in_word:
            if ch.isspace():
                pos += 1
                continue
            in_word = True
        if not quote:
            if ch.isspace():
                if blank_ok or word:
                    words.append(word)
                word, blank_ok, in_word = "", False, False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote, blank_ok = ch, True
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue
                word += ch
                pos += 1
                ch = rest[pos]
            word += ch
            pos += 1
            continue
        if ch == quote:
            quote = ""
        elif ch == escape and quote != "'":
            if pos + 1 == n:
                quote = ""
                pos += 1
                continue
            word += ch
            pos += 1
            ch = rest[pos]
        word += ch
        pos += 1
    if in_word and (blank_ok or word):
        words.append(word)
    return words


def _whitespace_list(rest: str, escape: str) -> tuple[list[str], bool]:
    return (_WHITESPACE.split(rest) if rest else []), False


def _single_string(rest: str, escape: str) -> tuple[list[str], bool]:
    return ([rest] if rest else []), False


class _NotStringArray(InvalidArgument):
    pass


def _reject_constant(name: str) -> object:
    raise ValueError(name)


def _json_array(rest: str) -> list[str] | None:
    """The strings of a JSON array, or None when ``rest`` is not one (then: shell form)."""
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest, parse_constant=_reject_constant)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _NotStringArray(
            "when using JSON array syntax, arrays must be comprised of strings only"
        )
    return value


def _maybe_json(rest: str, escape: str) -> tuple[list[str], bool]:
    if not rest:
        return [], False
    array = _json_array(rest)
    return (array, True) if array is not None else ([rest], False)


def _maybe_json_list(rest: str, escape: str) -> tuple[list[str], bool]:
    array = _json_array(rest)
    return (array, True) if array is not None else _whitespace_list(rest, escape)


def _name_values(rest: str, escape: str, key: str) -> list[str]:
    words = parse_words(rest, escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise InvalidArgument(f"{key} must have two arguments")
        return [parts[0], parts[1], ""]
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise InvalidArgument(
                f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value"
            )
        k, v = word.split("=", 1)
        out += [k, v, "="]
    return out


def _env(rest: str, escape: str) -> tuple[list[str], bool]:
    return _name_values(rest, escape, "ENV"), False


def _label(rest: str, escape: str) -> tuple[list[str], bool]:
    return _name_values(rest, escape, "LABEL"), False


def _arg(rest: str, escape: str) -> tuple[list[str], bool]:
    return parse_words(rest, escape), False


def _healthcheck(rest: str, escape: str) -> tuple[list[str], bool]:
    sep = 0
    while sep < len(rest) and not rest[sep].isspace():
        sep += 1
    if sep == 0:
        return [], False
    nxt = sep
    while nxt < len(rest) and rest[nxt].isspace():
        nxt += 1
    cmd, is_json = _maybe_json(rest[nxt:], escape)
    return [rest[:sep], *cmd], is_json


_DISPATCH = {
    "add": _maybe_json_list,
    "arg": _arg,
    "cmd": _maybe_json,
    "copy": _maybe_json_list,
    "entrypoint": _maybe_json,
    "env": _env,
    "expose": _whitespace_list,
    "from": _whitespace_list,
    "healthcheck": _healthcheck,
    "label": _label,
    "maintainer": _single_string,
    "run": _maybe_json,
    "shell": _maybe_json,
    "stopsignal": _single_string,
    "user": _single_string,
    "volume": _maybe_json_list,
    "workdir": _single_string,
}
INSTRUCTIONS = frozenset({*_DISPATCH, "onbuild"})


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
