"""How an instruction line is split into its command, flags and arguments.

BuildKit's dispatch rules (``frontend/dockerfile/parser/line_parsers.go``), one function per
argument shape; :func:`split_arguments` picks the shape by instruction name.  A JSON array is
exec form only when the whole rest of the line decodes as an array of strings; an array with a
non-string element is an error, anything else that does not decode is shell form.
"""

from __future__ import annotations

import json
import re

from sampan.build.shellwords import go_quote
from sampan.errors import InvalidArgument

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")


def split_command(line: str, escape: str) -> tuple[str, list[str], str]:
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


def split_arguments(name: str, rest: str, escape: str) -> tuple[list[str], bool] | None:
    """The arguments of instruction ``name`` (lower case) and whether they were JSON; None for
    an unknown instruction or ONBUILD (whose rest is itself an instruction line)."""
    dispatch = _DISPATCH.get(name)
    return dispatch(rest, escape) if dispatch is not None else None
