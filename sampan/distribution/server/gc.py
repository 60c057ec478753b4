"""Garbage collection of the registry's storage: mark and sweep, safe while the server runs.

1. Take ``_gc.lock`` exclusively: the server's writers (finishing an upload, mounting a blob,
   writing a manifest) hold it shared, so none of them runs during the collection, and a
   manifest written just before is seen by the mark.  Reads (pulls) and chunk uploads go on.
2. With ``delete_untagged``: in each repository, delete the manifests no tag reaches (children
   of a tagged index and referrers of a kept manifest count as reached).
3. Mark every manifest still linked in a repository and every blob it references.
4. Sweep the blobs not marked, except those modified at or after the start (minus ``grace``
   seconds): a blob that a writer touched or published meanwhile is never freed.  Repository
   links to swept blobs are removed too.
5. Remove uploads untouched for ``upload_max_age`` seconds.

``dry_run`` reports the same without deleting anything.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field

from sampan.distribution.server import manifest as mf
from sampan.distribution.server.errors import RegistryError
from sampan.distribution.server.storage import RegistryStorage


@dataclass
class GcReport:
    dry_run: bool
    marked: int = 0
    blobs: list[tuple[str, int]] = field(default_factory=list)  # (digest, size) swept
    manifests: list[tuple[str, str]] = field(default_factory=list)  # (repository, digest) untagged
    kept_recent: int = 0
    uploads: int = 0

    @property
    def freed(self) -> int:
        return sum(size for _, size in self.blobs)


def _parse(storage: RegistryStorage, digest: str) -> mf.ManifestInfo | None:
    try:
        return mf.parse(storage.manifest_path(digest).read_bytes())
    except (OSError, RegistryError):
        return None


def _reachable(storage: RegistryStorage, repo: str, start: float) -> set[str]:
    """Manifests of ``repo`` that a tag reaches, or written at/after ``start``."""
    revisions = set(storage.revisions(repo))
    infos = {d: _parse(storage, d) for d in revisions}
    keep: set[str] = set()
    todo = [d for d in storage.tag_map(repo).values() if d in revisions]
    todo += [d for d in revisions if storage.revision_mtime(repo, d) >= start]
    while True:
        while todo:
            d = todo.pop()
            if d in keep:
                continue
            keep.add(d)
            info = infos.get(d)
            if info is not None:
                todo += [c.digest for c in info.children if c.digest in revisions]
        # referrers of kept manifests are kept (signatures, SBOMs of a tagged image)
        todo = [d for d, info in infos.items()
                if d not in keep and info is not None and info.subject is not None and info.subject.digest in keep]
        if not todo:
            return keep


def collect(
    storage: RegistryStorage, *, dry_run: bool = False, delete_untagged: bool = False,
    grace: float = 0.0, upload_max_age: float = 24 * 3600.0,
) -> GcReport:
    report = GcReport(dry_run=dry_run)
    start = time.time() - grace
    with storage.lock(exclusive=True):
        marked: set[str] = set()
        for repo in storage.repositories():
            revisions = storage.revisions(repo)
            if delete_untagged:
                keep = _reachable(storage, repo, start)
                for d in sorted(set(revisions) - keep):
                    report.manifests.append((repo, d))
                    if not dry_run:
                        storage.forget_manifest(repo, d)
                revisions = [d for d in revisions if d in keep]
            for d in revisions:
                marked.add(d)
                info = _parse(storage, d)
                if info is None:
                    continue
                marked.update(x.digest for x in info.blobs())
                marked.update(x.digest for x in info.layers)
                marked.update(x.digest for x in info.children)
        report.marked = len(marked)
        swept: set[str] = set()
        for digest in sorted(storage.content.walk()):
            if digest in marked:
                continue
            path = storage.content.path(digest)
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if st.st_mtime >= start:
                report.kept_recent += 1
                continue
            report.blobs.append((digest, st.st_size))
            swept.add(digest)
            if not dry_run:
                path.unlink(missing_ok=True)
        if swept and not dry_run:
            for repo in storage.repositories():
                for digest in swept:
                    algo, hexpart = digest.split(":", 1)
                    (storage.repo_dir(repo) / "_layers" / algo / hexpart).unlink(missing_ok=True)
    report.uploads = _old_uploads(storage, time.time() - upload_max_age, dry_run)
    return report


def _old_uploads(storage: RegistryStorage, before: float, dry_run: bool) -> int:
    count = 0
    try:
        entries = list(os.scandir(storage.uploads_dir))
    except FileNotFoundError:
        return 0
    for e in entries:
        if e.name.startswith("_") or not e.is_dir():
            continue
        mtime = before  # if the session vanishes under us, it is not removed
        try:
            mtime = e.stat().st_mtime
            mtime = max(mtime, os.stat(os.path.join(e.path, "data")).st_mtime)
        except FileNotFoundError:
            pass  # a session being created or finished right now: its directory's time counts
        if mtime < before:
            count += 1
            if not dry_run:
                shutil.rmtree(e.path, ignore_errors=True)
    return count
