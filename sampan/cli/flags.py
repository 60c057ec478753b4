"""Command-line flags the way the docker CLI (cobra + pflag) takes them, without argparse.

argparse costs ~3-10 ms of imports and prints its own usage format; the docker CLI's is what
scripts and users expect: ``-aq``, ``--format=X``/``--format X``, ``-f X``/``-fX``, repeatable
``--filter``, ``--all=false``, flags mixed with arguments, ``--`` ends flags, ``-h``/``--help``.

A :class:`Spec` describes one command; :func:`parse` returns the option values by flag name (with
``-`` as ``_``) and the positional arguments, or raises :class:`UsageError`; :func:`help_text`
prints Docker's help layout.
"""

from __future__ import annotations

from sampan import errors

PROG = "sampan"


class UsageError(errors.InvalidArgument):
    """A flag or argument-count error.  ``code`` is the exit status docker uses for it."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code


class Flag:
    __slots__ = ("default", "help", "kind", "long", "metavar", "short")

    def __init__(
        self,
        long: str,
        short: str = "",
        *,
        kind: str = "bool",
        help: str = "",
        default: object = None,
        metavar: str = "",
    ) -> None:
        self.long = long
        self.short = short
        self.kind = kind  # bool | string | list | int
        self.help = help
        if default is None:
            default = {"bool": False, "string": "", "list": [], "int": 0}[kind]
        self.default = default
        self.metavar = metavar or {"bool": "", "string": "string", "list": "list", "int": "int"}[kind]

    @property
    def key(self) -> str:
        return self.long.replace("-", "_")


class Spec:
    """One command: its words (``("image", "ls")``), usage line, summary, aliases and flags."""

    def __init__(
        self,
        words: str,
        usage: str,
        summary: str,
        *flags: Flag,
        aliases: tuple[str, ...] = (),
        min_args: int = 0,
        max_args: int = -1,
        arg_error: str = "",
    ) -> None:
        self.words = words
        self.usage = usage
        self.summary = summary
        self.flags = (*flags, Flag("help", "h", help="Print usage"))
        self.aliases = aliases
        self.min_args = min_args
        self.max_args = max_args
        self.arg_error = arg_error

    def find(self, name: str) -> Flag | None:
        for flag in self.flags:
            if name in (flag.long, flag.short) and name:
                return flag
        return None


Options = dict[str, object]


def _bool_value(flag: Flag, text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise _flag_error(f'invalid argument "{text}" for "--{flag.long}" flag: strconv.ParseBool: parsing "{text}": invalid syntax')


def _flag_error(message: str) -> UsageError:
    return UsageError(message, code=125)


def _store(opts: Options, flag: Flag, value: str) -> None:
    if flag.kind == "list":
        current = opts[flag.key]
        assert isinstance(current, list)
        current.append(value)
    elif flag.kind == "int":
        try:
            opts[flag.key] = int(value)
        except ValueError:
            raise _flag_error(f'invalid argument "{value}" for "--{flag.long}" flag: invalid syntax') from None
    else:
        opts[flag.key] = value


def parse(spec: Spec, argv: list[str], *, interspersed: bool = True) -> tuple[Options, list[str]]:
    """Option values (by ``flag.key``) and positional arguments of ``argv``."""
    opts: Options = {f.key: (list(f.default) if isinstance(f.default, list) else f.default) for f in spec.flags}
    args: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            args.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            args.append(arg)
            if not interspersed:
                args.extend(argv[i:])
                break
            continue
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            flag = spec.find(name) if len(name) > 1 else None
            if flag is None:
                raise _flag_error(f"unknown flag: --{name}")
            if flag.kind == "bool":
                opts[flag.key] = _bool_value(flag, value) if eq else True
                continue
            if not eq:
                if i >= len(argv):
                    raise _flag_error(f"flag needs an argument: --{name}")
                value = argv[i]
                i += 1
            _store(opts, flag, value)
            continue
        shorts = arg[1:]
        while shorts:
            letter, shorts = shorts[0], shorts[1:]
            flag = spec.find(letter)
            if flag is None:
                raise _flag_error(f"unknown shorthand flag: '{letter}' in {arg}")
            if flag.kind == "bool":
                if shorts.startswith("="):
                    opts[flag.key] = _bool_value(flag, shorts[1:])
                    break
                opts[flag.key] = True
                continue
            value = shorts[1:] if shorts.startswith("=") else shorts
            if not value:
                if i >= len(argv):
                    raise _flag_error(f"flag needs an argument: '{letter}' in -{letter}")
                value = argv[i]
                i += 1
            _store(opts, flag, value)
            break
    if opts["help"]:
        return opts, args
    _check_count(spec, args)
    return opts, args


def _check_count(spec: Spec, args: list[str]) -> None:
    n = len(args)
    lo, hi = spec.min_args, spec.max_args
    if lo <= n and (hi < 0 or n <= hi):
        return
    full = f"{PROG} {spec.words}"

    def plural(k: int) -> str:
        return f"{k} argument{'s' if k != 1 else ''}"

    verb = "Run"
    if spec.arg_error:
        what = spec.arg_error
    elif hi == 0:
        what = "accepts no arguments"
    elif lo == hi:
        what = f"requires {plural(lo)}"
    elif n < lo:
        what, verb = f"requires at least {plural(lo)}", "See"
    else:
        what = f"requires at most {plural(hi)}"
    raise UsageError(f"{PROG}: '{full}' {what}{usage_hint(spec, verb)}", code=1)


def usage_hint(spec: Spec, verb: str = "Run") -> str:
    """docker's tail of a usage error: the usage line and where to get help."""
    full = f"{PROG} {spec.words}"
    return f"\n\nUsage:  {full} {spec.usage}\n\n{verb} '{full} --help' for more information"


def help_text(spec: Spec) -> str:
    lines = [f"Usage:  {PROG} {spec.words} {spec.usage}".rstrip(), "", spec.summary]
    if spec.aliases:
        lines += ["", "Aliases:", "  " + ", ".join(f"{PROG} {a}" for a in spec.aliases)]
    rows = []
    for flag in spec.flags:
        left = (f"-{flag.short}, " if flag.short else "    ") + f"--{flag.long}"
        if flag.metavar:
            left += f" {flag.metavar}"
        text = flag.help
        if flag.kind == "bool" and flag.default is True:
            text += " (default true)"
        elif flag.kind == "string" and flag.default:
            text += f' (default "{flag.default}")'
        rows.append((left, text))
    width = max(len(left) for left, _ in rows)
    lines += ["", "Options:"]
    for left, text in rows:
        first, *rest = text.split("\n")
        lines.append(f"  {left.ljust(width)}   {first}".rstrip())
        lines += [" " * (width + 5) + more for more in rest]
    return "\n".join(lines) + "\n"
