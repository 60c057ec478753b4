"""The subset of Go's text/template that ``--format`` takes, with docker's template functions.

Supported: text and ``{{ }}`` actions (with ``{{-``/``-}}`` trimming and ``{{/* comments */}}``);
fields ``.A.B`` on maps (missing key -> ``<no value>``), ``.``, ``$`` and variables
(``{{$x := .A}}``, ``{{range $i, $v := .L}}``); string/raw-string/number/bool/nil literals;
pipelines ``a | f``; parentheses; ``if``/``else if``/``else``/``end``, ``range`` (lists, maps
in key order, ``else``), ``with``; functions: docker's ``json split join title lower upper pad
truncate println`` and Go's ``print printf println len index slice eq ne lt le gt ge and or not``.
Values print as Go's ``fmt.Sprint`` does (``[a b]``, ``map[k:v]``, ``<nil>``, ``true``).

    >>> Template("{{.Name | upper}}: {{join .Tags \\", \\"}}").render({"Name": "x", "Tags": ["a", "b"]})
    'X: a, b'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sampan.cli.templatefuncs import (
    FUNCS,
    NO_VALUE,
    FormatterRow,
    TemplateError,
    escape_html,
    go_float,
    go_json,
    go_str,
    go_type,
    truthy,
)

__all__ = ["FormatterRow", "Template", "TemplateError", "escape_html", "go_float", "go_json", "go_str"]


# ---------------------------------------------------------------- lexer


def _tokens(src: str) -> list[tuple[str, Any]]:
    """Tokens of one action: (kind, value); kinds: field chain var str num bool nil ident | ( ) := , =

    ``chain`` is a field path right after ``)``: ``(index .Networks "n").IPAddress``."""
    out: list[tuple[str, Any]] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
        elif c in "|(),":
            out.append((c, c))
            i += 1
        elif src.startswith(":=", i):
            out.append((":=", ":="))
            i += 2
        elif c == "=":
            out.append(("=", "="))
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            if j >= n:
                raise TemplateError("unterminated quoted string")
            try:
                out.append(("str", json.loads(src[i : j + 1])))
            except ValueError:
                raise TemplateError(f"bad string literal {src[i : j + 1]}") from None
            i = j + 1
        elif c == "`":
            j = src.find("`", i + 1)
            if j < 0:
                raise TemplateError("unterminated raw quoted string")
            out.append(("str", src[i + 1 : j]))
            i = j + 1
        elif c == "." or c == "$" or c.isalpha() or c == "_":
            j = i + 1
            while j < n and (src[j].isalnum() or src[j] in "._$"):
                j += 1
            word = src[i:j]
            if c == "." and i > 0 and src[i - 1] == ")":  # (pipeline).Field: a field of its result
                out.append(("chain", [p for p in word.split(".") if p]))
            elif c == ".":
                out.append(("field", [p for p in word.split(".") if p] if word != "." else []))
            elif c == "$":
                name, *path = word.split(".")
                out.append(("var", (name, path)))
            elif word in ("true", "false"):
                out.append(("bool", word == "true"))
            elif word == "nil":
                out.append(("nil", None))
            else:
                out.append(("ident", word))
            i = j
        elif c.isdigit() or (c in "-+" and i + 1 < n and src[i + 1].isdigit()):
            j = i + 1
            while j < n and (src[j].isalnum() or src[j] in ".+-"):
                j += 1
            word = src[i:j]
            try:
                out.append(("num", int(word, 0) if word.lstrip("+-").isdigit() else float(word)))
            except ValueError:
                raise TemplateError(f"bad number syntax: {word!r}") from None
            i = j
        elif c == ")" or c == "(":
            out.append((c, c))
            i += 1
        else:
            raise TemplateError(f"unexpected {c!r} in command")
    return out


def _split_actions(text: str) -> list[tuple[bool, str]]:
    """(is_action, content) pieces with Go's trim markers applied."""
    pieces: list[tuple[bool, str]] = []
    i = 0
    trim_next = False
    while True:
        j = text.find("{{", i)
        if j < 0:
            chunk = text[i:]
            pieces.append((False, chunk.lstrip() if trim_next else chunk))
            return pieces
        chunk = text[i:j]
        if trim_next:
            chunk = chunk.lstrip()
        k = text.find("}}", j + 2)
        if k < 0:
            raise TemplateError("unclosed action")
        inner = text[j + 2 : k]
        if inner.startswith("- ") or inner == "-":
            chunk = chunk.rstrip()
            inner = inner[1:]
        trim_next = inner.endswith(" -")
        if trim_next:
            inner = inner[:-2]
        pieces.append((False, chunk))
        inner = inner.strip()
        if not (inner.startswith("/*") and inner.endswith("*/")):
            pieces.append((True, inner))
        i = k + 2


