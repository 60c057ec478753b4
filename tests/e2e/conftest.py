"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.container_daemon import Api


@pytest.fixture
def client(api: Api, leak_check: None) -> Iterator[Any]:
    """A docker-py ``APIClient`` on the test module's ``api`` daemon (the docker-py ports).

    Afterwards every container and volume, and every image but busybox:latest, is removed
    before the leak checker looks (this fixture depends on it, so it is torn down first)."""
    docker = pytest.importorskip("docker")
    c = docker.APIClient(base_url=api.d.url, version="auto", timeout=60)
    try:
        yield c
    finally:
        api.remove_all()
        for image in c.images():
            if "busybox:latest" not in (image.get("RepoTags") or []):
                c.remove_image(image["Id"], force=True)
        c.close()
