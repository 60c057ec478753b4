"""``sampan registry serve|gc``: the registry server's own small main.

    sampan registry serve [--addr HOST:PORT] [--storage DIR] [--config FILE] [--readonly]
    sampan registry gc [--dry-run] [--delete-untagged] [--grace SECONDS=600] --storage DIR

The ``sampan`` CLI dispatches ``sampan registry ...`` to :func:`main`; until then run it as
``python -m sampan.registry_main serve ...``.  Like the other entry points beside ``cli/``, it
reads its own configuration file and prints; the server itself lives in
``sampan.distribution.server`` and is imported only when a command needs it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sampan.errors import InvalidConfig, SampanError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sampan registry", description="An OCI Distribution registry")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the registry API and web page")
    s.add_argument("--addr", help="HOST:PORT to listen on (default 127.0.0.1:5000)")
    s.add_argument("--storage", help="storage directory")
    s.add_argument("--config", help="JSON configuration file")
    s.add_argument("--readonly", action="store_true", help="refuse every write (405)")
    g = sub.add_parser("gc", help="delete blobs no manifest references")
    g.add_argument("--storage", required=True, help="storage directory")
    g.add_argument("--dry-run", action="store_true", help="only report what would be deleted")
    g.add_argument("--delete-untagged", action="store_true", help="also delete manifests no tag reaches")
    g.add_argument("--grace", type=float, default=600.0,
                   help="keep blobs younger than this many seconds (default 600: pushes in progress)")
    return p


def _load_config(path: str | None) -> tuple[dict[str, Any], Path]:
    if path is None:
        return {}, Path.cwd()
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as exc:
        raise InvalidConfig("--config", f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidConfig("--config", f"{path} is not valid JSON: {exc}") from None
    return doc, Path(path).resolve().parent


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import signal
    import ssl

    from aiohttp import web

    from sampan.distribution.server import config
    from sampan.distribution.server.app import make_app

    doc, base = _load_config(args.config)
    cfg = config.build(doc, base=base, addr=args.addr, storage=args.storage)
    cfg.readonly = cfg.readonly or args.readonly
    ctx = None
    if cfg.tls_certificate is not None and cfg.tls_key is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(cfg.tls_certificate, cfg.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidConfig("tls", f"cannot load certificate/key: {exc}") from None
    app = make_app(cfg)

    async def run() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, cfg.host, cfg.port, ssl_context=ctx, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise SampanError(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror}") from None
        scheme = "https" if ctx else "http"
        print(f"sampan registry: serving {scheme}://{cfg.host}:{cfg.port}/ from {cfg.storage}",
              file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(run())
    return 0


def _gc(args: argparse.Namespace) -> int:
    from sampan.distribution.server.gc import collect
    from sampan.distribution.server.storage import RegistryStorage

    root = Path(args.storage)
    if not root.is_dir():
        raise InvalidConfig("--storage", f"{root} is not a directory")
    report = collect(RegistryStorage(root), dry_run=args.dry_run,
                     delete_untagged=args.delete_untagged, grace=args.grace)
    verb = "would delete" if report.dry_run else "deleted"
    for repo, digest in report.manifests:
        print(f"{verb} manifest {repo}@{digest}")
    for digest, size in report.blobs:
        print(f"{verb} blob {digest} ({size} bytes)")
    print(f"{report.marked} blobs marked, {len(report.blobs)} blobs {verb} ({report.freed} bytes), "
          f"{len(report.manifests)} manifests {verb}, {report.kept_recent} recent blobs kept, "
          f"{report.uploads} stale uploads {verb}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _serve(args) if args.command == "serve" else _gc(args)
    except SampanError as exc:
        print(f"sampan registry: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the storage directory cannot be created or read
        where = f" {exc.filename}" if exc.filename else ""
        print(f"sampan registry: {exc.strerror or exc}:{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
