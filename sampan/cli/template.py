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
from collections.abc import Callable, Mapping
from typing import Any

from sampan import errors


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Any = _NoValue()


class TemplateError(errors.InvalidArgument):
    """A --format template that does not parse or execute; printed as is, as docker does."""

    plain = True


# ---------------------------------------------------------------- printing values as Go does


def go_float(value: float) -> str:
    """``fmt.Sprint`` of a float64: shortest digits, exponent form below 1e-4 or from 1e+06."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if str(value).startswith("-") else ""
    text = repr(abs(value))
    if "e" in text:
        mantissa, exp_text = text.split("e")
        digits, exp = mantissa.replace(".", ""), int(exp_text)
    else:
        int_part, _, frac = text.partition(".")
        if int_part != "0":
            digits, exp = int_part + frac, len(int_part) - 1
        else:
            stripped = frac.lstrip("0")
            digits, exp = stripped, -(len(frac) - len(stripped)) - 1
    digits = digits.rstrip("0") or "0"
    if digits == "0":
        return sign + "0"
    if exp < -4 or exp >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp >= 0:
        whole, frac = digits[: exp + 1].ljust(exp + 1, "0"), digits[exp + 1 :]
        return sign + whole + ("." + frac if frac else "")
    return sign + "0." + "0" * (-exp - 1) + digits


def go_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "<nil>"
    if value is NO_VALUE:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(value[k])}" for k in sorted(value)) + "]"
    return str(value)


class FormatterRow(dict[str, Any]):
    """A row of a docker formatter context (``images``, ``history``...).  Its ``{{json .}}`` is
    Go's ``json.Marshal`` of the context, which escapes ``<``, ``>`` and ``&``."""


def escape_html(text: str) -> str:
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def go_json(value: Any) -> str:
    """docker's ``json`` template function: compact, HTML not escaped (but see FormatterRow)."""
    if value is NO_VALUE:
        value = None
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return escape_html(text) if isinstance(value, FormatterRow) else text


def truthy(value: Any) -> bool:
    if value is NO_VALUE or value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | Mapping):
        return len(value) > 0
    return True


# ---------------------------------------------------------------- functions


def _join(items: Any, sep: str) -> str:
    return sep.join(go_str(v) for v in (items or []))


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, Mapping):
            value = value.get(key, NO_VALUE)
        elif isinstance(value, list | tuple | str):
            if not isinstance(key, int) or not 0 <= key < len(value):
                raise TemplateError(f"error calling index: index out of range: {key}")
            value = value[key]
        else:
            raise TemplateError(f"error calling index: cannot index slice/array with type {type(value).__name__}")
    return value


def _printf(fmt: str, *args: Any) -> str:
    """Go's ``fmt.Sprintf`` for the verbs templates use: %s %v %d %q %t %x %X %o %f %e %g %c %%."""
    out: list[str] = []
    it = iter(args)
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%" or i + 1 >= len(fmt):
            out.append(c)
            i += 1
            continue
        j = i + 1
        while j < len(fmt) and fmt[j] in "+-# 0123456789.":
            j += 1
        if j >= len(fmt):
            out.append(fmt[i:])
            break
        spec, verb = fmt[i + 1 : j], fmt[j]
        i = j + 1
        if verb == "%":
            out.append("%")
            continue
        arg = next(it, NO_VALUE)
        if arg is NO_VALUE:
            out.append(f"%!{verb}(MISSING)")
        elif verb in "sv":
            out.append(f"%{spec}s" % go_str(arg))
        elif verb == "q":
            out.append(f"%{spec}s" % json.dumps(go_str(arg), ensure_ascii=False))
        elif verb == "t":
            out.append(f"%{spec}s" % go_str(bool(arg) if not isinstance(arg, str) else arg))
        elif verb in "dxXoc" and isinstance(arg, int | float) and not isinstance(arg, bool):
            out.append(f"%{spec}{verb}" % int(arg))
        elif verb in "xX" and isinstance(arg, str):
            out.append(arg.encode().hex() if verb == "x" else arg.encode().hex().upper())
        elif verb in "feEgG" and isinstance(arg, int | float) and not isinstance(arg, bool):
            out.append(f"%{spec}{verb}" % float(arg))
        else:
            out.append(f"%!{verb}({_go_type(arg)}={go_str(arg)})")
    return "".join(out)


def _pad(value: Any, left: int, right: int) -> str:
    return " " * left + go_str(value) + " " * right


def _truncate(value: Any, n: int) -> str:
    text = go_str(value)
    return text[:n] if len(text) > n else text


def _cmp(name: str, op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def compare(a: Any, *bs: Any) -> bool:
        if not bs:
            raise TemplateError(f"error calling {name}: missing argument for comparison")
        try:
            return any(op(a, b) for b in bs) if name == "eq" else op(a, bs[0])
        except TypeError:
            raise TemplateError(f"error calling {name}: incompatible types for comparison") from None

    return compare


def _slice(value: Any, *idx: int) -> Any:
    if len(idx) == 0:
        return value
    return value[idx[0] : idx[1]] if len(idx) > 1 else value[idx[0] :]


FUNCS: dict[str, Callable[..., Any]] = {
    "json": go_json,
    "split": lambda s, sep: go_str(s).split(sep),
    "join": _join,
    "title": lambda s: go_str(s).title(),
    "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(),
    "pad": _pad,
    "truncate": _truncate,
    "println": lambda *a: " ".join(go_str(v) for v in a) + "\n",
    "print": lambda *a: "".join(go_str(v) for v in a),
    "printf": _printf,
    "len": lambda v: len(v) if v is not NO_VALUE and v is not None else 0,
    "index": _index,
    "slice": _slice,
    "eq": _cmp("eq", lambda a, b: a == b),
    "ne": _cmp("ne", lambda a, b: a != b),
    "lt": _cmp("lt", lambda a, b: a < b),
    "le": _cmp("le", lambda a, b: a <= b),
    "gt": _cmp("gt", lambda a, b: a > b),
    "ge": _cmp("ge", lambda a, b: a >= b),
    "not": lambda v: not truthy(v),
    "and": lambda *a: next((v for v in a if not truthy(v)), a[-1] if a else None),
    "or": lambda *a: next((v for v in a if truthy(v)), a[-1] if a else None),
}

# ---------------------------------------------------------------- lexer


def _tokens(src: str) -> list[tuple[str, Any]]:
    """Tokens of one action: (kind, value); kinds: field var str num bool nil ident | ( ) := , ="""
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
            if c == ".":
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
            cmds[-1].append(("pipe", _parse_pipeline(tokens[i + 1 : j - 1])))
            i = j
            continue
        elif kind in (")", ",", ":=", "="):
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
        elif value is None:
            raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
        else:
            raise TemplateError(f"can't evaluate field {name} in type {_go_type(value)}")
    return value


def _go_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    return type(value).__name__


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
