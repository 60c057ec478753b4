"""The error tree maps to Docker's HTTP statuses and back, and to CLI exit codes."""

from __future__ import annotations

import pytest

from sampan import errors
from sampan.api.errors import error_for_status, status_for
from sampan.cli.exitcodes import exit_code


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.NoSuchImage("busybox"), 404),
        (errors.InvalidReference("UPPER"), 400),
        (errors.UnsafeArchiveEntry("../x", "leaves the layer"), 400),
        (errors.NameInUse("name in use"), 409),
        (errors.NotModified("already started"), 304),
        (errors.Unauthorized("no"), 401),
        (errors.PermissionDenied("no"), 403),
        (errors.NotImplementedFeature("swarm"), 501),
        (errors.Unavailable("down"), 503),
        (errors.Internal("bug"), 500),
        (ValueError("unexpected"), 500),
    ],
)
def test_status_table(exc: BaseException, status: int) -> None:
    assert status_for(exc) == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 500, 501, 503])
def test_client_reverses_the_table(status: int) -> None:
    err = error_for_status(status, "message text")
    assert status_for(err) == status
    assert str(err) == "message text"


def test_exit_codes() -> None:
    assert exit_code(errors.NoSuchImage("x"), command="run") == 125
    assert exit_code(errors.NoSuchImage("x"), command="images") == 1


def test_messages_carry_dockers_wording() -> None:
    assert str(errors.NoSuchImage("busybox:latest")) == "No such image: busybox:latest"
    assert str(errors.NoSuchContainer("web")) == "No such container: web"
    e = errors.UnsafeArchiveEntry("../etc/passwd", "path leaves the layer", where="layer sha256:ab")
    assert "../etc/passwd" in str(e) and "layer sha256:ab" in str(e)
