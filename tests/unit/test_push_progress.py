"""Push progress: Docker's per-layer statuses before any upload starts."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from sampan.distribution.push import PushSource


class _Stop(Exception):
    pass


def _stop(self: PushSource, layer: Any) -> None:
    raise _Stop


def test_layers_beyond_the_parallel_uploads_say_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    layers = [SimpleNamespace(diff_id=f"sha256:{i:064x}") for i in range(5)]
    events: list[dict[str, Any]] = []
    source = PushSource.__new__(PushSource)  # only what images() reads before the first layer
    source.image, source.emit, source.parallel = SimpleNamespace(layers=layers), events.append, 2  # type: ignore[assignment]
    monkeypatch.setattr(PushSource, "_layer", _stop)
    with pytest.raises(_Stop):
        source.images()
    short = [layer.diff_id[7:19] for layer in layers]
    assert [(e["status"], e["id"]) for e in events] == [("Preparing", s) for s in short] + [("Waiting", s) for s in short[2:]]
