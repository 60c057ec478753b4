"""The conformance suite every Snapshotter runs (as containerd's ``core/snapshots/testsuite``).

A check is a function ``check(factory, scratch)``: ``factory(root)`` makes a fresh snapshotter
on ``root``; ``scratch`` is an empty directory the check may use.  Checks raise AssertionError
(or a sampan error) on failure.  ``METADATA_CHECKS`` need no privileges; ``MOUNT_CHECKS``
perform the returned mounts and so need root.  A test module runs them for each implementation::

    @pytest.mark.parametrize("check", testing.METADATA_CHECKS, ids=testing.check_id)
    @pytest.mark.parametrize("factory", [OverlaySnapshotter, NativeSnapshotter])
    def test_snapshotter(factory, check, tmp_path):
        check(factory, tmp_path)

The helpers (:func:`build_tar`, :func:`tree_state`, :func:`mounted`) are for layer tests too.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sampan._sys import mount as sysmount
from sampan.errors import Conflict, InvalidArgument, NotFound, SampanError
from sampan.mount import Mount
from sampan.storage.archive import apply_layer, write_diff
from sampan.storage.snapshotdirs import INFO, Meta, snapshot_id, write_atomic
from sampan.storage.snapshots import Kind, Snapshotter

Factory = Callable[[Path], Snapshotter]
Check = Callable[[Factory, Path], None]

# ---------------------------------------------------------------- helpers


def build_tar(spec: dict[str, bytes | str | None], *, mtime: int = 1_700_000_000) -> bytes:
    """A tar from ``{name: value}`` in order: ``"d/": None`` a directory, bytes a file,
    ``"->target"`` a symlink, ``"=>target"`` a hard link (uid/gid 0, mode 0755/0644)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, value in spec.items():
            info = tarfile.TarInfo(name.rstrip("/") if name != "/" else name)
            info.mtime = mtime
            data = None
            if name.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif isinstance(value, str) and value.startswith("->"):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, value[2:], 0o777
            elif isinstance(value, str) and value.startswith("=>"):
                info.type, info.linkname, info.mode = tarfile.LNKTYPE, value[2:], 0o644
            else:
                data = value if isinstance(value, bytes) else b""
                info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def tree_state(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path below ``root`` with type, mode, owner, and content / target / mtime seconds."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            base: tuple[object, ...] = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
            )
            if stat.S_ISREG(st.st_mode):
                out[rel] = (*base, Path(full).read_bytes(), int(st.st_mtime))
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = (*base, os.readlink(full))
            elif stat.S_ISCHR(st.st_mode):
                out[rel] = (*base, st.st_rdev)
            else:
                out[rel] = base
    return out


@contextmanager
def mounted(mounts: list[Mount], target: Path) -> Iterator[Path]:
    """Perform ``mounts`` on ``target`` for the duration of the block."""
    assert len(mounts) == 1, mounts
    target.mkdir(parents=True, exist_ok=True)
    sysmount.perform(mounts[0], str(target))
    try:
        yield target
    finally:
        sysmount.umount(str(target))


def _raises(exc: type[SampanError], fn: Callable[[], object]) -> SampanError:
    try:
        fn()
    except exc as e:
        return e
    raise AssertionError(f"expected {exc.__name__}")


def _layer(sn: Snapshotter, name: str, parent: str | None, tar: bytes) -> None:
    key = f"extract-{name}"
    sn.prepare(key, parent)
    apply_layer(io.BytesIO(tar), sn.upper_dir(key), whiteouts=sn.whiteouts, where=name)
    sn.commit(name, key)


# ---------------------------------------------------------------- metadata checks


def check_prepare_commit_stat(factory: Factory, scratch: Path) -> None:
    sn = factory(scratch / "layers")
    sn.prepare("k1")
    assert sn.stat("k1").kind == Kind.ACTIVE
    (sn.upper_dir("k1") / "f").write_bytes(b"one")
    sn.commit("c1", "k1", labels={"a": "b"})
    _raises(NotFound, lambda: sn.stat("k1"))
    info = sn.stat("c1")
    assert (info.kind, info.parent, info.labels) == (Kind.COMMITTED, None, {"a": "b"})
    sn.prepare("k2", "c1")
    assert sn.stat("k2").parent == "c1"
    assert {i.name for i in sn.walk()} == {"c1", "k2"}
    assert sn.mounts("k2") and all(isinstance(m, Mount) for m in sn.mounts("k2"))
    sn.view("v1", "c1")
    assert sn.stat("v1").kind == Kind.VIEW
    assert all(m.readonly for m in sn.mounts("v1"))


