"""Pure pieces of the builder: COPY helpers, cache keys, config steps, users, POST /build query."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from multidict import MultiDict

from sampan.api.handlers.build import options
from sampan.build import copy as cp
from sampan.build import instructions as ins
from sampan.build.cache import BuildCache, StepKey
from sampan.build.configsteps import ConfigState, nop, nop1
from sampan.build.dockerfile import parse_dockerfile
from sampan.build.users import chown_identity, resolve_user
from sampan.errors import InvalidArgument, NotFound, NotImplementedFeature
from sampan.storage.db import Database


def step(text: str) -> ins.Instruction:
    return parse_dockerfile("FROM x\n" + text).stages[0].instructions[0]


def test_parse_chmod() -> None:
    assert cp.parse_chmod("755") == 0o755
    assert cp.parse_chmod("") is None
    for bad in ("9", "rwx", "77777"):
        with pytest.raises(InvalidArgument, match="invalid chmod parameter"):
            cp.parse_chmod(bad)


def test_scoped_keeps_symlinks_inside(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    os.symlink("/etc", tmp_path / "abs")
    os.symlink("../../../..", tmp_path / "up")
    assert cp.scoped(tmp_path, "abs/passwd") == tmp_path / "etc" / "passwd"
    assert cp.scoped(tmp_path, "up/etc") == tmp_path / "etc"
    assert cp.scoped(tmp_path, "../../x") == tmp_path / "x"
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(InvalidArgument, match="too many levels"):
        cp.scoped(tmp_path, "loop/x")


def test_resolve_sources_globs_and_errors(tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt", "c.md"):
        (tmp_path / name).write_text(name)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "e.txt").write_text("e")
    assert [n for n, _ in cp.resolve_sources(tmp_path, ["*.txt"], cmd="COPY")] == ["a.txt", "b.txt"]
    assert [n for n, _ in cp.resolve_sources(tmp_path, ["*/e.txt", "./c.md"], cmd="COPY")] == ["d/e.txt", "c.md"]
    assert [n for n, _ in cp.resolve_sources(tmp_path, ["../../c.md"], cmd="COPY")] == ["c.md"]
    with pytest.raises(NotFound, match="no source files were specified"):
        cp.resolve_sources(tmp_path, ["*.nope"], cmd="COPY")
    with pytest.raises(NotFound, match="ADD failed: file not found in build context"):
        cp.resolve_sources(tmp_path, ["nope"], cmd="ADD")


def test_source_digest_ignores_mtime_not_content_or_mode(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("1")
    items = [("f", f)]
    first = cp.source_digest(items)
    os.utime(f, (1, 1))
    assert cp.source_digest(items) == first
    os.chmod(f, 0o600)
    assert cp.source_digest(items) != first
    os.chmod(f, 0o644)
    f.write_text("2")
    assert cp.source_digest(items) != first
    os.chmod(f, 0o664)
    normalized = cp.source_digest(items, normalize_modes=True)
    os.chmod(f, 0o644)
    assert cp.source_digest(items, normalize_modes=True) == normalized


def test_cache_lookup_record_and_why(tmp_path: Path) -> None:
    cache = BuildCache(Database.open(tmp_path / "db"))
    key = StepKey("sha256:p", "COPY a /a", {"sources": "abc"})
    assert cache.lookup(key) is None
    assert "no cached step on parent" in cache.why_missed(key)
    cache.record(key, "sha256:img")
    assert cache.lookup(key) == "sha256:img"
    other = StepKey("sha256:p", "COPY a /a", {"sources": "def"})
    assert cache.why_missed(other) == "changed: sources"
    assert "instruction changed" in cache.why_missed(StepKey("sha256:p", "COPY b /b", {}))
    assert cache.drop_images({"sha256:img"}) == 1 and cache.lookup(key) is None
    # keys persist: a new BuildCache on the same database finds them
    cache.record(key, "sha256:img2")
    again = BuildCache(Database.open(tmp_path / "db"))
    assert again.lookup(key) == "sha256:img2"


def test_config_steps_and_history_text() -> None:
    state = ConfigState({"Cmd": ["sh"], "Env": ["PATH=/bin"]})
    assert state.apply(step("ENV A=1 B=2")) == "ENV A=1 B=2"
    assert state.config["Env"] == ["PATH=/bin", "A=1", "B=2"]
    assert nop(state.config, "ENV A=1") == "/bin/sh -c #(nop)  ENV A=1"
    assert nop1(state.config, "WORKDIR /a") == "/bin/sh -c #(nop) WORKDIR /a"
    state.apply(step("ENTRYPOINT top"))
    assert state.config["Entrypoint"] == ["/bin/sh", "-c", "top"] and state.config["Cmd"] is None
    state.apply(step('CMD ["x"]'))
    state.apply(step('ENTRYPOINT ["y"]'))
    assert state.config["Cmd"] == ["x"]  # CMD set in this Dockerfile survives a later ENTRYPOINT
    assert state.apply(step("VOLUME /a /b")) == "VOLUME [/a /b]"
    assert state.apply(step("EXPOSE 80 90/udp")) == "EXPOSE 80 90/udp"
    assert state.config["ExposedPorts"] == {"80/tcp": {}, "90/udp": {}}
    state.apply(step("WORKDIR /a"))
    state.apply(step("WORKDIR b/../c"))
    assert state.config["WorkingDir"] == "/a/c"


def test_users(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nappg:x:1001:\nextra:x:2000:app\n")
    assert resolve_user(tmp_path, "app", supplementary=True) == resolve_user(tmp_path, "1000", supplementary=True)
    assert resolve_user(tmp_path, "app", supplementary=True).additional_gids == (2000,)
    assert resolve_user(tmp_path, "app:extra").gid == 2000
    assert resolve_user(tmp_path, "4242").gid == 0
    assert chown_identity(tmp_path, "app").gid == 1000  # --chown without a group: GID = UID
    assert chown_identity(tmp_path, "5:appg") == chown_identity(tmp_path, "5:1001")
    with pytest.raises(InvalidArgument, match="unable to find user nobody"):
        resolve_user(tmp_path, "nobody")
    with pytest.raises(InvalidArgument, match="unable to find group nogroup"):
        chown_identity(tmp_path, "app:nogroup")


def test_post_build_query() -> None:
    q = MultiDict([("t", "a:1"), ("t", "b"), ("buildargs", '{"X": "1", "Y": null}'), ("labels", '{"l": "v"}'),
                   ("nocache", "1"), ("q", "true"), ("networkmode", "none"), ("memory", "1048576"),
                   ("cachefrom", '["c"]'), ("dockerfile", "sub/Dockerfile"), ("target", "t1")])
    opts, dockerfile, quiet = options(q)
    assert opts.tags == ["a:1", "b"] and opts.build_args == {"X": "1"} and opts.labels == {"l": "v"}
    assert opts.no_cache and quiet and opts.network == "none" and opts.resources.memory == 1 << 20
    assert opts.cache_from == ["c"] and dockerfile == "sub/Dockerfile" and opts.target == "t1"
    with pytest.raises(NotImplementedFeature):
        options(MultiDict([("networkmode", "container:x")]))
    assert options(MultiDict([("remote", "https://github.com/x/y.git")]))[0].tags == []  # fetched by the daemon
    with pytest.raises(InvalidArgument, match="could not be recognized as URL"):
        options(MultiDict([("remote", "ftp://x/ctx.tar")]))
    with pytest.raises(InvalidArgument, match="invalid buildargs JSON"):
        options(MultiDict([("buildargs", "{")]))


def test_go_formats_in_history() -> None:
    from sampan.build.configsteps import go_duration, go_rune

    assert [go_duration(n) for n in (0, 500_000_000, 1_500_000_000, 300 * 10**9, 3723 * 10**9, 1500)] == \
        ["0s", "500ms", "1.5s", "5m0s", "1h2m3s", "1.5µs"]
    assert [go_rune(n) for n in (0, 3, 7, 65)] == ["'\\x00'", "'\\x03'", "'\\a'", "'A'"]
    state = ConfigState({})
    text = state.apply(step("HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 CMD wget x || exit 1"))
    # as dockerd 20.10 records it (checked against it in tests/e2e/test_build_peers.py)
    assert text == 'HEALTHCHECK &{["CMD-SHELL" "wget x || exit 1"] "30s" "3s" "10s" \'\\x03\'}'


def test_cli_context_and_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import tarfile

    from sampan.cli import build as cli

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM x\n")
    (ctx / "keep").write_text("k")
    (ctx / "skip.log").write_text("s")
    (ctx / ".dockerignore").write_text("*.log\nDockerfile\n")
    outside = tmp_path / "other.Dockerfile"
    outside.write_text("FROM y\n")

    def names(path: str, dockerfile: str, stdin: bytes = b"") -> tuple[list[str], str]:
        body, name, _ = cli._context_tar(path, dockerfile, io.BytesIO(stdin))
        with body, tarfile.open(fileobj=body, mode="r|*") as tar:
            return sorted(m.name for m in tar), name

    listed, name = names(str(ctx), "")
    assert listed == [".dockerignore", "Dockerfile", "keep"] and name == "Dockerfile"  # always sent
    listed, name = names(str(ctx), str(outside))
    assert name.startswith(".dockerfile.") and name in listed
    listed, name = names("-", "", b"FROM z\n")  # a plain Dockerfile on stdin
    assert listed == ["Dockerfile"] and name == "Dockerfile"
    assert cli._bytes("64m", "memory") == 64 << 20 and cli._bytes("1g", "memory") == 1 << 30
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "5")
    monkeypatch.setenv("FROMENV", "e")
    assert cli._build_args(["A=1", "FROMENV", "UNSET_ANYWHERE"]) == {"SOURCE_DATE_EPOCH": "5", "A": "1", "FROMENV": "e"}
    with pytest.raises(InvalidArgument, match="unable to prepare context"):
        cli._context_tar(str(tmp_path / "nope"), "", io.BytesIO())
