"""Which containers ``ps`` lists and ``container prune`` removes: Docker's filters.

Filters (``ps``): id (prefix), name (regular expression, searched in "/name"), label (key or
key=value), status (created, restarting, running, removing, paused, exited, dead), ancestor
(image name or ID, or an image built from it), exited (exit code), volume (name or mount
destination), before/since (a container name or ID), health, network, publish, expose,
is-task (accepted).  ``prune``: until, label, label!.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sampan import errors
from sampan.engine import lifecycle
from sampan.engine.images import parse_until, unix_time
from sampan.engine.model import Container

LIST_FILTERS = frozenset({
    "id", "name", "label", "status", "ancestor", "exited", "volume", "before", "since",
    "health", "network", "publish", "expose", "is-task", "isolation",
})
PRUNE_FILTERS = frozenset({"until", "label", "label!"})


@dataclass
class ListOptions:
    all: bool = False
    limit: int = -1
    size: bool = False
    filters: dict[str, list[str]] = field(default_factory=dict)


def _label_ok(labels: dict[str, str], wanted: list[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _find(every: list[Container], name: str) -> Container:
    for c in every:
        if c.id == name or c.name == name.lstrip("/") or (len(name) >= 3 and c.id.startswith(name)):
            return c
    raise errors.NoSuchContainer(name)


def matches(c: Container, opts: ListOptions, every: list[Container], store: Any) -> bool:
    f = opts.filters
    for key in f:
        if key not in LIST_FILTERS:
            raise errors.InvalidArgument(f"invalid filter '{key}'")
    show_all = opts.all or opts.limit > 0 or bool(f.get("status")) or bool(f.get("exited"))
    if not show_all and not c.state.running:
        return False
    if f.get("id") and not any(c.id.startswith(v) for v in f["id"]):
        return False
    if f.get("name") and not any(_search(v, "/" + c.name) for v in f["name"]):
        return False
    if f.get("label") and not _label_ok(c.spec.labels, f["label"]):
        return False
    for status in f.get("status", []):
        if status not in lifecycle.STATUSES:
            raise errors.InvalidArgument(f"invalid filter 'status={status}'")
    if f.get("status") and c.state.status not in f["status"]:
        return False
    if f.get("exited"):
        try:
            codes = {int(v) for v in f["exited"]}
        except ValueError:
            raise errors.InvalidArgument(f"invalid filter 'exited={f['exited'][0]}'") from None
        if c.state.status != lifecycle.EXITED or c.state.exit_code not in codes:
            return False
    if f.get("ancestor") and not any(_ancestor(c, v, store) for v in f["ancestor"]):
        return False
    if f.get("volume") and not any(
        m.name == v or m.destination == v or m.source == v for v in f["volume"] for m in c.mount_points
    ):
        return False
    if f.get("health"):
        status = c.state.health.status if c.state.health else "none"
        if status not in f["health"]:
            return False
    if f.get("network") and not any(v in (c.host.network_mode,) for v in f["network"]):
        return False
    for v in f.get("before", []):
        if not c.created < _find(every, v).created:
            return False
    return all(c.created > _find(every, v).created for v in f.get("since", []))


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return pattern in text


def _ancestor(c: Container, name: str, store: Any) -> bool:
    try:
        image_id = store.resolve(name)
    except errors.SampanError:
        return False
    if c.image_id == image_id:
        return True
    try:  # an image whose layers start with the named image's: built from it
        mine = store.get(c.image_id).chain_ids
        theirs = store.get(image_id).chain_ids
    except errors.SampanError:
        return False
    return bool(theirs) and mine[: len(theirs)] == theirs


def prune_candidates(every: list[Container], filters: dict[str, list[str]]) -> list[Container]:
    for key in filters:
        if key not in PRUNE_FILTERS:
            raise errors.InvalidArgument(f"invalid filter '{key}'")
    until = [parse_until(v) for v in filters.get("until", [])]
    out = []
    for c in every:
        if c.state.status not in (lifecycle.CREATED, lifecycle.EXITED, lifecycle.DEAD):
            continue
        created = unix_time(c.created)
        if until and not all(created < u for u in until):
            continue
        if filters.get("label") and not _label_ok(c.spec.labels, filters["label"]):
            continue
        if filters.get("label!") and _label_ok(c.spec.labels, filters["label!"]) and c.spec.labels:
            continue
        out.append(c)
    return out
