"""The builder against the runtime backend (no daemon): COPY/ADD semantics, RUN, whiteouts,
config and history, ONBUILD, multi-stage (target, skipped and parallel stages)."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sampan.errors import InvalidArgument, NotFound, NotImplementedFeature, SampanError
from tests.integration.build_support import Lab, lab_for_test

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


@pytest.fixture
def lab(tmp_path: Path, busybox_rootfs_tar: Path) -> Iterator[Lab]:
    yield from lab_for_test(tmp_path, busybox_rootfs_tar)


def layer_entries(lab: Lab, name: str, index: int = -1) -> dict[str, tarfile.TarInfo]:
    image = lab.store.get(name)
    with lab.store.content.open(image.layers[index].blob) as f, tarfile.open(fileobj=f) as tar:
        return {m.name.rstrip("/"): m for m in tar.getmembers()}


def layer_file(lab: Lab, name: str, path: str, index: int = -1) -> bytes:
    image = lab.store.get(name)
    with lab.store.content.open(image.layers[index].blob) as f, tarfile.open(fileobj=f) as tar:
        member = tar.extractfile(path)
        assert member is not None
        return member.read()


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    (c / "dir" / "sub").mkdir(parents=True)
    (c / "dir" / "a.txt").write_text("a\n")
    (c / "dir" / "sub" / "b.txt").write_text("b\n")
    (c / "one.txt").write_text("one\n")
    (c / "two.txt").write_text("two\n")
    os.symlink("one.txt", c / "link")
    os.link(c / "dir" / "a.txt", c / "dir" / "hard.txt")
    os.chmod(c / "two.txt", 0o751)
    os.utime(c / "one.txt", (1_600_000_000, 1_600_000_000))
    return c


def test_copy_semantics(lab: Lab, ctx: Path) -> None:
    lab.build(ctx, "FROM busybox\nCOPY dir /d\n", tags=["t:dir"])
    e = layer_entries(lab, "t:dir")
    assert set(e) >= {"d", "d/a.txt", "d/sub", "d/sub/b.txt", "d/hard.txt"}
    assert "d/dir" not in e  # a directory source copies its contents
    assert e["d/hard.txt"].islnk() or e["d/a.txt"].islnk()  # hard links stay links
    lab.build(ctx, "FROM busybox\nCOPY one.txt two.txt /multi/\nCOPY link /l\n", tags=["t:multi"])
    e = layer_entries(lab, "t:multi", -2)
    assert e["multi/one.txt"].mtime == 1_600_000_000  # mtimes kept
    assert e["multi/two.txt"].mode == 0o751 and e["multi/one.txt"].uid == 0
    assert layer_file(lab, "t:multi", "l") == b"one\n"  # a source symlink is followed
    lab.build(ctx, "FROM busybox\nCOPY --chown=www-data:mail --chmod=600 o*.txt /g/\nCOPY --chown=1234 dir/a.txt /n\n",
              tags=["t:own"])
    e = layer_entries(lab, "t:own", -2)
    assert (e["g/one.txt"].uid, e["g/one.txt"].gid, e["g/one.txt"].mode) == (33, 12, 0o600)
    assert "g/two.txt" not in e
    n = layer_entries(lab, "t:own")["n"]
    assert (n.uid, n.gid) == (1234, 1234)
    lab.build(ctx, "FROM busybox\nWORKDIR /w\nCOPY one.txt rel\nCOPY <<EOF /here.txt\nhello $HOME\nEOF\n", tags=["t:wd"])
    assert "w/rel" in layer_entries(lab, "t:wd", -2)
    assert layer_file(lab, "t:wd", "here.txt") == b"hello \n"


@pytest.mark.parametrize(("dockerfile", "error"), [
    ("COPY nope /x", "COPY failed: file not found in build context or excluded by .dockerignore: stat nope: file does not exist"),
    ("COPY *.nomatch /x", "COPY failed: no source files were specified"),
    ("COPY one.txt two.txt /x", "When using COPY with more than one source file, the destination must be a directory and end with a /"),
    ("COPY --chown=nosuchuser one.txt /x", "unable to find user nosuchuser"),
    ("ADD --checksum=sha256:00 one.txt /x", "checksum can't be specified for non-HTTP(S) sources"),
    ("RUN exit 5", "The command '/bin/sh -c exit 5' returned a non-zero code: 5"),
    ("RUNN x", "unknown instruction: RUNN"),
    ("RUN --security=insecure true", "security.insecure"),
    ("RUN --mount=type=secret,id=t,required true", "builds get no secrets"),
    ("RUN --mount=type=bind,source=nope,target=/x true", "RUN --mount failed: file not found"),
])
def test_step_errors(lab: Lab, ctx: Path, dockerfile: str, error: str) -> None:
    with pytest.raises((InvalidArgument, NotFound, NotImplementedFeature)) as info:
        lab.build(ctx, f"FROM busybox\n{dockerfile}\n")
    assert error in str(info.value)
    # nothing left behind: no work snapshot, no mount
    assert not [s for s in lab.store.snapshotter.walk() if s.name.startswith("build-")]


def test_missing_base_image(lab: Lab, ctx: Path) -> None:
    with pytest.raises(NotFound):
        lab.build(ctx, "FROM nosuch:1\n")


def test_run_whiteouts_user_workdir_env(lab: Lab, ctx: Path) -> None:
    lab.build(ctx, "FROM busybox\nENV GREETING=hey\nARG WHO=me\nWORKDIR /srv\nUSER www-data\n"
                   "RUN id -u > /tmp/uid; pwd > /tmp/pwd; echo $GREETING $WHO > /tmp/env\n"
                   "USER root\nRUN rm -rf /etc/group /var/www\n",
              tags=["t:run"], build_args={"WHO": "you"})
    assert layer_file(lab, "t:run", "tmp/uid", -2) == b"33\n"
    assert layer_file(lab, "t:run", "tmp/pwd", -2) == b"/srv\n"
    assert layer_file(lab, "t:run", "tmp/env", -2) == b"hey you\n"
    e = layer_entries(lab, "t:run")
    assert {"etc/.wh.group", "var/.wh.www"} <= set(e)
    history = lab.store.get("t:run").config["history"]
    assert history[-3]["created_by"].startswith("|1 WHO=you /bin/sh -c id -u")
    assert history[1] == {"created": history[1]["created"], "created_by": "/bin/sh -c #(nop)  ENV GREETING=hey",
                          "empty_layer": True}


def test_network_none_has_only_loopback(lab: Lab, ctx: Path) -> None:
    lab.build(ctx, "FROM busybox\nRUN ls /sys/class/net > /nets\n", tags=["t:net"], network="none")
    assert layer_file(lab, "t:net", "nets") == b"lo\n"


def test_config_instructions(lab: Lab, ctx: Path) -> None:
    lab.build(ctx, 'FROM busybox\nMAINTAINER Jane <j@x>\nLABEL a=1 "b c"=2\nEXPOSE 80 53/udp\nVOLUME ["/v1", "/v2"]\n'
                   'STOPSIGNAL SIGINT\nSHELL ["/bin/sh", "-ec"]\nHEALTHCHECK --interval=5s --retries=2 CMD [\"true\"]\n'
                   'ENTRYPOINT echo hi\nONBUILD RUN echo child > /child\n', tags=["t:cfg"])
    image = lab.store.get("t:cfg")
    c = image.config["config"]
    assert image.config["author"] == "Jane <j@x>"
    assert c["Labels"] == {"a": "1", "b c": "2"}
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert c["Volumes"] == {"/v1": {}, "/v2": {}}
    assert c["StopSignal"] == "SIGINT"
    assert c["Shell"] == ["/bin/sh", "-ec"]
    assert c["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 2}
    assert c["Entrypoint"] == ["/bin/sh", "-ec", "echo hi"]
    assert c["Cmd"] is None
    assert c["OnBuild"] == ["RUN echo child > /child"]
    assert len(image.layers) == 1  # metadata only
    # ONBUILD triggers run in the child and are not inherited
    lab.build(ctx, "FROM t:cfg\nLABEL z=1\n", tags=["t:child"])
    assert "# Executing 1 build trigger" in lab.text
    child = lab.store.get("t:child")
    assert not child.config["config"].get("OnBuild")
    assert layer_file(lab, "t:child", "child") == b"child\n"


def test_multistage_target_skip_and_parallel(lab: Lab, ctx: Path, names: object) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # "listener" waits for "talker": built one after the other, this build would time out
    dockerfile = f"""FROM busybox AS listener
