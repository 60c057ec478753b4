"""``docker rmi`` and ``docker image prune``: Docker's rules for what a removal untags and
deletes (moby ``daemon/images/image_delete.go``), on top of the store's derived refcounts.

* By reference: untag it (and, if it was the repository's last tag, that repository's digest
  references); the image is deleted only when no reference remains.
* By ID: an image with several references (tags in more than one repository, or more than one
  tag) is refused without ``force`` ("referenced in multiple repositories"); with one tag, or
  with ``force``, every reference is untagged and the image deleted.
* An image used by a container is never deleted: without ``force`` the removal is refused,
  with ``force`` only the references go.
* Deleting an image frees the layers (top first) and blobs no remaining image row names; the
  result lists ``{"Untagged": ...}``, ``{"Deleted": image ID}`` and ``{"Deleted": chain ID}``
  for each freed layer, as Docker's does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sampan.errors import ImageInUse, InvalidArgument
from sampan.image import config as cfg
from sampan.image import reference as refs
from sampan.oci import digest as dg

if TYPE_CHECKING:
    from sampan.image.store import ImageStore


def _refs_of(store: ImageStore, image_id: str) -> list[tuple[str, str]]:
    rows = store.db.query(
        "SELECT ref, kind FROM refs WHERE image_id = ? ORDER BY added, ref", (image_id,)
    )
    return [(str(r["ref"]), str(r["kind"])) for r in rows]


def _untag(store: ImageStore, ref: str) -> dict[str, str]:
    store.db.execute("DELETE FROM refs WHERE ref = ?", (ref,))
    return {"Untagged": refs.parse(ref).familiar()}


def _is_single_reference(ref_list: list[tuple[str, str]]) -> bool:
    """At most one tag, and every reference in one repository (moby isSingleReference)."""
    tags = [r for r, kind in ref_list if kind == "tag"]
    names = {refs.parse(r).name for r, _ in ref_list}
    return len(tags) <= 1 and len(names) <= 1


def _stored_ref(store: ImageStore, name: str) -> str | None:
    """The stored reference ``name`` means, if it is one (else it names the image by ID)."""
    try:
        ref = refs.parse(name)
    except InvalidArgument:
        return None
    key = str(ref.with_digest(ref.digest)) if ref.digest else str(ref)
    row = store.db.query_one("SELECT 1 FROM refs WHERE ref = ?", (key,))
    return key if row is not None else None


def remove_image(
    store: ImageStore, name: str, *, force: bool = False, prune: bool = True
) -> list[dict[str, str]]:
    with store.lock:
        image_id = store.resolve(name)
        short = dg.short(image_id)
        records: list[dict[str, str]] = []
        ref_list = _refs_of(store, image_id)
        in_use = store.in_use(image_id)
        key = _stored_ref(store, name)
        if key is not None:
            ref = refs.parse(key)
            if in_use and not force and len(ref_list) == 1:
                raise ImageInUse(
                    f'conflict: unable to remove repository reference "{name}" (must force) - '
                    f"a container is using its referenced image {short}"
                )
            records.append(_untag(store, key))
            ref_list = _refs_of(store, image_id)
            if not ref.digest and not any(
                kind == "tag" and refs.parse(r).name == ref.name for r, kind in ref_list
            ):
                for r, kind in ref_list:
                    if kind == "digest" and refs.parse(r).name == ref.name:
                        records.append(_untag(store, r))
                ref_list = _refs_of(store, image_id)
            if ref_list or in_use:
                return records
        else:
            if in_use and not force:
                raise ImageInUse(
                    f"conflict: unable to delete {short} (must be forced) - "
                    "image is being used by a container"
                )
            if ref_list and not force and not _is_single_reference(ref_list):
                raise ImageInUse(
                    f"conflict: unable to delete {short} (must be forced) - "
                    "image is referenced in multiple repositories"
                )
            for r, _ in ref_list:
                records.append(_untag(store, r))
            if in_use:
                return records
        children = store.db.query_one("SELECT id FROM images WHERE parent = ? LIMIT 1", (image_id,))
        if children is not None:
            if records:
                return records
            raise ImageInUse(
                f"conflict: unable to delete {short} (cannot be forced) - "
                "image has dependent child images"
            )
        parent = store._load(image_id).parent
        records += _delete(store, image_id)[0]
        if prune:
            records += _prune_parents(store, parent)
    return records


def _delete(store: ImageStore, image_id: str) -> tuple[list[dict[str, str]], int]:
    """Delete an image with no references; free what nothing else names."""
    image = store._load(image_id)
    blobs = [str(r["digest"]) for r in store.db.query(
        "SELECT digest FROM image_blobs WHERE image_id = ?", (image_id,))]
    with store.db.transaction() as tx:
        tx.execute("DELETE FROM refs WHERE image_id = ?", (image_id,))
        tx.execute("DELETE FROM images WHERE id = ?", (image_id,))
    removed, freed = store.free_unreferenced(blobs=blobs, layers=list(reversed(image.chain_ids)))
    records = [{"Deleted": image_id}] + [{"Deleted": chain} for chain in removed]
    return records, freed


def _prune_parents(store: ImageStore, parent: str) -> list[dict[str, str]]:
    """Delete the untagged, unused parents left childless (a parent is recorded by local
    commits and builds), as Docker does unless ``noprune``."""
    records: list[dict[str, str]] = []
    while parent:
        row = store.db.query_one("SELECT parent FROM images WHERE id = ?", (parent,))
        if row is None or _refs_of(store, parent) or store.in_use(parent):
            break
        if store.db.query_one("SELECT 1 FROM images WHERE parent = ? LIMIT 1", (parent,)):
            break
        records += _delete(store, parent)[0]
        parent = str(row["parent"])
    return records


def _until(value: str) -> float:
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    units = {"s": 1, "m": 60, "h": 3600}
    if value and value[-1] in units and value[:-1].isdigit():
        return time.time() - int(value[:-1]) * units[value[-1]]
    t = cfg.parse_time(value)
    if t == 0.0:
        raise InvalidArgument(f"invalid filter 'until={value}'")
    return t


def _label_match(labels: dict[str, str], expr: str) -> bool:
    key, eq, value = expr.partition("=")
    if not eq:
        return key in labels
    return labels.get(key) == value


def prune_images(
    store: ImageStore, *, all_images: bool, filters: dict[str, list[str]]
) -> tuple[list[dict[str, str]], int]:
    known = {"dangling", "until", "label", "label!"}
    for key in filters:
        if key not in known:
            raise InvalidArgument(f"invalid filter '{key}'")
    dangling_only = not all_images
    for value in filters.get("dangling", []):
        if value.lower() in ("false", "0"):
            dangling_only = False
        elif value.lower() not in ("true", "1"):
            raise InvalidArgument(f"invalid filter 'dangling={value}'")
    until = [_until(v) for v in filters.get("until", [])]
    records: list[dict[str, str]] = []
    reclaimed = 0
    with store.lock:
        for image in store.list():
            if dangling_only and image.repo_tags:
                continue
            if store.in_use(image.id):
                continue
            created = cfg.parse_time(image.created)
            if until and not all(created < u for u in until):
                continue
            labels = image.labels
            if not all(_label_match(labels, e) for e in filters.get("label", [])):
                continue
            if any(_label_match(labels, e) for e in filters.get("label!", [])):
                continue
            if store.db.query_one("SELECT 1 FROM images WHERE parent = ? LIMIT 1", (image.id,)):
                continue
            for ref, _ in _refs_of(store, image.id):
                records.append(_untag(store, ref))
            deleted, freed = _delete(store, image.id)
            records += deleted
            reclaimed += freed
    return records, reclaimed
