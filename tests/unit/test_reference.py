"""image/reference.py: Docker's grammar and normalization (cases from distribution/reference)."""

from __future__ import annotations

import pytest

from sampan.errors import InvalidReference
from sampan.image.reference import parse

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
        ("quay.io/x/y", "quay.io/x/y:latest", "quay.io/x/y:latest"),
        ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest"),
        ("[::1]:5000/x:t", "[::1]:5000/x:t", "[::1]:5000/x:t"),
        (f"busybox@{D}", f"docker.io/library/busybox@{D}", f"busybox@{D}"),
        (f"busybox:1@{D}", f"docker.io/library/busybox:1@{D}", f"busybox:1@{D}"),
        ("a.b-c__d/e--f", "a.b-c__d/e--f:latest", "a.b-c__d/e--f:latest"),
        ("My.Registry/x", "My.Registry/x:latest", "My.Registry/x:latest"),
        ("docker.io/a/b/c", "docker.io/a/b/c:latest", "a/b/c:latest"),
    ],
)
def test_normalization(text: str, full: str, familiar: str) -> None:
    ref = parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


def test_fields_and_no_default_tag() -> None:
    ref = parse("localhost:5000/a/b", default_tag=False)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "a/b", None, None)
    assert ref.name == "localhost:5000/a/b"
    assert parse("busybox").name == "docker.io/library/busybox"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Busybox", "must be lowercase"),
        ("user/App", "must be lowercase"),
        ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
        ("", "at least one component"),
        ("busybox:", "invalid reference format"),
        ("busybox:-x", "invalid reference format"),
        ("bus box", "invalid reference format"),
        ("busybox@sha256:abc", "invalid reference format"),
        ("busybox@", "invalid reference format"),
        ("a//b", "invalid reference format"),
        ("-a/b", "invalid reference format"),
        ("a/b_", "invalid reference format"),
        ("busybox:" + "t" * 129, "invalid reference format"),
        ("x/" + "a" * 260, "not be more than 255"),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message):
        parse(text)
