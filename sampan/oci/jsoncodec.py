"""JSON loads/dumps for the runtime's hot path, on CPython's ``_json`` C scanner and encoder.

The stdlib ``json`` package compiles regular expressions at import (``re`` and ``enum``: about
3 ms), which matters for a runtime started once per container.  The C accelerators behind
``json`` need no regexes: this module drives them directly, with the same results as
``json.loads``/``json.dumps`` (compact separators optional).  Where ``_json`` is missing it
falls back to the ``json`` package.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["dumps", "loads"]

try:
    import _json

    _HAVE_C = True
except ImportError:  # pragma: no cover - not CPython
    _HAVE_C = False

_WS = " \t\n\r"


def _constant(name: str) -> float:
    return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


class _Context:
    """The attributes ``_json.make_scanner`` reads from a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo: dict[str, str] = {}


def _default(obj: object) -> object:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


if _HAVE_C:
    _scan = _json.make_scanner(_Context())  # type: ignore[arg-type]  # duck-typed context

    def loads(text: str | bytes) -> Any:
        """``json.loads``; raises ``ValueError`` (with the offset) on bad input."""
        if isinstance(text, bytes):
            text = text.decode()
        n = len(text)
        i = 0
        while i < n and text[i] in _WS:
            i += 1
        try:
            obj, end = _scan(text, i)
        except StopIteration as exc:
            raise ValueError(f"invalid JSON at offset {exc.value}") from None
        finally:
            _Context.memo.clear()
        while end < n and text[end] in _WS:
            end += 1
        if end != n:
            raise ValueError(f"invalid JSON: extra data at offset {end}")
        return obj

    def dumps(obj: Any, *, sort_keys: bool = False, compact: bool = False) -> str:
        """``json.dumps`` with default separators (or ``(",", ":")`` when ``compact``)."""
        encoder = _json.make_encoder(
            {}, _default, _json.encode_basestring_ascii, None,
            ":" if compact else ": ", "," if compact else ", ", sort_keys, False, True,
        )
        return "".join(encoder(obj, 0))

else:  # pragma: no cover
    import json as _stdjson

    def loads(text: str | bytes) -> Any:
        return _stdjson.loads(text)

    def dumps(obj: Any, *, sort_keys: bool = False, compact: bool = False) -> str:
        return _stdjson.dumps(obj, sort_keys=sort_keys, separators=(",", ":") if compact else None)
