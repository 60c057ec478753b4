"""Helpers for the registry client's tests: a local engine (store + DistributionService), a TCP
proxy that counts the bytes a registry serves and the Range requests it gets, and a 200 MiB
single-layer image.  Imported by name (pytest puts this directory on the path)."""

from __future__ import annotations

import gzip
import io
import os
import socket
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sampan.distribution.http import RegistryOptions
from sampan.engine.distribution import DistributionService
from sampan.engine.events import EventBus
from sampan.image.store import ImageStore
from sampan.storage.db import Database

CACHE = Path(os.environ.get("SAMPAN_TEST_CACHE", "/var/tmp/sampan-test-cache"))


@dataclass
class LocalEngine:
    root: Path
    db: Database
    store: ImageStore
    dist: DistributionService

    def close(self) -> None:
        self.dist.close()
        self.db.close()


def local_engine(root: Path, options: RegistryOptions | None = None) -> LocalEngine:
    root.mkdir(parents=True, exist_ok=True)
    db = Database.open(root / "sampan.db")
    store = ImageStore.open(root, db=db, storage_driver="native")
    return LocalEngine(root, db, store, DistributionService(store, EventBus(), options or RegistryOptions()))


def big_layer(size_mib: int = 200) -> tuple[bytes, bytes]:
    """(gzip blob, raw tar) of a layer holding one file of random bytes (cached on disk)."""
    path = CACHE / f"registry-client-layer-{size_mib}m.tar.gz"
    raw_path = CACHE / f"registry-client-layer-{size_mib}m.tar"
    if not path.exists() or not raw_path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size_mib << 20)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("blob")
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
        raw = buf.getvalue()
        from isal import igzip

        blob = igzip.compress(raw, compresslevel=1, mtime=0)  # type: ignore[no-untyped-call]
        for p, content in ((raw_path, raw), (path, blob)):
            tmp = p.with_name(p.name + f".{os.getpid()}")
            tmp.write_bytes(content)
            os.replace(tmp, p)
    return path.read_bytes(), raw_path.read_bytes()


def gzip_layer(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0), buf.getvalue()


class CountingProxy:
    """127.0.0.1:<port> -> 127.0.0.1:<target>: counts bytes served to clients, records the
    Range headers of requests, and calls ``on_served(total)`` as bytes pass."""

    def __init__(self, target_port: int, on_served: Callable[[int], None] | None = None) -> None:
        self.target_port = target_port
        self.on_served = on_served
        self.served = 0
        self.ranges: list[str] = []
        self.requests: list[str] = []  # request lines ("PATCH /v2/... HTTP/1.1")
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, upstream]
            for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                t = threading.Thread(target=self._pump, args=(src, dst, up), daemon=True)
                t.start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while True:
                data = src.recv(1 << 20)
                if not data:
                    break
                if upstream:
                    for line in data.split(b"\r\n"):
                        if line.lower().startswith(b"range:"):
                            self.ranges.append(line.split(b":", 1)[1].strip().decode())
                        elif line.split(b" ", 1)[0] in (b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE"):
                            self.requests.append(line.decode(errors="replace"))
                dst.sendall(data)
                if not upstream:
                    with self._lock:
                        self.served += len(data)
                        total = self.served
                    if self.on_served is not None:
                        self.on_served(total)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for s in self._socks:
                try:
                    s.close()
                except OSError:
                    pass


class RedirectingFront:
    """An HTTP server on 127.0.0.1 that answers every GET and HEAD with ``307`` to the same path
    on ``target_port`` (as a registry sends blob downloads to a CDN)."""

    def __init__(self, target_port: int) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        front = self
        self.redirected: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def _redirect(self) -> None:
                front.redirected.append(f"{self.command} {self.path}")
                self.send_response(307)
                self.send_header("Location", f"http://127.0.0.1:{target_port}{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = _redirect
            do_HEAD = _redirect

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
