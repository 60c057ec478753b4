"""The engine's event bus: what happened to which object, for ``GET /events``.

Vocabulary (as Docker's ``events.Message``): an *event* has a ``type`` (``image``, later
``container``, ``network``, ``volume``), an ``action`` (``import``, ``load``, ``tag``,
``untag``, ``delete``, ``save``, ...), an *actor* (the object's ID and a few attributes such as
``name``) and a time in nanoseconds.

Engine code publishes from any thread; readers are asyncio tasks that subscribe on the event
loop, first replay the recent history (the bus keeps the last ``HISTORY`` events, as dockerd
keeps 256) and then receive new events as they are published::

    bus = EventBus()
    sub = bus.subscribe()                 # on the event loop
    bus.publish("image", "tag", "sha256:...", {"name": "busybox:latest"})   # any thread
    event = await sub.get()
    sub.close()
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

HISTORY = 256


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    action: str
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_nano: int = 0
    scope: str = "local"

    @property
    def time(self) -> int:
        return self.time_nano // 1_000_000_000


class Subscription:
    """New events for one reader, delivered on the loop it subscribed from."""

    def __init__(self, bus: EventBus, loop: asyncio.AbstractEventLoop) -> None:
        self._bus = bus
        self._loop = loop
        self._queue: asyncio.Queue[Event] = asyncio.Queue()

    def _deliver(self, event: Event) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    async def get(self) -> Event:
        return await self._queue.get()

    def close(self) -> None:
        self._bus._unsubscribe(self)


class EventBus:
    def __init__(self, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._lock = threading.Lock()
        self._history: collections.deque[Event] = collections.deque(maxlen=HISTORY)
        self._subscribers: list[Subscription] = []
        self._clock_ns = clock_ns

    def publish(
        self, type: str, action: str, actor_id: str, attributes: dict[str, str] | None = None
    ) -> Event:
        """Record an event and hand it to every subscriber; safe from any thread."""
        with self._lock:
            event = Event(type, action, actor_id, dict(attributes or {}), self._clock_ns())
            self._history.append(event)
            subscribers = list(self._subscribers)
        for sub in subscribers:
            sub._deliver(event)
        return event

    def history(self) -> list[Event]:
        with self._lock:
            return list(self._history)

    def subscribe(self) -> tuple[list[Event], Subscription]:
        """The recent history and a subscription for what follows (no event lost between)."""
        sub = Subscription(self, asyncio.get_running_loop())
        with self._lock:
            self._subscribers.append(sub)
            return list(self._history), sub

    @property
    def listeners(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)
