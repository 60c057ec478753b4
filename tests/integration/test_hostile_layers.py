"""The hostile-archive battery: every layer here tries to write, link or remove outside its root.

Each case states whether the entry is refused (UnsafeArchiveEntry / InvalidArgument naming the
entry or the layer) or neutralized (applied inside the layer, as Docker does).  Bait files sit
in a sibling directory ``outside``; after every case they must be byte-for-byte unchanged and
nothing new may exist beside the layer directory.  Each case runs for both whiteout forms.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sampan.errors import DigestMismatch, InvalidArgument, UnsafeArchiveEntry
from sampan.storage.archive import apply_layer
from sampan.storage.testing import tree_state

pytestmark = pytest.mark.root

Member = tuple[str, str, bytes | str, dict[str, object]]  # (name, kind, data | link target, extra)


def tar_of(*members: Member) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload, extra in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            info.mode = 0o644
            data = None
            if kind == "file":
                assert isinstance(payload, bytes)
                data, info.size = payload, len(payload)
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                assert isinstance(payload, str)
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == "hard":
                assert isinstance(payload, str)
                info.type, info.linkname = tarfile.LNKTYPE, payload
            elif kind == "chr":
                info.type = tarfile.CHRTYPE
            elif kind == "blk":
                info.type = tarfile.BLKTYPE
            for key, value in extra.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def f(name: str, data: bytes = b"pwned", **extra: object) -> Member:
    return (name, "file", data, extra)


def d(name: str, **extra: object) -> Member:
    return (name, "dir", b"", extra)


def sym(name: str, target: str) -> Member:
    return (name, "sym", target, {})


def hard(name: str, target: str) -> Member:
    return (name, "hard", target, {})


@dataclass
class Env:
    tmp: Path
    dest: Path
    outside: Path


@dataclass
class Case:
    name: str
    layer: Callable[[Env], bytes]
    outcome: str  # "refused" | "neutralized"
    names: str = ""  # text the refusal must contain (the entry); default: any
    check: Callable[[Env], None] | None = None  # extra check of dest after a neutralized case
    error: type[Exception] = UnsafeArchiveEntry
    compression: str = "auto"
    diff_id: str | None = None


def _rel_outside(env: Env) -> str:
    return str(env.outside).lstrip("/")


def _climb(env: Env) -> str:
    return "../" * 12 + _rel_outside(env)


def _assert_inside_abs(env: Env) -> None:
    assert (env.dest / _rel_outside(env) / "bait").read_bytes() == b"pwned"


def _assert_chained_inside(env: Env) -> None:
    assert (env.dest / "etc2" / "x").read_bytes() == b"pwned"


def _assert_no_devices(env: Env) -> None:
    assert sorted(os.listdir(env.dest)) == ["ok"], os.listdir(env.dest)


def _assert_setuid(env: Env) -> None:
    st = os.stat(env.dest / "su")
    assert st.st_mode & stat.S_ISUID and st.st_mode & stat.S_ISGID and st.st_uid == 0


def _assert_last_wins(env: Env) -> None:
    assert (env.dest / "dup").read_bytes() == b"two"
    assert (env.dest / "x").is_file() and (env.dest / "x").read_bytes() == b"file now"


def _assert_no_forged_opaque(env: Env) -> None:
    assert (env.dest / "dir").is_dir()
    with pytest.raises(OSError):
        os.getxattr(env.dest / "dir", "trusted.overlay.opaque")


def _assert_deep_path_gone(env: Env) -> None:
    assert not (env.dest / "a").is_dir()  # the whiteout removed the 500-deep tree (or hid it)


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


CASES = [
    Case(
        "absolute-path",
        lambda e: tar_of(f(str(e.outside / "bait"))),
        "neutralized",
        check=_assert_inside_abs,
    ),
    Case("dotdot", lambda e: tar_of(f("../outside/bait")), "refused", names="../outside/bait"),
    Case(
        "dotdot-nested",
        lambda e: tar_of(d("a/"), f("a/../../outside/bait")),
        "refused",
        names="a/../../outside/bait",
    ),
    Case(
        "symlink-absolute-write-through",
        lambda e: tar_of(sym("evil", str(e.outside)), f("evil/bait")),
        "refused",
        names="evil/bait",
    ),
    Case(
        "symlink-absolute-resolved-inside",
        lambda e: tar_of(d("etc2/"), sym("evil", "/etc2"), f("evil/x")),
        "neutralized",
        check=_assert_chained_inside,
    ),
    Case(
        "symlink-relative-climbing",
        lambda e: tar_of(sym("rel", _climb(e)), f("rel/bait")),
        "refused",
        names="rel/bait",
    ),
    Case(
        "symlink-chain",
        lambda e: tar_of(sym("l1", "l2"), sym("l2", str(e.outside)), f("l1/bait")),
        "refused",
        names="l1/bait",
    ),
    Case(
        "dir-replaced-by-symlink",
        lambda e: tar_of(d("dd/"), f("dd/ok", b"ok"), sym("dd", str(e.outside)), f("dd/bait")),
        "refused",
        names="dd/bait",
    ),
    Case(
        "hardlink-host-path",
        lambda e: tar_of(hard("hl", str(e.outside / "bait"))),
        "refused",
        names="hl",
    ),
    Case(
        "hardlink-climbing", lambda e: tar_of(hard("hl", "../outside/bait")), "refused", names="hl"
    ),
    Case(
        "hardlink-through-symlink",
        lambda e: tar_of(sym("s", str(e.outside)), hard("hl", "s/bait")),
        "refused",
        names="hl",
    ),
    Case(
        "whiteout-climbing",
        lambda e: tar_of(f("../outside/.wh.bait", b"")),
        "refused",
        names="../outside/.wh.bait",
    ),
    Case(
        "whiteout-through-symlink",
        lambda e: tar_of(sym("s", str(e.outside)), f("s/.wh.bait", b"")),
        "refused",
        names="s/.wh.bait",
    ),
    Case("whiteout-dotdot-name", lambda e: tar_of(f(".wh...", b"")), "refused", names=".wh..."),
    Case(
        "opaque-climbing",
        lambda e: tar_of(f("x/../../outside/.wh..wh..opq", b"")),
        "refused",
        names="x/../../outside/.wh..wh..opq",
    ),
    Case(
        "opaque-through-symlink",
        lambda e: tar_of(sym("s", str(e.outside)), f("s/.wh..wh..opq", b"")),
        "refused",
        names="s/.wh..wh..opq",
    ),
    Case(
        "device-nodes-skipped",
        lambda e: tar_of(
            ("null", "chr", b"", {"devmajor": 1, "devminor": 3}),
            ("sda", "blk", b"", {"devmajor": 8, "devminor": 0}),
            ("fake-whiteout", "chr", b"", {}),
            f("ok", b"ok"),
        ),
        "neutralized",
        check=_assert_no_devices,
    ),
    Case(
        "setuid-kept",
        lambda e: tar_of(f("su", b"#!/bin/sh\n", mode=0o6755)),
        "neutralized",
        check=_assert_setuid,
    ),
    Case(
        "huge-pax-header",
        lambda e: tar_of(f("big", b"", pax_headers={"comment": "x" * (2 << 20)})),
        "refused",
        names="PaxHeader",
    ),
    Case(
        "duplicates-last-wins",
        lambda e: tar_of(
            f("dup", b"one"), f("dup", b"two"), d("x/"), f("x/child"), f("x", b"file now")
        ),
        "neutralized",
        check=_assert_last_wins,
    ),
    Case(
        "forged-overlay-xattr",
        lambda e: tar_of(d("dir/", pax_headers={"SCHILY.xattr.trusted.overlay.opaque": "y"})),
        "neutralized",
        check=_assert_no_forged_opaque,
    ),
    Case(
        "nul-in-pax-path",
        lambda e: tar_of(f("ok", b"", pax_headers={"path": "a\0b"})),
        "refused",
        names="a\\x00b",
    ),
    Case(
        "uid-out-of-range",
        lambda e: tar_of(f("big-uid", b"", pax_headers={"uid": str(1 << 40)})),
        "refused",
        names="big-uid",
    ),
    Case(
        "deep-path-then-whiteout",
        lambda e: tar_of(f("a/" * 500 + "x", b"deep"), f(".wh.a", b"")),
        "neutralized",
        check=_assert_deep_path_gone,
    ),
    Case(
        "too-deep-path",
        lambda e: tar_of(f("a/" * 2000 + "x", b"deep")),
        "refused",
        names="a/a/a/",
    ),
    Case(
        "truncated-gzip",
        lambda e: _gz(tar_of(f("a", os.urandom(100_000))))[:30_000],
        "refused",
        names="layer-under-test",
        error=InvalidArgument,
    ),
    Case(
        "truncated-tar",
        lambda e: tar_of(f("a", os.urandom(100_000)))[:50_000],
        "refused",
        names="'a'",
        error=InvalidArgument,
    ),
    Case(
        "not-a-tar",
        lambda e: b"hello, this is not a tar archive" * 40,
        "refused",
        names="layer-under-test",
        error=InvalidArgument,
    ),
    Case(
        "diff-id-mismatch",
        lambda e: tar_of(f("a", b"a")),
        "refused",
        names="layer-under-test",
        error=DigestMismatch,
        diff_id="sha256:" + "0" * 64,
    ),
]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    dest = tmp_path / "layer"
    dest.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "bait").write_bytes(b"bait")
    (outside / "keep").write_bytes(b"keep")
    (outside / "sub").mkdir()
    (outside / "sub" / "deep").write_bytes(b"deep")
    return Env(tmp_path, dest, outside)


@pytest.mark.parametrize("whiteouts", ["overlay", "delete"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_layer(case: Case, whiteouts: str, env: Env) -> None:
    data = case.layer(env)
    bait_before = tree_state(env.outside)
    beside_before = sorted(os.listdir(env.tmp))

    def apply() -> None:
        apply_layer(
            io.BytesIO(data),
            env.dest,
            whiteouts=whiteouts,  # type: ignore[arg-type]
            expected_diff_id=case.diff_id,
            where="layer-under-test",
        )

    if case.outcome == "refused":
        with pytest.raises(case.error) as info:
            apply()
        assert case.names in str(info.value), str(info.value)
        assert "\n" not in str(info.value)
    else:
        apply()
        if case.check is not None:
            case.check(env)
    assert tree_state(env.outside) == bait_before
    assert os.stat(env.outside / "bait").st_nlink == 1
    assert sorted(os.listdir(env.tmp)) == beside_before