def check_conflicts_and_missing(factory: Factory, scratch: Path) -> None:
    sn = factory(scratch / "layers")
    sn.prepare("k")
    _raises(Conflict, lambda: sn.prepare("k"))
    _raises(NotFound, lambda: sn.prepare("k2", "nope"))
    _raises(InvalidArgument, lambda: sn.prepare("k3", "k"))  # parent must be committed
    sn.commit("c", "k")
    sn.prepare("k")
    _raises(Conflict, lambda: sn.commit("c", "k"))
    sn.view("v", "c")
    _raises(Conflict, lambda: sn.commit("c2", "v"))
    _raises(NotFound, lambda: sn.remove("nope"))
    _raises(NotFound, lambda: sn.upper_dir("nope"))


def check_remove_parent_conflict(factory: Factory, scratch: Path) -> None:
    sn = factory(scratch / "layers")
    sn.prepare("k")
    sn.commit("base", "k")
    sn.prepare("child", "base")
    _raises(Conflict, lambda: sn.remove("base"))
    sn.remove("child")
    sn.remove("base")
    assert list(sn.walk()) == []
    assert [e for e in os.listdir(scratch / "layers") if not e.startswith("l")] == []


def check_usage(factory: Factory, scratch: Path) -> None:
    sn = factory(scratch / "layers")
    sn.prepare("k")
    (sn.upper_dir("k") / "big").write_bytes(b"x" * (1 << 20))
    (sn.upper_dir("k") / "d").mkdir()
    u = sn.usage("k")
    assert u.size >= 1 << 20 and u.inodes == 2, u


def check_reopen_and_commit_recovery(factory: Factory, scratch: Path) -> None:
    root = scratch / "layers"
    sn = factory(root)
    sn.prepare("k1")
    (sn.upper_dir("k1") / "f").write_bytes(b"data")
    sn.commit("c1", "k1")
    sn.prepare("k2", "c1")
    # a crash after commit's first step (metadata rewritten, directory not yet renamed)
    meta = Meta.from_json((root / snapshot_id("k2") / INFO).read_bytes())
    done = Meta("c2", meta.parent, Kind.COMMITTED, meta.created, {}, meta.link, meta.lowers)
    write_atomic(root / snapshot_id("k2") / INFO, done.to_json())
    (root / ".tmp-deadbeef").mkdir()  # a prepare interrupted before its rename
    sn2 = factory(root)
    assert {(i.name, i.kind) for i in sn2.walk()} == {
        ("c1", Kind.COMMITTED),
        ("c2", Kind.COMMITTED),
    }
    _raises(NotFound, lambda: sn2.stat("k2"))
    assert not (root / ".tmp-deadbeef").exists()
    assert (sn2.upper_dir("c1") / "f").read_bytes() == b"data"


def check_labels(factory: Factory, scratch: Path) -> None:
    sn = factory(scratch / "layers")
    sn.prepare("k", labels={"stage": "extract"})
    assert sn.stat("k").labels == {"stage": "extract"}
    sn.commit("c", "k")  # labels=None keeps the active snapshot's labels
    assert sn.stat("c").labels == {"stage": "extract"}
    sn.prepare("k2", "c")
    sn.commit("c2", "k2", labels={"new": "1"})
    assert sn.stat("c2").labels == {"new": "1"}


def check_concurrent_prepare_of_one_key(factory: Factory, scratch: Path) -> None:
    import threading

    sn = factory(scratch / "layers")
    results: list[str] = []

    def attempt() -> None:
        try:
            sn.prepare("same")
            results.append("ok")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 7 + ["ok"], results
    assert [i.name for i in sn.walk()] == ["same"]
    assert [e for e in os.listdir(scratch / "layers") if e.startswith(".")] == []


METADATA_CHECKS: list[Check] = [
    check_labels,
    check_concurrent_prepare_of_one_key,
    check_prepare_commit_stat,
    check_conflicts_and_missing,
    check_remove_parent_conflict,
    check_usage,
    check_reopen_and_commit_recovery,
]

