"""Variable substitution as BuildKit's shell lexer does it (cases from its documented rules)."""

from __future__ import annotations

import pytest

from sampan.build.shellwords import Lexer
from sampan.errors import InvalidArgument

ENV = {"SET": "value", "EMPTY": "", "PATH": "/usr/bin:/bin", "FILE": "archive.tar.gz"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$SET", "value"),
        ("${SET}", "value"),
        ("$SET-suffix", "value-suffix"),
        ("${SET}suffix", "valuesuffix"),
        ("$UNSET", ""),
        ("${UNSET:-default}", "default"),
        ("${EMPTY:-default}", "default"),
        ("${EMPTY-default}", ""),
        ("${UNSET-default}", "default"),
        ("${SET:-default}", "value"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${UNSET:-$SET}", "value"),
        ("${UNSET:-${SET:+nested}}", "nested"),
        ("${FILE%.gz}", "archive.tar"),
        ("${FILE%%.*}", "archive"),
        ("${FILE#*.}", "tar.gz"),
        ("${FILE##*.}", "gz"),
        ("${PATH/bin/sbin}", "/usr/sbin:/bin"),
        ("${PATH//bin/sbin}", "/usr/sbin:/sbin"),
        ("'$SET'", "$SET"),
        ('"$SET"', "value"),
        ('"a \\"q\\" b"', 'a "q" b'),
        ("\\$SET", "$SET"),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("100$", "100$"),
        ("$1", ""),
        ("${SET}${SET}", "valuevalue"),
    ],
)
def test_process_word(word: str, expected: str) -> None:
    assert Lexer().process_word(word, ENV) == expected


def test_backtick_escape() -> None:
    assert Lexer("`").process_word("`$SET and \\path", ENV) == "$SET and \\path"


@pytest.mark.parametrize(
    ("word", "words"),
    [
        ("a b  c", ["a", "b", "c"]),
        ('"a b" c', ["a b", "c"]),
        ("$SET other", ["value", "other"]),
        ("${SPLIT}", ["x", "y"]),
        ('"${SPLIT}"', ["x y"]),
        ("", []),
    ],
)
def test_process_words(word: str, words: list[str]) -> None:
    assert Lexer().process_words(word, {**ENV, "SPLIT": "x y"}) == words


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${SET:-x", "syntax error: missing '}'"),
        ("${}", "syntax error: bad substitution"),
        ("${:x}", "syntax error: bad substitution"),
        ("${UNSET?must be set}", "UNSET: must be set"),
        ("${UNSET:?}", "UNSET: is not allowed to be unset"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("${SET:#x}", "unsupported modifier (:#) in substitution"),
        ("'open", "unexpected end of statement while looking for matching single-quote"),
        ('"open', "unexpected end of statement while looking for matching double-quote"),
    ],
)
def test_errors(word: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        Lexer().process_word(word, ENV)
    assert str(info.value).startswith(
        f'failed to process "{word}"' if '"' not in word else "failed"
    )
    assert str(info.value).endswith(message)


def test_matches_are_reported() -> None:
    result = Lexer().process("$SET ${UNSET:-x}", ENV)
    assert result.matched == {"SET"}
    assert result.unmatched == {"UNSET"}


def test_skip_unset_keeps_references() -> None:
    lexer = Lexer(skip_unset_env=True)
    assert lexer.process_word("$SET $NOPE ${NOPE:-d}", ENV) == "value $NOPE ${NOPE:-d}"
