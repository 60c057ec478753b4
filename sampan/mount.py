"""Mounts as data: storage emits them, the runtime consumes them.

A :class:`Mount` describes one mount(2) call in the shape of an OCI runtime-spec mount entry,
so that a snapshot's mounts can be placed into ``config.json`` unchanged or performed directly
(``sampan._sys.mount.perform``).  Components never call each other to mount: they pass these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Mount:
    """One mount: ``mount -t TYPE -o OPTIONS SOURCE TARGET``.

    ``target`` is empty for a root filesystem mount (the consumer chooses where it goes).
    For overlay, ``options`` holds ``lowerdir=...``, ``upperdir=...``, ``workdir=...``; a
    consumer that must mount many lowerdirs splits ``lowerdir`` on ``:`` and uses the new
    mount API's ``lowerdir+`` (see ``_sys.mount``).
    """

    type: str
    source: str
    target: str = ""
    options: tuple[str, ...] = field(default_factory=tuple)

    def to_spec(self) -> dict[str, Any]:
        """The runtime-spec ``mounts[]`` entry for this mount."""
        entry: dict[str, Any] = {"destination": self.target, "type": self.type, "source": self.source}
        if self.options:
            entry["options"] = list(self.options)
        return entry

    @property
    def readonly(self) -> bool:
        return "ro" in self.options
