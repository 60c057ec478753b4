"""Differential test: random Dockerfile-like text parsed by sampan and by BuildKit's parser.

A seeded generator mixes instructions (any case), flags with quotes, words with quotes,
escapes, variables, JSON arrays, comments, directives, continuations with comments and blank
lines, heredocs and CRLF.  It avoids the three places where current BuildKit (sampan's
model) and the oracle's BuildKit 0.12 differ, listed in ``test_dockerfile_oracle.py``: a
JSON array followed by more text, ``<< WORD`` with a space, and a backtick escape in flags.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from sampan.build.parser import parse
from sampan.errors import DockerfileParseError
from tests.unit.test_dockerfile_oracle import as_oracle, run_oracle

CMDS = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
    "RUNN",
]
WORDS = [
    "a",
    "b=c",
    "x y",
    "'q z'",
    '"d e"',
    "$V",
    "${V:-w}",
    "\\ ",
    "\\\\",
    "=",
    "k=v",
    '"a=b"',
    "'",
    '"',
    '\\"',
    "-",
    "--",
    "#",
    "# c",
    "<",
    "<<EOF",
    "<<-EOF",
    '<<"EOF"',
    "2<<EOF",
    "\t",
    "é",
    "[",
    "]",
    ",",
    "{}",
    "\\$x",
    "`",
    "a`b",
    "CMD",
    "NONE",
    "true",
    "/p",
]
JSON = ['["a"]', '["a", "b c"]', "[1]", "[]", '[ "x" ,"y" ]', '["a\\"b"]', '["é\\u00e9"]']
FLAGS = [
    "--from=x",
    "--chown=1:1",
    "--mount=type=cache,target=/x",
    "--network=none",
    "--a",
    '--b="q r"',
    "--c='s t'",
    "--",
    "--=x",
    "-x",
    "--link",
    "--d=\\x",
]
DIRECTIVES = [
    "# escape=`",
    "# escape=\\",
    "#syntax=x",
    "# Escape = `",
    "# foo=bar",
    "#escape=x",
    "# check=skip=all",
    "# syntax=a\n# syntax=b",
]


def _instruction(rng: random.Random, escape: str) -> tuple[str, bool]:
    cmd = rng.choice(CMDS)
    cmd = rng.choice([cmd, cmd, cmd.lower(), cmd.capitalize()])
    parts = [cmd]
    if cmd.upper() == "ONBUILD":
        parts.append(rng.choice(CMDS))
    if rng.random() < 0.3:
        flags = rng.sample(FLAGS, rng.randint(1, 2))
        if escape == "`":
            flags = [f.replace("\\", "/") for f in flags]
        parts += flags
    is_json = rng.random() < 0.15
    if is_json:
        parts.append(rng.choice(JSON))
    else:
        parts += [rng.choice(WORDS) for _ in range(rng.randint(0, 5))]
    text = rng.choice([" ", " ", "  ", "\t"]).join(parts)
    if escape == "`":  # BuildKit 0.12 ignored the escape directive inside flags
        head, _, tail = text.partition(" ")
        text = head + " " + tail.replace("`", "") if "--" in tail else text
    return text, is_json


def generate(rng: random.Random) -> str:
    escape = "\\"
    out: list[str] = []
    if rng.random() < 0.3:
        directive = rng.choice(DIRECTIVES)
        out.append(directive)
        escape = "`" if directive.endswith("`") else "\\"
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.1:
            out.append("")
            continue
        if r < 0.2:
            out.append(rng.choice(["# comment", "  # indented", "#"]))
            continue
        line, is_json = _instruction(rng, escape)
        if not is_json and rng.random() < 0.3:
            ends = [" " + escape, escape, " " + escape + "  "]
            if escape == "\\" or "--" not in line:
                ends.append(escape * 2)
            out.append(line + rng.choice(ends))
            for _ in range(rng.randint(0, 2)):
                out.append(rng.choice(["", "  # cmt", "   more", "x " + escape, "\t" + escape]))
            out.append(rng.choice(["end", "  tail", ""]))
            continue
        out.append(line)
        if "<<" in line:
            for _ in range(rng.randint(0, 2)):
                out.append(rng.choice(["body", "\tbody", "  EOF", "$V"]))
            out.append(rng.choice(["EOF", "\tEOF"]))
    newline = rng.choice(["\n", "\n", "\r\n"])
    return newline.join(out) + (newline if rng.random() < 0.8 else "")


N = 300


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Any]]:
    rng = random.Random(20261127)
    texts = [generate(rng) for _ in range(N)]
    root = tmp_path_factory.mktemp("differential")
    paths = []
    for i, text in enumerate(texts):
        path = root / f"{i}.Dockerfile"
        path.write_bytes(text.encode())
        paths.append(str(path))
    result = run_oracle(paths)
    return [(texts[i], result[p]) for i, p in enumerate(paths)]


@pytest.mark.parametrize("index", range(0, N, 50), ids=lambda i: f"batch{i // 50}")
def test_random_dockerfiles_parse_like_buildkit(index: int, cases: list[tuple[str, Any]]) -> None:
    for text, expected in cases[index : index + 50]:
        try:
            got: Any = [as_oracle(n) for n in parse(text).nodes]
        except DockerfileParseError as exc:
            got = {"error": exc.reason}
        assert got == expected, f"input: {text!r}"
