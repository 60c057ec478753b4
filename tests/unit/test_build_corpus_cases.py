"""The corpus build table (tests/integration/build_corpus_cases.py) is big enough and
consistent: every case names a corpus file, every peers case is a case."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from tests.integration.build_corpus_cases import (
    CASES,
    CORPUS,
    Gzip,
    Hardlink,
    Link,
    Member,
    Tar,
    tar_bytes,
    write_context,
)

TREE_KINDS = {"f": 5, "d": (2, 4), "l": 2, "h": 2}


def test_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60, len(CASES)


def test_every_case_names_a_corpus_file() -> None:
    missing = [name for name in CASES if not (CORPUS / f"{name}.Dockerfile").is_file()]
    assert not missing
    for name, case in CASES.items():
        assert not case.parent or case.parent in CASES, name


def test_tree_specs_are_well_formed() -> None:
    for name, case in CASES.items():
        for path, spec in case.tree.items():
            sizes = TREE_KINDS[spec[0]]
            assert len(spec) in (sizes if isinstance(sizes, tuple) else (sizes,)), (name, path)
            assert not path.startswith("/"), (name, path)


def test_peers_cases_are_cases() -> None:
    import ast

    source = (Path(__file__).resolve().parents[1] / "e2e" / "test_build_peers.py").read_text()
    tree = ast.parse(source)
    legacy = next(n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "LEGACY" for t in n.targets))
    names = ast.literal_eval(legacy)
    assert len(names) == len(set(names))
    assert set(names) <= set(CASES)


def test_context_writer_makes_links_archives_and_modes(tmp_path: Path) -> None:
    archive = Tar([Member("d", None, 0o750), Member("d/f", b"x", 0o600, 5, 6), Member("d/l", link="f")], "gz")
    write_context(tmp_path, {"b/hard": Hardlink("a"), "a": (b"A", 0o755), "s": Link("a"), "t.tgz": archive,
                             "n.gz": Gzip(b"n")})
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "a").stat().st_ino == (tmp_path / "b" / "hard").stat().st_ino
    assert (tmp_path / "s").readlink() == Path("a")
    with tarfile.open(tmp_path / "t.tgz") as tar:
        f = tar.getmember("d/f")
        assert (f.mode, f.uid, f.gid) == (0o600, 5, 6) and tar.getmember("d/l").linkname == "f"
    assert tar_bytes(Tar([Member("x", b"1")])) == tar_bytes(Tar([Member("x", b"1")]))
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(Tar([Member("x", b"1")], "xz")))) as tar:
        assert tar.extractfile("x").read() == b"1"  # type: ignore[union-attr]
