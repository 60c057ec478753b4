"""``sampand``: the daemon's entry point (flags, locks, listeners, signals).

Start-up, in order, and why:

1. parse the flags and the config file (an error is one line on stderr, exit 1);
2. create the data and exec roots and take the data-root lock (``flock`` on
   ``<data-root>/sampand.lock``, which records our pid): two daemons must never share a
   store, and the lock dies with the process, so a crash never leaves a stale lock;
3. write the pidfile (refused if it names a live process);
4. build the engine (``wiring.build``: database, image store reconciliation, services);
5. listen on every ``-H`` address (unix sockets 0660 root:root; tcp only with mutual TLS);
6. serve until SIGTERM or SIGINT, then close the listeners and remove the sockets and the
   pidfile, close the engine and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sampan import __version__
from sampan.daemon import config as cfgmod
from sampan.daemon.config import DaemonConfig, Listener
from sampan.errors import DataRootLocked, InvalidArgument, SampanError, from_oserror

log = logging.getLogger("sampand")

WORKERS = 64
#: Request bodies are buffered up to twice this before the socket is paused: big enough that the
#: store thread pulls a 200 MiB upload in about 1 MiB steps, not 64 KiB ones.
READ_BUFSIZE = 1 << 20

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR, "fatal": logging.CRITICAL}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sampand",
        description="sampan's daemon: serves Docker's Engine API for one data root.",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--data-root", metavar="PATH", help="root of persisted state (default /var/lib/sampan)")
    p.add_argument("--exec-root", metavar="PATH", help="root of runtime state (default /run/sampan)")
    p.add_argument("-H", "--host", dest="hosts", action="append", metavar="ADDR",
                   help="address to listen on, repeatable: unix:///PATH or tcp://HOST:PORT "
                        "(default unix:///run/sampan/sampan.sock)")
    p.add_argument("-p", "--pidfile", metavar="PATH", help="pid file (default <exec-root>/sampand.pid)")
    p.add_argument("--config-file", metavar="PATH", help="daemon.json-style configuration "
                   "(default /etc/sampan/daemon.json)")
    p.add_argument("-D", "--debug", action="store_true", help="debug logging")
    p.add_argument("-l", "--log-level", metavar="LEVEL", help="debug, info, warn, error or fatal (default info)")
    p.add_argument("-s", "--storage-driver", metavar="DRIVER", help="overlay or native (default: detected)")
    p.add_argument("--tls", action="store_true", help="use TLS (implied by --tlsverify)")
    p.add_argument("--tlsverify", action="store_true", help="use TLS and verify the client certificate")
    p.add_argument("--tlscacert", metavar="PATH", help="trust client certificates signed by this CA")
    p.add_argument("--tlscert", metavar="PATH", help="TLS certificate file")
    p.add_argument("--tlskey", metavar="PATH", help="TLS key file")
    p.add_argument("--registry-mirror", dest="registry_mirrors", action="append", metavar="URL",
                   help="a registry mirror: URL (every registry) or HOST=URL (repeatable)")
    p.add_argument("--insecure-registry", dest="insecure_registries", action="append", metavar="HOST",
                   help="a registry reached without TLS verification: host[:port] or CIDR (repeatable)")
    p.add_argument("--max-concurrent-downloads", type=int, metavar="N", help="layer downloads at once per pull (default 3)")
    p.add_argument("--max-concurrent-uploads", type=int, metavar="N", help="layer uploads at once per push (default 5)")
    p.add_argument("--registry-certs-dir", metavar="PATH",
                   help="per-registry CA certificates, <dir>/<host:port>/ca.crt (default /etc/sampan/certs.d)")
    p.add_argument("-b", "--bridge", metavar="NAME", help="bridge of the default network (default sampan0; none: no default bridge)")
    p.add_argument("--bip", metavar="CIDR", help="address and prefix of the default bridge (e.g. 172.17.0.1/16)")
    p.add_argument("--ipv6", action="store_true", help="IPv6 on the default bridge (needs --fixed-cidr-v6)")
    p.add_argument("--fixed-cidr-v6", metavar="CIDR", help="IPv6 subnet of the default bridge (with --ipv6)")
    p.add_argument("--nft", type=cfgmod.parse_bool, metavar="BOOL",
                   help="manage NAT and published ports with nftables (default true; false: userland proxy)")
    p.add_argument("--nft-table", metavar="NAME", help="sampan's own nftables table (default: inet sampan)")
    p.add_argument("--default-address-pool", dest="default_address_pools", action="append", metavar="base=CIDR,size=N",
                   help="pools networks take subnets from (default: Docker's)")
    p.add_argument("--mtu", type=int, metavar="BYTES", help="MTU of the default bridge and its veths (default 1500)")
    p.add_argument("-v", "--version", action="version", version=f"sampand version {__version__}")
    return p


def load_config(argv: list[str] | None) -> DaemonConfig:
    ns = vars(parser().parse_args(argv))
    explicit = "config_file" in ns
    config_file = Path(ns.pop("config_file", cfgmod.DEFAULT_CONFIG_FILE))
    flags = {key.replace("_", "-"): value for key, value in ns.items()}
    return cfgmod.merge(flags, cfgmod.read_file(config_file, explicit=explicit), file=config_file)


@contextlib.contextmanager
def data_root_lock(root: Path) -> Iterator[None]:
    """Hold ``<root>/sampand.lock`` (flock, with our pid inside) for the daemon's life."""
    path = root / "sampand.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise DataRootLocked(str(root), f"pid {holder}" if holder.isdigit() else "") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def pidfile(path: Path) -> Iterator[None]:
    try:
        old = path.read_text().strip()
    except FileNotFoundError:
        old = ""
    except OSError as exc:
        raise from_oserror(exc, f"read pid file {path}") from exc
    if old.isdigit() and int(old) != os.getpid() and _alive(int(old)):
        raise InvalidArgument(
            f"pid file found, ensure sampand is not running or delete {path} (pid {old} is alive)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_unix_socket(path: str) -> None:
    """Remove a stale socket file; refuse one another process still answers on."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not os.path.lexists(path):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
                raise from_oserror(exc, f"check socket {path}") from exc
        else:
            raise InvalidArgument(f"socket {path} is in use by another daemon")
    os.unlink(path)


def tls_context(cfg: DaemonConfig) -> ssl.SSLContext:
    """Mutual TLS: our certificate, and clients must present one signed by --tlscacert."""
    assert cfg.tlscert and cfg.tlskey and cfg.tlscacert
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cfg.tlscert), str(cfg.tlskey))
        ctx.load_verify_locations(cafile=str(cfg.tlscacert))
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"cannot load TLS files: {exc}") from exc
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def serve(cfg: DaemonConfig, services: Any) -> None:
    from aiohttp import web

    from sampan.api.app import make_app

    # Blocking store work runs in threads; a stalled upload holds its thread until the client
    # goes, so the pool is wide enough that a few of those never starve `images ls`.
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="sampand"))
    app = make_app(services)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=2.0, read_bufsize=READ_BUFSIZE
    )
    await runner.setup()
    sockets: list[str] = []
    try:
        for lis in cfg.listeners:
            await _listen(runner, lis, cfg, sockets)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("sampand %s started (pid %d); API listening on %s", __version__, os.getpid(),
                 ", ".join(str(lis) for lis in cfg.listeners))
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()
        for path in sockets:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


async def _listen(runner: Any, lis: Listener, cfg: DaemonConfig, sockets: list[str]) -> None:
    from aiohttp import web

    if lis.scheme == "unix":
        prepare_unix_socket(lis.path)
        site: web.BaseSite = web.UnixSite(runner, lis.path)
        await site.start()
        sockets.append(lis.path)
        os.chmod(lis.path, 0o660)
        if os.geteuid() == 0:
            os.chown(lis.path, 0, 0)
    else:
        site = web.TCPSite(runner, lis.host, lis.port, ssl_context=tls_context(cfg))
        try:
            await site.start()
        except OSError as exc:
            raise from_oserror(exc, f"listen on {lis}") from exc


def setup_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=LEVELS[level],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run(cfg: DaemonConfig) -> None:
    from sampan.daemon.wiring import build

    cfg.data_root.mkdir(parents=True, exist_ok=True, mode=0o711)
    cfg.exec_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with data_root_lock(cfg.data_root), pidfile(cfg.pidfile_path):
        engine = build(cfg)
        try:
            asyncio.run(serve(cfg, engine.services))
        finally:
            engine.close()


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = load_config(argv)
    except SampanError as exc:
        print(f"sampand: {exc}", file=sys.stderr)
        return 1
    setup_logging(cfg.log_level)
    try:
        run(cfg)
    except SampanError as exc:
        print(f"sampand: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"sampand: {from_oserror(exc, 'start')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
