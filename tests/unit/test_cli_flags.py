"""Docker-style flag parsing: combined shorts, values, repeats, booleans, errors with docker's codes."""

from __future__ import annotations

import pytest

from sampan.cli.flags import Flag, Spec, UsageError, help_text, parse

SPEC = Spec(
    "image ls", "[OPTIONS] [REPOSITORY[:TAG]]", "List images",
    Flag("all", "a", help="Show all images"),
    Flag("quiet", "q", help="Only show image IDs"),
    Flag("filter", "f", kind="list", metavar="filter", help="Filter output"),
    Flag("format", kind="string", help="Format output"),
    Flag("human", "H", default=True, help="Human sizes"),
    Flag("count", "n", kind="int", help="A number"),
    max_args=1,
)


@pytest.mark.parametrize(
    "argv,key,value",
    [
        (["-aq"], "quiet", True),
        (["-aq"], "all", True),
        (["--format={{.ID}}"], "format", "{{.ID}}"),
        (["--format", "json"], "format", "json"),
        (["-f", "dangling=true", "--filter=label=a", "-freference=x"], "filter", ["dangling=true", "label=a", "reference=x"]),
        (["-H=false"], "human", False),
        (["--human=0"], "human", False),
        (["-n", "3"], "count", 3),
        ([], "human", True),
    ],
)
def test_parse_values(argv: list[str], key: str, value: object) -> None:
    opts, _ = parse(SPEC, argv)
    assert opts[key] == value


def test_flags_mix_with_args_and_double_dash() -> None:
    opts, args = parse(SPEC, ["busybox", "-a"])
    assert args == ["busybox"] and opts["all"] is True
    _, args = parse(SPEC, ["--", "-a"])
    assert args == ["-a"]


@pytest.mark.parametrize(
    "argv,message,code",
    [
        (["--nope"], "unknown flag: --nope", 125),
        (["-x"], "unknown shorthand flag: 'x' in -x", 125),
        (["--format"], "flag needs an argument: --format", 125),
        (["--all=maybe"], 'invalid argument "maybe" for "--all" flag', 125),
        (["-n", "many"], 'invalid argument "many" for "--count" flag', 125),
        (["a", "b"], "sampan: 'sampan image ls' requires at most 1 argument\n\nUsage:  sampan image ls [OPTIONS]", 1),
    ],
)
def test_errors(argv: list[str], message: str, code: int) -> None:
    with pytest.raises(UsageError) as info:
        parse(SPEC, argv)
    assert message in info.value.message and info.value.code == code


def test_help_is_docker_shaped() -> None:
    text = help_text(SPEC)
    assert text.startswith("Usage:  sampan image ls [OPTIONS] [REPOSITORY[:TAG]]\n\nList images\n")
    assert "  -a, --all " in text and "      --format string " in text and "-f, --filter filter" in text
    assert "(default true)" in text and "  -h, --help " in text
    opts, _ = parse(SPEC, ["--help", "too", "many", "args"])
    assert opts["help"] is True
