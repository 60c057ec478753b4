"""Docker's units (go-units and Go's time package), once for the whole code base.

* :func:`human_size` is go-units ``HumanSizeWithPrecision`` (decimal: "2.14MB");
* :func:`human_duration` is go-units ``HumanDuration`` ("About an hour", "2 days");
* :func:`ram_in_bytes` is go-units ``RAMInBytes`` ("100m", "1.5g", "2GiB": binary units);
* :func:`parse_duration` is Go's ``time.ParseDuration`` ("1m30s", "500ms") in nanoseconds.

Parsers raise ``ValueError`` with Go's wording; callers name the flag or field around it.
Pure functions with no imports beyond the standard library's cheapest: the CLI's hot path uses
them.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (the CLI imports this module)
if TYPE_CHECKING:
    from collections.abc import Callable

_SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DURATION = {"ns": 1, "us": 1000, "µs": 1000, "μs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def human_size(size: float, precision: int = 4) -> str:
    value = float(size)
    i = 0
    while value >= 1000.0 and i < len(_SIZE_UNITS) - 1:
        value /= 1000.0
        i += 1
    return f"{value:.{precision}g}{_SIZE_UNITS[i]}"


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def ram_in_bytes(text: str) -> int:
    """``512``, ``100m``, ``1.5g``, ``2GiB``, ``64kb``, ``10 MB`` as bytes (binary units)."""
    value = text.strip().lower()
    for suffix in ("ib", "b"):
        if value.endswith(suffix) and len(value) > len(suffix) and value[-len(suffix) - 1].isalpha():
            value = value[: -len(suffix)]
            break
    unit = value[-1] if value and value[-1].isalpha() else ""
    number = (value[:-1] if unit else value).strip()
    try:
        amount = float(number)
    except ValueError:
        raise ValueError(f"invalid size: '{text}'") from None
    if unit not in _BINARY or amount < 0 or number.startswith(("+", "-")) or number.lower() in ("inf", "nan"):
        raise ValueError(f"invalid size: '{text}'")
    return int(amount * _BINARY[unit])


def _quoted(text: str) -> str:
    return f'"{text}"'


def parse_duration(text: str, quote: Callable[[str], str] = _quoted) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds: a signed sequence of decimal numbers, each
    with a unit (ns, us, µs, ms, s, m, h); "0" alone needs none.  ``quote`` renders the text
    in the ValueError messages (the builder passes Go's ``strconv.Quote``)."""
    s = text
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {quote(text)}")
    total = 0.0
    pos = 0
    while pos < len(s):
        start = pos
        while pos < len(s) and (s[pos].isdigit() or s[pos] == "."):
            pos += 1
        number = s[start:pos]
        if number in ("", ".") or number.count(".") > 1:
            raise ValueError(f"time: invalid duration {quote(text)}")
        ustart = pos
        while pos < len(s) and not (s[pos].isdigit() or s[pos] == "."):
            pos += 1
        unit = s[ustart:pos]
        if not unit:
            raise ValueError(f"time: missing unit in duration {quote(text)}")
        if unit not in _DURATION:
            raise ValueError(f"time: unknown unit {quote(unit)} in duration {quote(text)}")
        total += float(number) * _DURATION[unit]
    return sign * round(total)
