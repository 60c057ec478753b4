"""Go's way of printing values, and the functions docker's ``--format`` templates may call.

``go_str`` is ``fmt.Sprint`` (``[a b]``, ``map[k:v]``, ``<nil>``, ``true``, ``1e+06``); ``FUNCS``
holds docker's ``json split join title lower upper pad truncate println`` and Go's ``print printf
println len index slice eq ne lt le gt ge and or not``.  :mod:`sampan.cli.template` evaluates
templates with them.
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
            out.append(f"%!{verb}({go_type(arg)}={go_str(arg)})")
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

def go_type(value: Any) -> str:
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
