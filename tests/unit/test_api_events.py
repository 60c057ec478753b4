"""The event bus (engine/events.py) and Docker's event JSON and filters (api/types.py)."""

from __future__ import annotations

import asyncio
import threading

from sampan.api import types
from sampan.engine.events import HISTORY, EventBus


def test_publish_from_a_thread_reaches_an_async_subscriber() -> None:
    async def main() -> list[str]:
        bus = EventBus()
        bus.publish("image", "tag", "sha256:old", {"name": "a:1"})
        history, sub = bus.subscribe()
        assert [e.action for e in history] == ["tag"]
        t = threading.Thread(target=lambda: bus.publish("image", "delete", "sha256:x", {}))
        t.start()
        event = await asyncio.wait_for(sub.get(), 5)
        t.join()
        assert bus.listeners == 1
        sub.close()
        assert bus.listeners == 0
        return [event.action, event.actor_id]

    assert asyncio.run(main()) == ["delete", "sha256:x"]


def test_history_is_bounded() -> None:
    bus = EventBus()
    for i in range(HISTORY + 10):
        bus.publish("image", "tag", f"id{i}")
    history = bus.history()
    assert len(history) == HISTORY
    assert history[0].actor_id == "id10"


def test_event_json_shape_and_legacy_fields() -> None:
    bus = EventBus(clock_ns=lambda: 1_700_000_000_123_456_789)
    e = bus.publish("image", "tag", "sha256:abc", {"name": "busybox:latest"})
    out = types.event_json(e, "1.51")
    assert out == {
        "Type": "image",
        "Action": "tag",
        "Actor": {"ID": "sha256:abc", "Attributes": {"name": "busybox:latest"}},
        "scope": "local",
        "time": 1_700_000_000,
        "timeNano": 1_700_000_000_123_456_789,
        "status": "tag",
        "id": "sha256:abc",
    }


def test_event_filters() -> None:
    bus = EventBus()
    e = bus.publish("image", "tag", "sha256:abc", {"name": "busybox:latest", "maintainer": "me"})
    assert types.event_matches(e, {})
    assert types.event_matches(e, {"type": ["image"]})
    assert not types.event_matches(e, {"type": ["container"]})
    assert types.event_matches(e, {"event": ["tag", "untag"]})
    assert not types.event_matches(e, {"event": ["delete"]})
    assert types.event_matches(e, {"image": ["busybox"]})
    assert types.event_matches(e, {"image": ["busybox:latest"]})
    assert not types.event_matches(e, {"image": ["alpine"]})
    assert types.event_matches(e, {"image": ["abc"]})  # a short ID, without sha256:
    assert not types.event_matches(e, {"container": ["web"]})
    assert types.event_matches(e, {"label": ["maintainer=me"]})
    assert not types.event_matches(e, {"label": ["maintainer=you"]})
