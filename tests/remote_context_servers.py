"""Loopback servers for the remote build context tests (``build/remote.py``): an http server
in a thread serving files from memory (with a status or a slow body on request), and
``git daemon`` on 127.0.0.1 serving bare repositories made with ``git init`` in a temp dir.

Nothing leaves the machine: every URL is ``http://127.0.0.1:PORT/...`` or
``git://127.0.0.1:PORT/...``."""

from __future__ import annotations

import http.server
import io
import os
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": "/dev/null",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


class Files:
    """What the http server answers: path -> bytes (200), or path -> int (that status)."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes | int] = {}
        self.directory: Path | None = None  # served for paths not in routes (dumb git http)
        self.requests: list[str] = []
        self.agents: list[str] = []  # the User-Agent of each request


@contextmanager
def http_server(files: Files) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` serving ``files`` until the block ends."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(files.directory or "/nonexistent"), **kw)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _route(self, body: bool) -> None:
            files.requests.append(self.path)
            files.agents.append(self.headers.get("User-Agent", ""))
            path = self.path.split("?", 1)[0]
            data = files.routes.get(path)
            if data is None:
                if files.directory is not None:
                    if body:
                        super().do_GET()
                    else:
                        super().do_HEAD()
                    return
                data = 404
            if isinstance(data, int):
                self.send_response(data)
                msg = f"status {data} for {path}\n".encode()
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                if body:
                    self.wfile.write(msg)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._route(True)

        def do_HEAD(self) -> None:
            self._route(False)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def tar_bytes(files: dict[str, bytes], mode: str = "w") -> bytes:
    """A tar (``mode`` ``w``, ``w:gz``, ``w:bz2``, ``w:xz``) of ``files``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def make_repo(base: Path, name: str, commits: list[dict[str, str]], *, branch: str = "main",
              tags: dict[str, int] | None = None) -> Path:
    """A bare repository ``base/name`` (served as ``/name``) with one commit per dict of
    files (each commit's files replace the work tree's), and tags naming commit indexes."""
    work = base / (name + ".work")
    work.mkdir(parents=True)
    git(work, "init", "-q", "-b", branch)
    shas: list[str] = []
    for files in commits:
        for old in list(work.iterdir()):
            if old.name != ".git":
                subprocess.run(["rm", "-rf", str(old)], check=True)
        for rel, text in files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(text)
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"commit {len(shas)}")
        shas.append(git(work, "rev-parse", "HEAD").strip())
    for tag, index in (tags or {}).items():
        git(work, "tag", tag, shas[index])
    bare = base / name
    git(base, "clone", "-q", "--bare", str(work), str(bare))
    git(bare, "update-server-info")  # for the dumb http transport
    return bare


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def git_daemon(base: Path) -> Iterator[str]:
    """``git://127.0.0.1:PORT`` serving the repositories under ``base`` until the block ends."""
    for _attempt in range(5):
        port = _free_port()
        proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--informative-errors", f"--base-path={base}",
             "--listen=127.0.0.1", f"--port={port}", str(base)],
            env={**os.environ, **GIT_ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                up = True
                break
            except OSError:
                time.sleep(0.05)
        if up:
            break
        proc.kill()
        proc.wait()
    else:
        raise RuntimeError("git daemon did not start")
    try:
        yield f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
