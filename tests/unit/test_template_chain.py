"""Go templates: a field of a parenthesized pipeline's result, ``(index .Networks "n").IPAddress``.

Docker's documentation and the tutorial's readers use it to get a container's address on one
network (``docker inspect -f '{{(index .NetworkSettings.Networks "net").IPAddress}}'``).
"""

from __future__ import annotations

import pytest

from sampan.cli.template import Template, TemplateError

DATA = {"NetworkSettings": {"Networks": {"walkthrough-net": {"IPAddress": "10.1.2.3", "Aliases": ["a", "b"]}}},
        "List": [{"B": 1}], "Name": "/c"}


@pytest.mark.parametrize(("text", "want"), [
    ('{{(index .NetworkSettings.Networks "walkthrough-net").IPAddress}}', "10.1.2.3"),
    ('ip={{ (index .NetworkSettings.Networks "walkthrough-net").IPAddress }}!', "ip=10.1.2.3!"),
    ('{{len (index .NetworkSettings.Networks "walkthrough-net").Aliases}}', "2"),
    ("{{(index .List 0).B}} {{(.NetworkSettings).Networks | len}}", "1 1"),
    ('{{(index .NetworkSettings.Networks "other").IPAddress}}', "<no value>"),
    ("{{(.Name)}} {{ (.Name) | printf \"%s!\" }}", "/c /c!"),
])
def test_field_of_a_parenthesized_pipeline(text: str, want: str) -> None:
    assert Template(text).render(DATA) == want


def test_a_field_after_a_space_is_an_argument_as_in_go() -> None:
    with pytest.raises(TemplateError, match="can't give argument to non-function"):
        Template("{{(.Name) .Name}}").render(DATA)
