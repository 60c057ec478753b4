"""The commands end to end through ``run()`` against a fake daemon (mock transport, no sockets)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from sampan.cli.context import Context, GlobalOptions
from sampan.cli.main import main, report, run
from sampan.client.client import Client
from sampan.client.testing import MockTransport
from sampan.client.transport import Request

IMAGE_ID = "sha256:" + "a" * 64
IMAGE = {"Id": IMAGE_ID, "RepoTags": ["busybox:latest"], "RepoDigests": [], "Created": int(time.time()) - 90,
         "Size": 4261205, "SharedSize": -1, "Containers": -1}
INSPECT = {"Id": IMAGE_ID, "RepoTags": ["busybox:latest"], "Config": {"Cmd": ["sh"], "Labels": {"k": "v"}},
           "Os": "linux", "Size": 4261205}


class FakeDaemon:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []

    def __call__(self, req: Request, body: bytes) -> tuple[int, dict[str, str], Any]:
        self.seen.append((req.method, req.target, body))
        path = req.target.split("?")[0]
        route = (req.method, path)
        if route == ("GET", "/version"):
            return 200, {}, json.dumps({"Platform": {"Name": "sampan"}, "Components": [
                {"Name": "Engine", "Version": "0.1.0", "Details": {"ApiVersion": "1.51", "MinAPIVersion": "1.24",
                 "GoVersion": "python3.11.7", "Os": "linux", "Arch": "amd64", "Experimental": "false"}}],
                "Version": "0.1.0", "ApiVersion": "1.51"}).encode()
        if route == ("GET", "/images/json"):
            return 200, {}, json.dumps([IMAGE]).encode()
        if route == ("GET", "/images/busybox/json"):
            return 200, {}, json.dumps(INSPECT).encode()
        if req.method == "GET" and path.endswith("/json") and path.startswith("/images/"):
            name = path[len("/images/") : -len("/json")]
            return 404, {}, json.dumps({"message": f"No such image: {name}:latest"}).encode()
        if route == ("GET", "/images/busybox/history"):
            return 200, {}, json.dumps([{"Id": IMAGE_ID, "Created": 0, "CreatedBy": "", "Size": 4261205,
                                         "Comment": "Imported from -", "Tags": ["busybox:latest"]}]).encode()
        if route == ("POST", "/images/busybox/tag"):
            return 201, {}, b""
        if route == ("DELETE", "/images/busybox"):
            return 200, {}, json.dumps([{"Untagged": "busybox:latest"}, {"Deleted": IMAGE_ID}]).encode()
        if route == ("DELETE", "/images/used"):
            return 409, {}, b'{"message":"conflict: unable to remove repository reference \\"used\\""}'
        if route == ("POST", "/images/prune"):
            return 200, {}, json.dumps({"ImagesDeleted": [{"Deleted": IMAGE_ID}], "SpaceReclaimed": 4261205}).encode()
        if route == ("POST", "/images/load"):
            return 200, {}, [b'{"stream":"Loaded image: busybox:latest\\n"}\n']
        if route == ("POST", "/images/create"):
            if body == b"bad":
                return 200, {}, [b'{"errorDetail":{"message":"archive/tar: invalid tar header"},"error":"x"}\n']
            return 200, {}, [b'{"status":"' + IMAGE_ID.encode() + b'"}\n']
        if route == ("GET", "/images/busybox/get"):
            return 200, {}, [b"TAR", b"DATA"]
        return 404, {}, b'{"message":"page not found"}'


class Harness:
    def __init__(self) -> None:
        self.daemon = FakeDaemon()
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.stdin = io.StringIO("")

    def make(self, options: GlobalOptions) -> Context:
        ctx = Context(options, stdout=self.stdout, stderr=self.stderr, stdin=self.stdin, environ={})
        ctx._client = Client(MockTransport(self.daemon))
        return ctx

    def __call__(self, *argv: str) -> int:
        try:
            return run(list(argv), make_context=self.make)
        except Exception as exc:
            return report(exc, self.stderr)


@pytest.fixture
def cli() -> Harness:
    return Harness()


def test_version_has_client_and_server_sections(cli: Harness) -> None:
    assert cli("version") == 0
    text = cli.stdout.getvalue()
    assert text.startswith("Client:\n Version:           0.1.0\n API version:       1.51\n")
    assert "\nServer: sampan\n Engine:\n  Version:          0.1.0\n  API version:      1.51 (minimum version 1.24)\n" in text
    assert cli.daemon.seen == [("GET", "/version", b"")]


def test_version_format(cli: Harness) -> None:
    assert cli("version", "--format", "{{.Server.Version}} {{.Client.ApiVersion}}") == 0
    assert cli.stdout.getvalue() == "0.1.0 1.51\n"


def test_images_table_quiet_and_filters(cli: Harness) -> None:
    assert cli("images") == 0
    lines = cli.stdout.getvalue().splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert lines[1].split() == ["busybox", "latest", "a" * 12, "About", "a", "minute", "ago", "4.26MB"]
    cli.stdout.seek(0)
    cli.stdout.truncate()
    assert cli("image", "ls", "-q", "--filter", "dangling=false", "busy*") == 0
    assert cli.stdout.getvalue() == "a" * 12 + "\n"
    target = cli.daemon.seen[-1][1]
    assert "filters=" in target and "dangling" in target and "reference" in target


def test_inspect_and_format(cli: Harness) -> None:
    assert cli("image", "inspect", "busybox") == 0
    assert json.loads(cli.stdout.getvalue()) == [INSPECT]
    cli.stdout.seek(0)
    cli.stdout.truncate()
    assert cli("inspect", "-f", '{{.Os}} {{index .Config.Labels "k"}} {{json .Config.Cmd}}', "busybox") == 0
    assert cli.stdout.getvalue() == 'linux v ["sh"]\n'


def test_inspect_missing_prints_empty_array_and_error(cli: Harness) -> None:
    assert cli("inspect", "nope") == 1
    assert cli.stdout.getvalue() == "[]\n"
    assert cli.stderr.getvalue() == "Error: No such object: nope\n"
    cli.stderr.seek(0)
    cli.stderr.truncate()
    assert cli("image", "inspect", "nope") == 1
    assert cli.stderr.getvalue() == "Error response from daemon: No such image: nope:latest\n"


def test_history_tag_rmi(cli: Harness) -> None:
    assert cli("history", "busybox") == 0
    assert cli.stdout.getvalue().splitlines()[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert cli("tag", "busybox", "localhost:5000/bb:v1") == 0
    assert cli.daemon.seen[-1][1] == "/images/busybox/tag?repo=localhost%3A5000%2Fbb&tag=v1"
    cli.stdout.seek(0)
    cli.stdout.truncate()
    assert cli("rmi", "busybox", "used") == 1
    assert cli.stdout.getvalue() == f"Untagged: busybox:latest\nDeleted: {IMAGE_ID}\n"
    assert cli.stderr.getvalue().startswith("Error response from daemon: conflict: unable to remove")


def test_prune_prompts_unless_forced(cli: Harness) -> None:
    cli.stdin = io.StringIO("n\n")
    assert cli("image", "prune") == 0
    assert cli.stdout.getvalue() == (
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    )
    assert not any(t.startswith("/images/prune") for _, t, _ in cli.daemon.seen)
    cli.stdout.seek(0)
    cli.stdout.truncate()
    assert cli("image", "prune", "-f") == 0
    assert cli.stdout.getvalue() == f"Deleted Images:\ndeleted: {IMAGE_ID}\n\nTotal reclaimed space: 4.261MB\n"


def test_save_writes_atomically(cli: Harness, tmp_path: Path) -> None:
    out = tmp_path / "bb.tar"
    assert cli("save", "-o", str(out), "busybox") == 0
    assert out.read_bytes() == b"TARDATA"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bb.tar"]
    assert cli("save", "-o", str(tmp_path / "no" / "x.tar"), "busybox") == 1
    assert "does not exist" in cli.stderr.getvalue()


def test_load_and_import(cli: Harness, tmp_path: Path) -> None:
    tar = tmp_path / "rootfs.tar"
    tar.write_bytes(b"tarbytes")
    assert cli("load", "-i", str(tar)) == 0
    assert cli.stdout.getvalue() == "Loaded image: busybox:latest\n"
    assert cli.daemon.seen[-1][2] == b"tarbytes"
    assert cli("import", "-c", 'CMD ["sh"]', "-m", "hi", str(tar), "bb:1") == 0
    assert cli.stdout.getvalue().endswith(IMAGE_ID + "\n")
    assert "changes=CMD%20%5B%22sh%22%5D" in cli.daemon.seen[-1][1]
    tar.write_bytes(b"bad")
    assert cli("import", str(tar)) == 1
    assert cli.stderr.getvalue() == "sampan: archive/tar: invalid tar header\n"


def test_import_url_is_refused(cli: Harness) -> None:
    assert cli("import", "http://example.com/rootfs.tar") == 1
    assert "importing from a URL is not supported" in cli.stderr.getvalue()
    assert cli.daemon.seen == []


@pytest.mark.parametrize(
    "argv,code,stderr",
    [
        (["images", "--bogus"], 125, "unknown flag: --bogus\n\nUsage:  sampan images [OPTIONS] [REPOSITORY[:TAG]]\n\n"
         "Run 'sampan images --help' for more information\n"),
        (["tag", "a"], 1, "sampan: 'sampan tag' requires 2 arguments\n"),
        (["images", "--filter", "x"], 125, 'invalid argument "x" for "-f, --filter" flag: bad format of filter'),
        (["nosuch"], 1, "sampan: unknown command: sampan nosuch"),
        (["--nope", "images"], 125, "unknown flag: --nope"),
        (["images", "--format", "{{.Nope"], 1, "template parsing error"),
    ],
)
def test_usage_errors(cli: Harness, argv: list[str], code: int, stderr: str) -> None:
    assert cli(*argv) == code
    assert cli.stderr.getvalue().startswith(stderr)


def test_help_everywhere(cli: Harness) -> None:
    for argv in (["--help"], ["images", "--help"], ["image"], ["system", "df", "-h"], ["save", "--help"]):
        assert cli(*argv) == 0
    text = cli.stdout.getvalue()
    assert "Usage:  sampan [OPTIONS] COMMAND" in text and "Usage:  sampan images [OPTIONS] [REPOSITORY[:TAG]]" in text
    assert "Usage:  sampan image COMMAND" in text and "Usage:  sampan system df [OPTIONS]" in text


def test_main_reports_unreachable_daemon(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["-H", f"unix://{tmp_path}/none.sock", "images"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"Cannot connect to the sampan daemon at unix://{tmp_path}/none.sock. Is the sampan daemon running?\n"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_save_refuses_a_terminal_and_load_an_interactive_stdin(cli: Harness) -> None:
    cli.stdout = _Tty()
    assert cli("save", "busybox") == 1
    assert cli.stderr.getvalue() == "sampan: cowardly refusing to save to a terminal. Use the -o flag or redirect\n"
    cli.stdin = _Tty()
    assert cli("load") == 1
    assert "requested load from stdin, but stdin is empty" in cli.stderr.getvalue()
    assert cli.daemon.seen == []


def test_tls_flags_need_a_tcp_address(cli: Harness) -> None:
    from sampan.cli.context import Context as RealContext

    options = GlobalOptions()
    options.tlsverify = True
    ctx = RealContext(options, environ={"SAMPAN_HOST": "tcp://127.0.0.1:2376"})
    tls = ctx.tls_config(ctx.address())
    assert tls is not None and tls.verify
    ctx = RealContext(options, environ={})
    with pytest.raises(Exception, match="--tls options need a tcp:// daemon address"):
        ctx.client()
    assert RealContext(GlobalOptions(), environ={"DOCKER_HOST": "tcp://x:1"}).address().is_default


def test_progress_plain_and_on_a_terminal() -> None:
    from sampan.cli.progress import display

    messages = [
        {"status": "Loading layer", "id": "abc", "progressDetail": {"current": 500, "total": 1000}},
        {"status": "Loading layer", "id": "def", "progressDetail": {"current": 10, "total": 1000}},
        {"status": "Loading layer", "id": "abc", "progressDetail": {"current": 1000, "total": 1000}},
        {"stream": "Loaded image: busybox:latest\n"},
        {"status": "Done", "id": "abc"},
    ]
    plain = io.StringIO()
    display(messages, plain, tty=False)
    assert plain.getvalue() == "Loaded image: busybox:latest\nabc: Done\n"
    term = io.StringIO()
    display(messages, term, tty=True)
    text = term.getvalue()
    assert "\x1b[1A" in text and "\x1b[2A" in text and "abc: Loading layer     500B/1kB" in text
    with pytest.raises(Exception, match="boom"):
        display([{"errorDetail": {"message": "boom"}, "error": "boom"}], io.StringIO(), tty=False)


def test_version_path_imports_no_server_stack(tmp_path: Path) -> None:
    """The acceptance's speed rule: the CLI path imports no HTTP server stack, asyncio or rich."""
    import subprocess
    import sys

    from tests.daemon_fixture import REPO

    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sampan.cli", "-H", f"unix://{tmp_path}/none.sock", "version"],
        capture_output=True, text=True, timeout=60, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1 and "Cannot connect to the sampan daemon" in proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "sampan.client.transport" in imported
    forbidden = {"asyncio", "aiohttp", "rich", "http.client", "http.server", "argparse", "urllib.request",
                 "sampan.api.app", "sampan.engine", "sampan.daemon", "subprocess", "ssl"}
    assert not imported & forbidden


def test_unexpected_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import sampan.cli.main as cli_main

    def broken(argv: list[str], **kwargs: object) -> int:
        raise ValueError("bad thing")

    monkeypatch.setattr(cli_main, "run", broken)
    assert main(["images"]) == 1
    assert capsys.readouterr().err == "sampan: unexpected error: ValueError: bad thing\n"
    monkeypatch.setattr(cli_main, "run", lambda argv, **kw: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert main(["images"]) == 130
