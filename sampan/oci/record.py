"""``record``: dataclass-like classes without importing :mod:`dataclasses` at run time.

``import dataclasses`` pulls in ``inspect`` (and ``re``, ``ast``, ``dis``...), about 5 ms of a
container start whose whole budget is under 20 ms.  mypy sees the real ``dataclass`` (the
``TYPE_CHECKING`` branch); at run time a small decorator gives the same constructor
(positional or keyword, defaults, ``field(default_factory=...)``), ``__eq__`` and ``__repr__``.
Options such as ``frozen``/``slots`` are accepted and ignored at run time.
"""

from __future__ import annotations

__all__ = ["as_dict", "field", "record"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass as record
    from dataclasses import field as field
else:

    class _Factory:
        __slots__ = ("make",)

        def __init__(self, make):
            self.make = make

    _MISSING = object()

    def field(*, default_factory=None, default=_MISSING):
        return _Factory(default_factory) if default_factory is not None else default

    def record(cls=None, **_options):
        def wrap(cls):
            names = []
            for klass in reversed(cls.__mro__):
                for name in vars(klass).get("__annotations__", {}):
                    if name not in names:
                        names.append(name)
            defaults = {n: getattr(cls, n) for n in names if hasattr(cls, n)}
            for name, value in defaults.items():
                if isinstance(value, _Factory):
                    delattr(cls, name)

            def __init__(self, *args, **kwargs):
                if len(args) > len(names):
                    raise TypeError(f"{cls.__name__}() takes {len(names)} arguments")
                values = dict(zip(names, args, strict=False))
                for key, value in kwargs.items():
                    if (key not in defaults and key not in names) or key in values:
                        raise TypeError(f"{cls.__name__}() got an unexpected or repeated argument {key!r}")
                    values[key] = value
                for name in names:
                    if name not in values:
                        if name not in defaults:
                            raise TypeError(f"{cls.__name__}() missing argument {name!r}")
                        default = defaults[name]
                        values[name] = default.make() if isinstance(default, _Factory) else default
                    object.__setattr__(self, name, values[name])

            def __eq__(self, other):
                if other.__class__ is not self.__class__:
                    return NotImplemented
                return all(getattr(self, n) == getattr(other, n) for n in names)

            def __repr__(self):
                inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
                return f"{cls.__name__}({inner})"

            cls.__init__ = __init__
            cls.__eq__ = __eq__
            cls.__hash__ = None
            cls.__repr__ = __repr__
            cls.__dataclass_names__ = tuple(names)
            return cls

        return wrap if cls is None else wrap(cls)


def as_dict(obj: object) -> dict[str, object]:
    """The fields of a record as a dict (shallow; nested values are not converted)."""
    names = getattr(type(obj), "__dataclass_names__", None)
    if names is None:  # a real dataclass (type checking, or tests importing dataclasses)
        names = tuple(type(obj).__dataclass_fields__)  # type: ignore[attr-defined]
    return {n: getattr(obj, n) for n in names}
