"""The low-level Dockerfile parser: directives, continuations, heredocs, forms, line numbers.

Behaviour follows current BuildKit (frontend/dockerfile/parser); the cases where it differs
from the older BuildKit inside the `dockerfile` oracle package are tested here.
"""

from __future__ import annotations

import pytest

from sampan.build.parser import Heredoc, Node, parse, parse_heredoc
from sampan.errors import DockerfileParseError


def nodes(text: str) -> list[Node]:
    return parse(text).nodes


def test_directives_recorded_case_insensitive() -> None:
    r = parse("# Syntax = docker/dockerfile:1.7\n#ESCAPE=`\n# check=skip=all\nFROM a\n")
    assert r.directives == {"syntax": "docker/dockerfile:1.7", "escape": "`", "check": "skip=all"}
    assert r.escape == "`"


@pytest.mark.parametrize(
    "text",
    [
        "# comment\n# escape=`\nFROM a\n",
        "\n# escape=`\nFROM a\n",
        "FROM a\n# escape=`\n",
        "# unknown=x\n# escape=`\nFROM a\n",
        "#escape\n# escape=`\nFROM a\n",
    ],
)
def test_directives_stop_at_first_other_line(text: str) -> None:
    r = parse(text)
    assert r.escape == "\\"
    assert "escape" not in r.directives


def test_directive_errors_name_the_line() -> None:
    with pytest.raises(DockerfileParseError) as info:
        parse("# escape=`\n# escape=\\\nFROM a\n")
    assert str(info.value) == (
        "dockerfile parse error on line 2: only one escape parser directive can be used"
    )
    with pytest.raises(DockerfileParseError, match="invalid escape token 'x' does not match"):
        parse("# escape=x\nFROM a\n")


def test_continuation_joins_and_counts_lines() -> None:
    (n,) = nodes("RUN echo a \\\n  # skipped comment\n\n    b \\  \n c\n")
    assert n.args == ["echo a     b  c"]
    assert (n.start_line, n.end_line) == (1, 5)
    assert parse("RUN a \\\n\n b\n").warnings == ["Empty continuation line found in: RUN a  b"]


def test_escaped_escape_is_not_a_continuation() -> None:
    first, second = nodes("RUN echo \\\\\nRUN next\n")
    assert first.args == ["echo \\\\"]
    assert second.args == ["next"]


def test_backtick_escape_continues_and_keeps_backslashes() -> None:
    _, run = nodes("# escape=`\nFROM a\nRUN dir c:\\ `\n  /s\n")
    assert run.args == ["dir c:\\   /s"]


def test_continuation_at_end_of_file() -> None:
    (n,) = nodes("RUN echo last \\")
    assert n.args == ["echo last"]


def test_bom_crlf_and_leading_whitespace() -> None:
    a, b = nodes("\ufeff  FROM a\r\n\tRUN x \\\r\n  y\r\n")
    assert (a.cmd, a.args) == ("FROM", ["a"])
    assert b.args == ["x   y"]


def test_json_and_shell_forms() -> None:
    run_json, run_bad, run_trailing, cmd_empty = nodes(
        'RUN ["a", "b c"]\nRUN ["a" b\nRUN ["a"] x\nCMD []\n'
    )
    assert (run_json.json, run_json.args) == (True, ["a", "b c"])
    assert (run_bad.json, run_bad.args) == (False, ['["a" b'])
    # current BuildKit decodes the whole rest as JSON: trailing text makes it shell form
    assert (run_trailing.json, run_trailing.args) == (False, ['["a"] x'])
    assert (cmd_empty.json, cmd_empty.args) == (True, [])


def test_json_array_of_non_strings_is_an_error() -> None:
    with pytest.raises(DockerfileParseError) as info:
        parse('FROM a\n\nCMD ["a", 1]\n')
    assert str(info.value) == (
        "dockerfile parse error on line 3: when using JSON array syntax, arrays must be "
        "comprised of strings only"
    )


