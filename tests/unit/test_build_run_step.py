"""RUN steps: the legacy builder's history text for build args, and anonymous volumes."""

from __future__ import annotations

from pathlib import Path

from sampan.build.stage import anonymous_volumes, run_created_by


def test_created_by_without_args_is_the_command() -> None:
    assert run_created_by(["/bin/sh", "-c", "echo hi"], {}) == "/bin/sh -c echo hi"


def test_created_by_sorts_the_args_as_moby_does() -> None:
    # moby prependEnvOnCmd: sort.Strings over "KEY=value", whatever the declaration order
    got = run_created_by(["/bin/sh", "-c", "x"], {"VERSION": "2.0", "UNSET": "given", "B": "two words"})
    assert got == "|3 B=two words UNSET=given VERSION=2.0 /bin/sh -c x"


def test_created_by_with_only_undeclared_proxies_is_marked_empty() -> None:
    # moby dispatchRun: the proxies are build args in effect, prependEnvOnCmd drops them
    assert run_created_by(["/bin/sh", "-c", "x"], {}, proxies=True) == "|0 /bin/sh -c x"
    assert run_created_by(["/bin/sh", "-c", "x"], {"A": "1"}, proxies=True) == "|1 A=1 /bin/sh -c x"


def test_anonymous_volumes_copy_the_image_content(tmp_path: Path) -> None:
    root, scratch = tmp_path / "root", tmp_path / "scratch"
    (root / "data").mkdir(parents=True)
    (root / "data" / "before").write_text("b")
    (root / "file").write_text("not a dir")
    scratch.mkdir()
    mounts = anonymous_volumes(root, {"/data": {}, "/new/vol": {}, "/file": {}}, scratch)
    assert [(m.type, m.target, m.readonly) for m in mounts] == [("bind", "/data", False), ("bind", "/new/vol", False)]
    assert (Path(mounts[0].source) / "before").read_text() == "b"
    assert (root / "new" / "vol").is_dir()  # the mount point is made in the rootfs, as dockerd does
    assert list(Path(mounts[1].source).iterdir()) == []


def test_anonymous_volumes_stay_inside_the_root(tmp_path: Path) -> None:
    root, scratch, outside = tmp_path / "root", tmp_path / "scratch", tmp_path / "outside"
    root.mkdir()
    scratch.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("s")
    (root / "evil").symlink_to(outside)
    (mount,) = anonymous_volumes(root, {"/evil": {}}, scratch)
    assert not (Path(mount.source) / "secret").exists()