# ---------------------------------------------------------------- parser

Pipeline = tuple[list[str], list[list[Any]]]  # (declared variables, commands of operands)
Node = tuple[Any, ...]


def _parse_pipeline(tokens: list[tuple[str, Any]]) -> Pipeline:
    decl: list[str] = []
    if any(kind == ":=" or kind == "=" for kind, _ in tokens):
        k = next(i for i, (kind, _) in enumerate(tokens) if kind in (":=", "="))
        names = [v for kind, v in tokens[:k] if kind != ","]
        if not names or not all(kind in ("var", ",") for kind, _ in tokens[:k]):
            raise TemplateError("bad variable declaration")
        decl = [name for name, _path in names]
        tokens = tokens[k + 1 :]
    cmds: list[list[Any]] = [[]]
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "|":
            cmds.append([])
        elif kind == "(":
            depth, j = 1, i + 1
            while j < len(tokens) and depth:
                depth += {"(": 1, ")": -1}.get(tokens[j][0], 0)
                j += 1
            if depth:
                raise TemplateError("unclosed left paren")
            operand: tuple[str, Any] = ("pipe", _parse_pipeline(tokens[i + 1 : j - 1]))
            if j < len(tokens) and tokens[j][0] == "chain":
                operand = ("chain", (operand, tokens[j][1]))
                j += 1
            cmds[-1].append(operand)
            i = j
            continue
        elif kind in (")", ",", ":=", "=", "chain"):
            raise TemplateError(f"unexpected {value!r} in operand")
        else:
            cmds[-1].append((kind, value))
        i += 1
    if any(not cmd for cmd in cmds):
        raise TemplateError("missing value for command")
    for cmd in cmds:
        if cmd[0][0] == "ident" and cmd[0][1] not in FUNCS:
            raise TemplateError(f'function "{cmd[0][1]}" not defined')
    return decl, cmds


def _parse(pieces: list[tuple[bool, str]], pos: int, stop: tuple[str, ...]) -> tuple[list[Node], int, str]:
    """Nodes from ``pieces[pos:]`` up to a keyword in ``stop``; returns (nodes, next pos, keyword)."""
    nodes: list[Node] = []
    while pos < len(pieces):
        is_action, text = pieces[pos]
        pos += 1
        if not is_action:
            if text:
                nodes.append(("text", text))
            continue
        word, _, rest = text.partition(" ")
        if word in ("end", "else"):
            if word not in stop:
                raise TemplateError(f"unexpected {{{{{word}}}}}")
            return nodes, pos - 1, word
        if word in ("if", "range", "with"):
            node, pos = _parse_control(word, rest, pieces, pos)
            nodes.append(node)
            continue
        if word in ("define", "template", "block", "break", "continue"):
            raise TemplateError(f"{{{{{word}}}}} is not supported in --format")
        nodes.append(("action", _parse_pipeline(_tokens(text))))
    if stop:
        raise TemplateError("unexpected EOF: missing {{end}}")
    return nodes, pos, ""


def _parse_control(word: str, rest: str, pieces: list[tuple[bool, str]], pos: int) -> tuple[Node, int]:
    """An if/range/with block whose opening action was just read; returns (node, pos after end)."""
    pipe = _parse_pipeline(_tokens(rest))
    body, pos, kw = _parse(pieces, pos, ("else", "end"))
    other: list[Node] = []
    if kw == "else":
        else_text = pieces[pos][1][4:].strip()
        pos += 1
        if word != "range" and else_text.startswith(("if ", "with ")):  # {{else if X}}: shares our end
            inner_word, _, inner_rest = else_text.partition(" ")
            node, pos = _parse_control(inner_word, inner_rest, pieces, pos)
            return (word, pipe, body, [node]), pos
        if else_text:
            raise TemplateError(f"unexpected {else_text!r} after else")
        other, pos, kw = _parse(pieces, pos, ("end",))
    return (word, pipe, body, other), pos + 1


# ---------------------------------------------------------------- evaluation