def test_argument_shapes() -> None:
    env, legacy, label, arg, hc, vol, onb = nodes(
        'ENV a=1 b="2 3"\nENV k v w\nLABEL "x y"=z\nARG A B=1\n'
        "HEALTHCHECK --retries=2 CMD true\nVOLUME /a  /b\nONBUILD RUN --network=none x\n"
    )
    assert env.args == ["a", "1", "=", "b", '"2 3"', "="]
    assert legacy.args == ["k", "v w", ""]
    assert label.args == ['"x y"', "z", "="]
    assert arg.args == ["A", "B=1"]
    assert (hc.flags, hc.args) == (["--retries=2"], ["CMD", "true"])
    assert vol.args == ["/a", "/b"]
    assert onb.sub is not None and onb.sub.flags == ["--network=none"]
    assert onb.sub.args == ["x"]


def test_flags_quotes_and_double_dash() -> None:
    copy, run = nodes("COPY --from=\"a b\" --chown='1:1' -- --src /d\nRUN --a=1 ls --b\n")
    assert copy.flags == ["--from=a b", "--chown=1:1"]
    assert copy.args == ["--src", "/d"]
    assert (run.flags, run.args) == (["--a=1"], ["ls --b"])


def test_heredocs() -> None:
    (run,) = nodes("RUN <<A cat 3<<-'B'\nline $x\nA\n\tquoted\n\tB\n")
    assert run.heredocs == [
        Heredoc("A", "line $x\n", 0, True, False),
        Heredoc("B", "\tquoted\n", 3, False, True),
    ]
    assert (run.start_line, run.end_line) == (1, 5)


def test_heredoc_with_space_after_operator() -> None:
    (run,) = nodes("RUN cat << EOF\nbody\nEOF\n")
    assert run.heredocs == [Heredoc("EOF", "body\n")]


def test_heredoc_terminator_must_match_whole_line() -> None:
    (run,) = nodes("RUN <<EOF\n  EOF\nEOFX\nEOF\n")
    assert run.heredocs[0].content == "  EOF\nEOFX\n"


@pytest.mark.parametrize("text", ['RUN ["cat", "<<EOF"]\n', "CMD cat <<EOF\n", "ENV a=<<EOF\n"])
def test_no_heredoc_outside_shell_form_run_copy_add(text: str) -> None:
    (n,) = nodes(text)
    assert n.heredocs == []


def test_onbuild_heredoc_is_attached() -> None:
    (n,) = nodes("ONBUILD RUN <<EOF\nx\nEOF\n")
    assert n.heredocs == [Heredoc("EOF", "x\n")]


def test_unterminated_heredoc() -> None:
    with pytest.raises(DockerfileParseError) as info:
        parse("FROM a\nRUN <<EOF\nno end\n")
    assert str(info.value) == "dockerfile parse error on line 2: unterminated heredoc"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("<<EOF", Heredoc("EOF")),
        ("<<-EOF", Heredoc("EOF", chomp=True)),
        ('<<"EOF"', Heredoc("EOF", expand=False)),
        ("<<'E'OF", Heredoc("EOF", expand=False)),
        ("2<<X", Heredoc("X", file_descriptor=2)),
        ("<<", None),
        ("<<a b", None),
        ("x<<EOF", None),
    ],
)
def test_parse_heredoc(word: str, expected: Heredoc | None) -> None:
    assert parse_heredoc(word) == expected


@pytest.mark.parametrize("text", ["", "\n\n", "# only\n# comments\n"])
def test_no_instructions(text: str) -> None:
    with pytest.raises(DockerfileParseError, match="file with no instructions"):
        parse(text)


def test_line_too_long() -> None:
    with pytest.raises(DockerfileParseError, match="greater than max allowed size of 65535"):
        parse("FROM a\nRUN " + "x" * 70000 + "\n")


def test_comments_before_instruction_are_kept() -> None:
    (n,) = nodes("# syntax=x\n# about A\n# more\nARG A\n")
    assert n.comments == ["about A", "more"]