RUN timeout 20 nc -l -p {port} < /dev/zero | head -c 5 > /got
FROM busybox AS talker
RUN for i in $(seq 100); do echo ping | nc 127.0.0.1 {port} > /dev/null && break; sleep 0.1; done; echo sent > /sent
FROM busybox AS broken
RUN exit 1
FROM busybox AS final
COPY --from=listener /got /got
COPY --from=talker /sent /sent
COPY --from=0 /got /got0
"""
    t0 = time.monotonic()
    lab.build(ctx, dockerfile, tags=["t:ms"], target="final")
    assert time.monotonic() - t0 < 20
    assert layer_file(lab, "t:ms", "got", -3) == b"ping\n"
    assert "RUN exit 1" not in lab.text  # the unused stage was skipped
    with pytest.raises(SampanError, match="non-zero code: 1"):
        lab.build(ctx, dockerfile, target="broken")


class _Files(http.server.BaseHTTPRequestHandler):
    payloads: dict[str, bytes] = {}

    def do_GET(self) -> None:
        data = self.payloads.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_files() -> Iterator[tuple[str, dict[str, bytes]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Files.payloads
    finally:
        server.shutdown()
        server.server_close()


def test_add_archive_and_url(lab: Lab, ctx: Path, http_files: tuple[str, dict[str, bytes]]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("pkg/file")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"pkg"))
    (ctx / "pkg.tar.gz").write_bytes(buf.getvalue())
    url, payloads = http_files
    payloads["/data.bin"] = b"remote data"
    payloads["/remote.tar.gz"] = buf.getvalue()
    digest = "sha256:" + hashlib.sha256(b"remote data").hexdigest()
    lab.build(ctx, f"FROM busybox\nADD pkg.tar.gz /opt/\nADD {url}/remote.tar.gz /r/\n"
                   f"ADD --checksum={digest} {url}/data.bin /dl/\n", tags=["t:add"])
    assert layer_file(lab, "t:add", "r/remote.tar.gz", -2) == buf.getvalue()  # a remote archive stays a file
    assert layer_file(lab, "t:add", "opt/pkg/file", -3) == b"pkg"
    e = layer_entries(lab, "t:add")
    assert e["dl/data.bin"].mode == 0o600
    assert e["dl/data.bin"].mtime == 1445412480
    with pytest.raises(InvalidArgument, match=r"digest|expected"):
        lab.build(ctx, f"FROM busybox\nADD --checksum=sha256:{'0' * 64} {url}/data.bin /dl/\n")


def test_copy_exclude_and_parents(lab: Lab, ctx: Path) -> None:
    """BuildKit's COPY --exclude (ignore-file patterns) and --parents (keep source dirs)."""
    (ctx / "docs" / "tmp").mkdir(parents=True)
    (ctx / "docs" / "a.md").write_text("md")
    (ctx / "docs" / "a.txt").write_text("txt")
    (ctx / "docs" / "tmp" / "x").write_text("x")
    (ctx / "a" / "b").mkdir(parents=True)
    (ctx / "a" / "b" / "f").write_text("f")
    lab.build(ctx, "FROM busybox\nCOPY --exclude=*.md --exclude=tmp docs/ /docs/\n"
                   "COPY --parents ./a/b/ one.txt dir/sub/b.txt /dst/\n", tags=["t:ex"])
    e = layer_entries(lab, "t:ex", -2)
    assert "docs/a.txt" in e and "docs/a.md" not in e and "docs/tmp" not in e
    e = layer_entries(lab, "t:ex")
    assert {"dst/a/b/f", "dst/one.txt", "dst/dir/sub/b.txt"} <= set(e), sorted(e)


def test_run_resources(lab: Lab, ctx: Path) -> None:
    """--memory, --cpu-shares, --shm-size reach RUN steps (cgroups of the step's container)."""
    from sampan.build.backend import Resources

    lab.build(ctx, "FROM busybox\nRUN cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max"
                   " 2>/dev/null; df -k /dev/shm | tail -1 | awk '{print $2}'; true\n",
              resources=Resources(memory=64 << 20, cpu_shares=512, shm_size=8 << 20))
    assert "67108864\n" in lab.text
    assert "8192\n" in lab.text


def test_cancelled_build_stops_between_steps(lab: Lab, ctx: Path) -> None:
    from sampan.build.builder import Builder, BuildOptions
    from sampan.errors import Unavailable

    steps: list[str] = []
    builder = Builder(lab.backend, lab.cache, log=steps.append, cancelled=lambda: len(steps) > 3)
    with pytest.raises(Unavailable, match="cancelled"):
        builder.build(ctx, BuildOptions(dockerfile="FROM busybox\nENV A=1\nENV B=2\nENV C=3\n"))
    assert not any("ENV C=3" in s for s in steps)
