""".dockerignore semantics (moby's patternmatcher/ignorefile) and the context tar."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from sampan.build.context import (
    PatternMatcher,
    ignore_file_for,
    keep_build_files,
    load_excludes,
    read_context_tar,
    read_ignore_patterns,
    walk_context,
    write_context_tar,
)
from sampan.errors import InvalidArgument


def test_read_ignore_patterns_cleans_like_docker() -> None:
    text = (
        "\ufeff# comment\n\n  spaced  \n/abs/path\n./rel//x/\n!  keep\n"
        "  # not a comment: the # is not first\n**/*.tmp\na/../b\n"
    )
    assert read_ignore_patterns(text) == [
        "spaced",
        "abs/path",
        "rel/x",
        "!keep",
        "# not a comment: the # is not first",
        "**/*.tmp",
        "b",
    ]


def test_read_ignore_patterns_bytes_and_root() -> None:
    assert read_ignore_patterns(b"/\n!/\n") == ["/", "!/"]


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["*.go"], "a.go", True),
        (["*.go"], "dir/a.go", False),
        (["**/*.go"], "a.go", True),
        (["**/*.go"], "dir/sub/a.go", True),
        (["dir"], "dir/file", True),
        (["dir"], "dirfile", False),
        (["dir/**"], "dir/a/b", True),
        (["**"], "anything/at/all", True),
        (["a/**/b"], "a/b", True),
        (["a/**/b"], "a/x/y/b", True),
        (["a/**/b"], "a/x/y/c", False),
        (["a?c"], "abc", True),
        (["a?c"], "a/c", False),
        (["[a-c]x"], "bx", True),
        (["[a-c]x"], "dx", False),
        (["a\\*b"], "a*b", True),
        (["a\\*b"], "axb", False),
        (["file.txt"], "fileXtxt", False),
        (["(x)+"], "(x)+", True),
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README.md"], "CHANGES.md", True),
        (["!a", "a"], "a", True),
        (["a", "!a"], "a", False),
        (["docs", "!docs/keep.md"], "docs/keep.md", False),
        (["docs", "!docs/keep.md"], "docs/other.md", True),
        (["*/tmp"], "x/tmp/y", True),
        (["*/tmp"], "x/y/tmp", False),
    ],
)
def test_pattern_matcher(patterns: list[str], path: str, excluded: bool) -> None:
    assert PatternMatcher(patterns).matches(path) is excluded


def test_bad_patterns() -> None:
    with pytest.raises(InvalidArgument, match='illegal exclusion pattern: "!"'):
        PatternMatcher(["!"])


@pytest.mark.parametrize("pattern", ["a[b", "a\\", "[]a", "[a-]", "x/*/[", "**/a\\"])
def test_syntax_errors_as_go_filepath_match(pattern: str) -> None:
    with pytest.raises(InvalidArgument, match="syntax error in pattern"):
        PatternMatcher([pattern])


@pytest.mark.parametrize("pattern", ["a]", "[^a]", "[a\\-z]", "\\*", "[!a]"])
def test_valid_odd_patterns(pattern: str) -> None:
    PatternMatcher([pattern])


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data)


CONTEXT = {
    "Dockerfile": "FROM busybox\n",
    ".dockerignore": "*.log\n!dir/keep.log\nnode_modules\n**/deep\ndir/*.log\n!dir/keep.log\n",
    "a.txt": "a",
    "b.log": "b",
    "dir/x.log": "x",
    "dir/keep.log": "k",
    "dir/y.txt": "y",
    "node_modules/m/index.js": "js",
    "sub/deep/file": "f",
    "sub/shallow": "s",
}


def test_walk_context(tmp_path: Path) -> None:
    _tree(tmp_path, CONTEXT)
    excludes = load_excludes(tmp_path, "Dockerfile")
    assert list(walk_context(tmp_path, excludes)) == [
        ".dockerignore",
        "Dockerfile",
        "a.txt",
        "dir",
        "dir/keep.log",
        "dir/y.txt",
        "sub",
        "sub/shallow",
    ]


def test_excluded_dir_with_exception_inside_is_entered(tmp_path: Path) -> None:
    _tree(tmp_path, {"docs/a.md": "", "docs/keep/b.md": "", "docs/keep/c.txt": ""})
    assert list(walk_context(tmp_path, ["docs", "!docs/keep/b.md"])) == ["docs/keep/b.md"]
    assert list(walk_context(tmp_path, ["docs"])) == []


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            ".dockerignore": "a\n",
            "build/app.Dockerfile": "FROM x\n",
            "build/app.Dockerfile.dockerignore": "b\n",
            "a": "",
            "b": "",
        },
    )
    assert ignore_file_for(tmp_path, "build/app.Dockerfile") == (
        tmp_path / "build/app.Dockerfile.dockerignore"
    )
    assert load_excludes(tmp_path, "build/app.Dockerfile") == ["b"]
    assert load_excludes(tmp_path, "Dockerfile") == ["a"]
    assert load_excludes(tmp_path / "build", "Dockerfile") == []


def test_build_files_are_always_sent() -> None:
    excludes = keep_build_files(["*", ".dockerignore"], "sub/Dockerfile")
    assert excludes[-2:] == ["!.dockerignore", "!sub/Dockerfile"]
    assert keep_build_files(["*.txt"], "Dockerfile") == ["*.txt"]
    assert keep_build_files(["Dockerfile"], "Dockerfile", from_stdin=True) == ["Dockerfile"]


def test_context_tar_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src, CONTEXT)
    (src / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(src / "run.sh", 0o4755)
    os.link(src / "a.txt", src / "hard.txt")
    os.symlink("/etc/passwd", src / "abs-link")
    buf = io.BytesIO()
    names = write_context_tar(
        src, buf, excludes=load_excludes(src, "Dockerfile"), extra={".df.stdin": b"FROM x\n"}
    )
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == names
    assert "b.log" not in members and "dir/keep.log" in members
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    assert members["run.sh"].mode & 0o7777 == 0o4755
    assert members["hard.txt"].islnk() and members["hard.txt"].linkname == "a.txt"
    assert members["abs-link"].issym() and members["abs-link"].linkname == "/etc/passwd"
    assert members[".df.stdin"].size == 7


@pytest.mark.skipif(os.geteuid() != 0, reason="unpacking chowns entries (sampand runs as root)")
def test_context_tar_unpacks_safely(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src, CONTEXT)
    os.link(src / "a.txt", src / "hard.txt")
    os.symlink("/etc/passwd", src / "abs-link")
    buf = io.BytesIO()
    write_context_tar(src, buf, extra={".df.stdin": b"FROM x\n"})
    dest = tmp_path / "dest"
    dest.mkdir()
    buf.seek(0)
    read_context_tar(buf, dest)
    assert (dest / "dir/keep.log").read_text() == "k"
    assert os.readlink(dest / "abs-link") == "/etc/passwd"
    assert (dest / ".df.stdin").read_bytes() == b"FROM x\n"
    assert os.stat(dest / "hard.txt").st_ino == os.stat(dest / "a.txt").st_ino


def test_context_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="unable to prepare context"):
        list(walk_context(tmp_path / "missing", []))


@pytest.mark.skipif(os.geteuid() != 0, reason="unpacking chowns entries (sampand runs as root)")
def test_context_tar_cannot_write_outside(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path)
        tar.addfile(link)
        data = tarfile.TarInfo("link/escaped")
        data.size = 1
        tar.addfile(data, io.BytesIO(b"x"))
        evil = tarfile.TarInfo("../climb")
        tar.addfile(evil, io.BytesIO(b""))
    dest = tmp_path / "dest"
    dest.mkdir()
    buf.seek(0)
    with pytest.raises(InvalidArgument):
        read_context_tar(buf, dest)
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "climb").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_unreadable_directory_is_a_clear_error(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    secret.chmod(0)
    try:
        with pytest.raises(InvalidArgument):
            list(walk_context(tmp_path, []))
    finally:
        secret.chmod(0o755)


def test_locate_dockerfile(tmp_path: Path) -> None:
    from sampan.build.context import locate_dockerfile
    from sampan.errors import NotFound

    (tmp_path / "dockerfile").write_text("FROM a\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "Custom").write_text("FROM b\n")
    os.symlink("/etc/passwd", tmp_path / "evil")
    assert locate_dockerfile(tmp_path).name == "dockerfile"  # the lower-case fallback
    assert locate_dockerfile(tmp_path, "sub/Custom") == tmp_path / "sub" / "Custom"
    assert locate_dockerfile(tmp_path, "../../sub/Custom") == tmp_path / "sub" / "Custom"
    with pytest.raises(NotFound, match="Cannot locate specified Dockerfile: Nope"):
        locate_dockerfile(tmp_path, "Nope")
    with pytest.raises(InvalidArgument, match="forbidden path outside the build context"):
        locate_dockerfile(tmp_path, "evil")


def test_remove_ignored_build_files(tmp_path: Path) -> None:
    from sampan.build.context import remove_ignored_build_files

    _tree(tmp_path, {".dockerignore": "build\n.dockerignore\n", "build/Dockerfile": "", "a": ""})
    assert remove_ignored_build_files(tmp_path, "build/Dockerfile") == [
        "build/Dockerfile",
        ".dockerignore",
    ]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "build"]
    assert remove_ignored_build_files(tmp_path) == []


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["a/b"], "a/b/c/d", True),
        (["a/*"], "a/b/c", True),
        (["b"], "a/b", False),
        (["a", "!a/b"], "a/b/c", False),
    ],
)
def test_matches_or_parent_matches(patterns: list[str], path: str, excluded: bool) -> None:
    assert PatternMatcher(patterns).matches_or_parent_matches(path) is excluded
