"""The engine's image service: the image store plus events, filters and Docker's semantics.

The API layer calls these methods from worker threads (they block on disk); each action that
Docker reports on ``/events`` publishes an ``image`` event here, after it succeeded.

Vocabulary: an image *name* as a client gives it may be a reference (``busybox``,
``busybox:1.36``, ``localhost:5000/a/b@sha256:...``), a full or short image ID; a *reference*
is a repository name with a tag or a digest; the image *ID* is the digest of its config.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime
import re
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from sampan import errors
from sampan.engine.events import EventBus
from sampan.image.store import HistoryEntry, Image, ImageStore, ImagesUsage

Filters = dict[str, list[str]]
Progress = Callable[[dict[str, Any]], None]

LIST_FILTERS = frozenset({"dangling", "label", "before", "since", "reference", "until"})
PRUNE_FILTERS = frozenset({"dangling", "label", "until"})

_RFC3339 = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)?$"
)


def unix_time(rfc3339: str) -> int:
    """Seconds since the epoch of an RFC 3339 time (any number of fraction digits); 0 if empty."""
    if not rfc3339:
        return 0
    m = _RFC3339.match(rfc3339.strip())
    if not m:
        raise errors.InvalidArgument(f"invalid time {rfc3339!r}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    tz = m.group(8) or "Z"
    offset = datetime.timedelta(0)
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        offset = sign * datetime.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    when = datetime.datetime(y, mo, d, h, mi, s, tzinfo=datetime.timezone(offset))
    return int(when.timestamp())


def parse_bool_filter(key: str, values: list[str]) -> bool:
    value = values[-1].lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise errors.InvalidArgument(f"Invalid filter '{key}={values[-1]}'")


def glob_match(pattern: str, text: str) -> bool:
    """Go's ``path.Match``: ``*`` and ``?`` never match ``/``."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise errors.InvalidArgument(f"syntax error in pattern {pattern!r}")
            body = pattern[i + 1 : end]
            if body.startswith("^"):
                body = "!" + body[1:]
            out.append("[" + ("^" + re.escape(body[1:]) if body.startswith("!") else re.escape(body)) + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.fullmatch("".join(out), text) is not None


def familiar_name(ref: str) -> str:
    """``busybox:latest`` -> ``busybox``; ``a/b@sha256:..`` -> ``a/b``; keeps a registry port."""
    ref = ref.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    return ref[:colon] if colon > slash else ref


def reference_matches(pattern: str, ref: str) -> bool:
    """Docker's ``reference.FamiliarMatch``: the whole familiar string, then its name."""
    return glob_match(pattern, ref) or glob_match(pattern, familiar_name(ref))


def image_labels(image: Image) -> dict[str, str]:
    labels = (image.config.get("config") or {}).get("Labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def label_matches(labels: dict[str, str], wanted: list[str]) -> bool:
    """Every ``key`` or ``key=value`` in ``wanted`` holds (Docker's filters.MatchKVList)."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def parse_until(value: str, *, now: float | None = None) -> float:
    """A filter time: unix seconds (with fraction), RFC 3339, or a Go duration ago (``10m``)."""
    m = re.fullmatch(r"(\d+)(?:\.(\d+))?", value)
    if m:
        return float(value)
    dur = re.fullmatch(r"((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)", value)
    if dur:
        units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
        total = sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", value))
        return (now if now is not None else datetime.datetime.now().timestamp()) - total
    try:
        return float(unix_time(value))
    except errors.InvalidArgument:
        raise errors.InvalidArgument(f"invalid time or duration {value!r} in filter") from None


def check_filters(filters: Filters, allowed: Iterable[str]) -> None:
    allowed = frozenset(allowed)
    for key in filters:
        if key not in allowed:
            raise errors.InvalidArgument(f"Invalid filter '{key}'")


class ImageService:
    """Docker's image operations over an :class:`ImageStore`; every method blocks."""

    def __init__(self, store: ImageStore, events: EventBus) -> None:
        self.store = store
        self.events = events

    # ------------------------------------------------------------------ reading

    def get(self, name: str) -> Image:
        return self.store.get(name)

    def history(self, name: str) -> builtins.list[HistoryEntry]:
        return self.store.history(name)

    def list(self, *, all: bool = False, filters: Filters | None = None) -> builtins.list[Image]:
        """Images as ``GET /images/json`` shows them, newest first."""
        filters = filters or {}
        check_filters(filters, LIST_FILTERS)
        images = self.store.list()
        parents = {img.parent for img in images if img.parent}
        dangling = parse_bool_filter("dangling", filters["dangling"]) if "dangling" in filters else None
        before = min((unix_time(self.store.get(n).created) for n in filters.get("before", [])), default=None)
        since = max((unix_time(self.store.get(n).created) for n in filters.get("since", [])), default=None)
        until = min((parse_until(v) for v in filters.get("until", [])), default=None)
        out = []
        for img in images:
            tagged = bool(img.repo_tags)
            if not all and not tagged and img.id in parents:
                continue  # an intermediate image: hidden unless all=1
            if dangling is not None and dangling == tagged:
                continue
            created = unix_time(img.created)
            if before is not None and created >= before:
                continue
            if since is not None and created <= since:
                continue
            if until is not None and created > until:
                continue
            if "label" in filters and not label_matches(image_labels(img), filters["label"]):
                continue
            if "reference" in filters:
                tags = [t for t in img.repo_tags if any(reference_matches(p, t) for p in filters["reference"])]
                digests = [
                    d for d in img.repo_digests if any(reference_matches(p, d) for p in filters["reference"])
                ]
                if not tags and not digests:
                    continue
                img = dataclasses.replace(img, repo_tags=tags, repo_digests=digests)
            out.append(img)
        out.sort(key=lambda i: unix_time(i.created), reverse=True)
        return out

    def disk_usage(self) -> ImagesUsage:
        return self.store.disk_usage()

    # ------------------------------------------------------------------ changing

    def tag(self, name: str, repo: str, tag: str = "") -> None:
        if not repo:
            raise errors.InvalidArgument("repository name must have at least one component")
        image = self.store.get(name)
        new_ref = f"{repo}:{tag}" if tag else repo
        self.store.tag(name, new_ref)
        tagged = self.store.get(new_ref)
        shown = next((t for t in tagged.repo_tags if familiar_name(t) == familiar_name(new_ref)), new_ref)
        self._event("tag", image, name=shown)

    def remove(self, name: str, *, force: bool = False, prune: bool = True) -> builtins.list[dict[str, str]]:
        image = self.store.get(name)
        items = self.store.remove(name, force=force, prune=prune)
        self._item_events(items, image)
        return items

    def prune(self, *, filters: Filters | None = None) -> tuple[builtins.list[dict[str, str]], int]:
        filters = dict(filters or {})
        check_filters(filters, PRUNE_FILTERS)
        all_images = False
        if "dangling" in filters:
            all_images = not parse_bool_filter("dangling", filters.pop("dangling"))
        before = {img.id: img for img in self.store.list()}
        items, reclaimed = self.store.prune(all=all_images, filters=filters or None)
        by_tag = {tag: img for img in before.values() for tag in img.repo_tags}
        for item in items:
            if "Untagged" in item and item["Untagged"] in by_tag:
                self._event("untag", by_tag[item["Untagged"]], name=by_tag[item["Untagged"]].id)
            elif "Deleted" in item and item["Deleted"] in before:  # not the layers also listed
                self._event("delete", before[item["Deleted"]], name=item["Deleted"])
        self.events.publish("image", "prune", "", {"reclaimed": str(reclaimed)})
        return items, reclaimed

    def load(self, src: BinaryIO, *, on_progress: Progress | None = None) -> builtins.list[str]:
        """Load a docker-archive or OCI-layout tar; the "Loaded image: ..." lines."""
        from sampan.distribution import load_archive

        lines: builtins.list[str] = load_archive(self.store, src, on_progress=on_progress)
        for line in lines:
            prefix, sep, what = line.partition(": ")
            if not sep or not prefix.startswith("Loaded image"):
                continue  # e.g. "The image x already exists, renaming the old one ..."
            try:
                image = self.store.get(what.strip())
            except errors.NotFound:
                continue
            self.events.publish("image", "load", image.id, {"name": image.id, **image_labels(image)})
        return lines

    def save(self, names: builtins.list[str], out: BinaryIO) -> None:
        """Write the named images as one docker-archive; NoSuchImage before any byte."""
        from sampan.distribution import save_archive

        images = self.resolve(names)
        save_archive(self.store, names, out)
        for image in images:
            self._event("save", image, name=image.id)

    def resolve(self, names: builtins.list[str]) -> builtins.list[Image]:
        if not names:
            raise errors.InvalidArgument("no images given")
        return [self.store.get(n) for n in names]

    def import_rootfs(
        self,
        src: BinaryIO,
        *,
        reference: str | None = None,
        changes: builtins.list[str] | None = None,
        message: str = "",
        platform: str = "",
    ) -> Image:
        image = self.store.import_rootfs(
            src, reference=reference, changes=list(changes or []), message=message, platform=platform
        )
        self._event("import", image, name=image.id)
        return image

    # ------------------------------------------------------------------ events

    def _event(self, action: str, image: Image, *, name: str) -> None:
        self.events.publish("image", action, image.id, {**image_labels(image), "name": name})

    def _item_events(self, items: builtins.list[dict[str, str]], image: Image) -> None:
        for item in items:
            if "Untagged" in item:
                self._event("untag", image, name=image.id)
            elif "Deleted" in item and item["Deleted"] == image.id:
                self._event("delete", image, name=image.id)
