"""Push progress of an image that lists one layer twice (two build steps with the same diff).

dockerd's upload manager says "Preparing" for every layer but uploads a digest once, so the
final status ("Pushed", "Layer already exists", "Mounted from ...") appears once per layer ID;
sampan printed "Pushed" twice for the walkthrough's test-docker-image.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from sampan.distribution.copy import Descriptor
from sampan.distribution.push import RegistryDestination

DIFF = "sha256:" + "d" * 64
BLOB = "sha256:" + "b" * 64
OTHER_DIFF, OTHER_BLOB = "sha256:" + "e" * 64, "sha256:" + "c" * 64


def destination(events: list[dict[str, Any]], *, existing: set[str]) -> RegistryDestination:
    dest = RegistryDestination.__new__(RegistryDestination)  # only what has_blob and _send read
    dest.emit = events.append
    dest._lock = threading.Lock()
    dest._reported = set()
    dest.streamed = {BLOB}
    dest.source = SimpleNamespace(diff_of={BLOB: DIFF, OTHER_BLOB: OTHER_DIFF})  # type: ignore[assignment]
    dest.repo = SimpleNamespace(blob_exists=lambda digest: digest in existing)  # type: ignore[assignment]
    return dest


def test_a_layer_listed_twice_is_pushed_once() -> None:
    events: list[dict[str, Any]] = []
    dest = destination(events, existing={OTHER_BLOB})
    layer = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", BLOB, 10)
    other = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", OTHER_BLOB, 10)
    assert dest.has_blob(layer) and dest.has_blob(layer)
    assert dest.has_blob(other) and dest.has_blob(other)
    dest._send("Pushing", DIFF[7:19], {"current": 5})  # progress is never deduplicated
    assert [(e["status"], e["id"]) for e in events] == [
        ("Pushed", DIFF[7:19]), ("Layer already exists", OTHER_DIFF[7:19]), ("Pushing", DIFF[7:19])]