# ---------------------------------------------------------------- mount checks (root)

L1 = build_tar(
    {
        "keep": b"keep",
        "gone": b"gone",
        "d/": None,
        "d/x": b"x",
        "d/y": b"y",
        "e/": None,
        "e/sub/": None,
        "e/sub/f": b"f",
        "link": "->keep",
    }
)
L2 = build_tar(
    {
        "new": b"new",
        ".wh.gone": b"",
        "d/": None,
        "d/.wh..wh..opq": b"",
        "d/z": b"z",
        "e/": None,
        "e/.wh.sub": b"",
    }
)


def check_whiteouts_in_mount(factory: Factory, scratch: Path) -> None:
    sn = factory(scratch / "layers")
    _layer(sn, "L1", None, L1)
    _layer(sn, "L2", "L1", L2)
    with mounted(sn.prepare("ctr", "L2"), scratch / "m") as m:
        names = sorted(str(p.relative_to(m)) for p in m.rglob("*"))
        assert names == ["d", "d/z", "e", "keep", "link", "new"], names
        assert (m / "link").read_bytes() == b"keep"
        (m / "written").write_bytes(b"w")
    assert (sn.upper_dir("ctr") / "written").read_bytes() == b"w"


def check_views_read_only(factory: Factory, scratch: Path) -> None:
    sn = factory(scratch / "layers")
    _layer(sn, "L1", None, L1)
    _layer(sn, "L2", "L1", L2)
    for key, parent, expect in (("v1", "L1", "gone"), ("v2", "L2", "new")):
        with mounted(sn.view(key, parent), scratch / key) as m:
            assert (m / expect).exists()
            try:
                (m / "w").write_bytes(b"")
            except OSError as exc:
                assert exc.errno == 30, exc  # EROFS
            else:
                raise AssertionError(f"view {key} is writable")


def check_write_diff_round_trip(factory: Factory, scratch: Path) -> None:
    sn = factory(scratch / "layers")
    _layer(sn, "L1", None, L1)
    with mounted(sn.prepare("ctr", "L1"), scratch / "m") as m:
        (m / "new").write_bytes(b"new")
        os.chown(m / "new", 1000, 1000)
        os.chmod(m / "new", 0o4750)
        (m / "keep").write_bytes(b"changed")
        (m / "gone").unlink()
        for f in ("d/x", "d/y"):
            (m / f).unlink()
        (m / "d").rmdir()
        (m / "d").mkdir()
        (m / "d" / "z").write_bytes(b"z")
        (m / "e" / "sub" / "f").unlink()
        (m / "h1").write_bytes(b"hard")
        os.link(m / "h1", m / "h2")
        os.symlink("/abs/target", m / "sl")
        os.mkfifo(m / "fifo")
        expected = tree_state(m)
    lower = sn.upper_dir("L1") if sn.whiteouts == "delete" else None
    buf = io.BytesIO()
    first = write_diff(sn.upper_dir("ctr"), buf, whiteouts=sn.whiteouts, lower=lower)
    again = write_diff(sn.upper_dir("ctr"), io.BytesIO(), whiteouts=sn.whiteouts, lower=lower)
    assert first == again, (first, again)
    assert first.size == len(buf.getvalue())
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        names = tar.getnames()
    assert ".wh.gone" in names and "keep" in names and "e/sub/.wh.f" in names, names
    assert "link" not in names, names  # unchanged files are not in the diff
    sn.prepare("replay", "L1")
    applied = apply_layer(
        io.BytesIO(buf.getvalue()),
        sn.upper_dir("replay"),
        whiteouts=sn.whiteouts,
        expected_diff_id=first.diff_id,
    )
    assert applied == first
    with mounted(sn.mounts("replay"), scratch / "m2") as m2:
        got = tree_state(m2)
    assert got == expected, {k: (expected.get(k), got.get(k)) for k in set(got) ^ set(expected)}


MOUNT_CHECKS: list[Check] = [
    check_whiteouts_in_mount,
    check_views_read_only,
    check_write_diff_round_trip,
]


def check_id(check: Check) -> str:
    return check.__name__.removeprefix("check_")
