"""The Go-template subset of --format, against what Go's text/template and docker's funcs print."""

from __future__ import annotations

from typing import Any

import pytest

from sampan.cli.template import Template, TemplateError, go_float

DATA: dict[str, Any] = {
    "Id": "sha256:abc",
    "RepoTags": ["busybox:latest", "busybox:1"],
    "Config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": {"b": "2", "a": "1"}, "User": "", "Entrypoint": None},
    "Size": 4261205,
    "Ratio": 0.5,
    "Big": 1e6,
    "Flag": True,
    "Empty": [],
}

CASES = [
    ("{{.Id}}", "sha256:abc"),
    ("{{.Config.Cmd}}", "[sh]"),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{.Config.Entrypoint}}", "<nil>"),
    ("{{.Missing}}", "<no value>"),
    ("{{.Config.Entrypoint.X}}", "<no value>"),
    ("{{.Size}} {{.Ratio}} {{.Big}} {{.Flag}}", "4261205 0.5 1e+06 true"),
    ("{{json .Config.Cmd}}", '["sh"]'),
    ('{{json .Config.Labels}}', '{"b":"2","a":"1"}'),
    ('{{index .Config.Labels "a"}}', "1"),
    ("{{index .RepoTags 1}}", "busybox:1"),
    ('{{join .RepoTags ","}}', "busybox:latest,busybox:1"),
    ("{{upper .Id}}|{{lower \"ABC\"}}|{{title \"hello there\"}}", "SHA256:ABC|abc|Hello There"),
    ("{{.Id | upper}}", "SHA256:ABC"),
    ("{{println .Id}}", "sha256:abc\n"),
    ("{{range .RepoTags}}<{{.}}>{{end}}", "<busybox:latest><busybox:1>"),
    ("{{range $i, $t := .RepoTags}}{{$i}}={{$t}} {{end}}", "0=busybox:latest 1=busybox:1 "),
    ("{{range $k, $v := .Config.Labels}}{{$k}}{{$v}}{{end}}", "a1b2"),
    ("{{range .Empty}}x{{else}}none{{end}}", "none"),
    ("{{if .Config.User}}user{{else}}root{{end}}", "root"),
    ("{{if .Config.User}}a{{else if .Flag}}b{{else}}c{{end}}", "b"),
    ("{{with .Config}}{{.Cmd}}{{end}}", "[sh]"),
    ("{{with .Config.User}}x{{else}}no user{{end}}", "no user"),
    ('{{if eq .Id "sha256:abc"}}same{{end}}', "same"),
    ("{{len .RepoTags}}", "2"),
    ('{{printf "%s:%d" .Id .Size}}', "sha256:abc:4261205"),
    ('{{split "a:b" ":"}}', "[a b]"),
    ('{{.Id | printf "%.6s"}}|{{printf "%-5s|%3d|%x|%q" "ab" 7 255 "x"}}', 'sha256|ab   |  7|ff|"x"'),
    ('{{printf "%d %s" .Id}}', "%!d(string=sha256:abc) %!s(MISSING)"),
    ("{{truncate .Id 6}}", "sha256"),
    ("{{range .RepoTags}}{{$.Id}};{{end}}", "sha256:abc;sha256:abc;"),
    ("a  {{- .Flag -}}  b", "atrueb"),
    ("{{/* a comment */}}x", "x"),
    ("{{$x := .Id}}{{$x}}", "sha256:abc"),
    ("{{(index .RepoTags 0) | upper}}", "BUSYBOX:LATEST"),
    ("{{if and .Flag .RepoTags}}y{{end}}{{if or .Empty .Config.User}}n{{end}}{{if not .Empty}}z{{end}}", "yz"),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_render(text: str, expected: str) -> None:
    assert Template(text).render(DATA) == expected


@pytest.mark.parametrize(
    "text,message",
    [
        ("{{.Id", "unclosed action"),
        ("{{if .Flag}}x", "missing {{end}}"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{nosuch .Id}}", 'function "nosuch" not defined'),
        ("{{.Id.Foo}}", "can't evaluate field Foo in type string"),
        ("{{.Id .Size}}", "can't give argument to non-function .Id"),
        ("{{index .RepoTags 5}}", "index out of range"),
        ('{{"unterminated}}', "unterminated quoted string"),
    ],
)
def test_errors_are_one_line_template_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        Template(text).render(DATA)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "value,text",
    [(0.0, "0"), (1.0, "1"), (123456.0, "123456"), (1234567.0, "1.234567e+06"), (0.0001, "0.0001"),
     (0.00001, "1e-05"), (-2.5, "-2.5"), (3.14, "3.14")],
)
def test_floats_print_as_go(value: float, text: str) -> None:
    assert go_float(value) == text