def _field(value: Any, path: list[str]) -> Any:
    for name in path:
        if value is NO_VALUE:
            return NO_VALUE
        if isinstance(value, Mapping):
            try:
                value = value[name]
            except KeyError:
                value = NO_VALUE
        elif value is None:  # a JSON null: in docker's typed structs mostly a nil map
            return NO_VALUE
        else:
            raise TemplateError(f"can't evaluate field {name} in type {go_type(value)}")
    return value


class _Scope:
    def __init__(self, dot: Any, variables: dict[str, Any]) -> None:
        self.dot = dot
        self.vars = variables


def _operand(op: tuple[str, Any], scope: _Scope) -> Any:
    kind, value = op
    if kind == "field":
        return _field(scope.dot, value)
    if kind == "var":
        name, path = value
        if name not in scope.vars:
            raise TemplateError(f'undefined variable "{name}"')
        return _field(scope.vars[name], path)
    if kind == "pipe":
        return _pipeline(value, scope)
    if kind == "chain":
        inner, path = value
        return _field(_operand(inner, scope), path)
    if kind == "ident":
        return FUNCS[value]()
    return value


def _pipeline(pipe: Pipeline, scope: _Scope) -> Any:
    decl, cmds = pipe
    result: Any = NO_VALUE
    piped = False
    for cmd in cmds:
        head = cmd[0]
        if head[0] == "ident":
            args = [_operand(op, scope) for op in cmd[1:]]
            if piped:
                args.append(result)
            try:
                result = FUNCS[head[1]](*args)
            except TemplateError:
                raise
            except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
                raise TemplateError(f"error calling {head[1]}: {exc}") from None
        else:
            if len(cmd) > 1 or piped:
                raise TemplateError(f"can't give argument to non-function {_describe(head)}")
            result = _operand(head, scope)
        piped = True
    for name in decl:
        scope.vars[name] = result
    return result if not decl else ""


def _describe(op: tuple[str, Any]) -> str:
    kind, value = op
    if kind == "field":
        return "." + ".".join(value)
    if kind == "chain":
        return "(...)." + ".".join(value[1])
    return str(value)


def _execute(nodes: list[Node], scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "action":
            value = _pipeline(node[1], scope)
            if not node[1][0]:
                out.append(go_str(value))
        elif kind == "if":
            branch = node[2] if truthy(_pipeline((([]), node[1][1]), scope)) else node[3]
            _execute(branch, _Scope(scope.dot, dict(scope.vars)), out)
        elif kind == "with":
            value = _pipeline(([], node[1][1]), scope)
            if truthy(value):
                inner = _Scope(value, dict(scope.vars))
                for name in node[1][0]:
                    inner.vars[name] = value
                _execute(node[2], inner, out)
            else:
                _execute(node[3], _Scope(scope.dot, dict(scope.vars)), out)
        elif kind == "range":
            _range(node, scope, out)


def _range(node: Node, scope: _Scope, out: list[str]) -> None:
    decl, cmds = node[1]
    value = _pipeline(([], cmds), scope)
    if isinstance(value, Mapping):
        items = [(k, value[k]) for k in sorted(value)]
    elif isinstance(value, list | tuple):
        items = list(enumerate(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [(i, i) for i in range(value)]
    elif value is None or value is NO_VALUE:
        items = []
    else:
        raise TemplateError(f"range can't iterate over {go_str(value)}")
    if not items:
        _execute(node[3], _Scope(scope.dot, dict(scope.vars)), out)
        return
    for key, item in items:
        inner = _Scope(item, dict(scope.vars))
        if len(decl) == 1:
            inner.vars[decl[0]] = item
        elif len(decl) >= 2:
            inner.vars[decl[0]], inner.vars[decl[1]] = key, item
        _execute(node[2], inner, out)


class Template:
    """A parsed template; :meth:`render` executes it against one value."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self.nodes, _, _ = _parse(_split_actions(text), 0, ())
        except TemplateError as exc:
            raise TemplateError(f"template parsing error: template: :1: {exc}") from None

    def render(self, data: Any) -> str:
        out: list[str] = []
        try:
            _execute(self.nodes, _Scope(data, {"$": data}), out)
        except TemplateError as exc:
            raise TemplateError(f"template: :1: executing \"\" at <{self.text[:40]}>: {exc}") from None
        except RecursionError:
            raise TemplateError("template: :1: too deeply nested") from None
        return "".join(out)
