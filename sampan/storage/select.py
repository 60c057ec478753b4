"""Choosing a snapshotter: overlay where a real overlay mount works under the root, else native."""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from pathlib import Path

from sampan._sys import mount as sysmount
from sampan.errors import InvalidArgument, Unavailable
from sampan.storage.native import NativeSnapshotter
from sampan.storage.overlay import OverlaySnapshotter
from sampan.storage.snapshots import Snapshotter

_cache: dict[str, bool] = {}
_lock = threading.Lock()


def _probe(root: Path) -> bool:
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    probe = root / f".probe-{os.getpid()}-{secrets.token_hex(4)}"
    dirs = {n: probe / n for n in ("l1", "l2", "upper", "work", "merged")}
    try:
        for d in dirs.values():
            d.mkdir(parents=True)
        (dirs["l2"] / "f").write_bytes(b"x")
        opts = f"lowerdir={dirs['l1']}:{dirs['l2']},upperdir={dirs['upper']},workdir={dirs['work']}"
        sysmount.mount("overlay", str(dirs["merged"]), "overlay", 0, opts)
        try:
            os.unlink(dirs["merged"] / "f")  # makes a whiteout: the upper fs must support it
            return not (dirs["merged"] / "f").exists()
        finally:
            sysmount.umount(str(dirs["merged"]), sysmount.MNT_DETACH)
    except OSError:
        return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def overlay_supported(root: Path) -> bool:
    """Whether an overlay mount (with a whiteout) works under ``root``; tried once per root."""
    key = str(root.resolve())
    with _lock:
        if key not in _cache:
            _cache[key] = _probe(root)
        return _cache[key]


def open_snapshotter(root: Path, driver: str | None = None) -> Snapshotter:
    """``"overlay"``, ``"native"`` or None (overlay if supported here, else native)."""
    if driver not in (None, "overlay", "native"):
        raise InvalidArgument(f"unknown storage driver {driver!r} (want overlay or native)")
    if driver == "native" or (driver is None and not overlay_supported(root)):
        return NativeSnapshotter(root)
    if not overlay_supported(root):
        raise Unavailable(f"storage driver overlay: an overlay mount does not work under {root}")
    return OverlaySnapshotter(root)
