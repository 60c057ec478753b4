"""The Engine API route table: one line per endpoint (method, path, handler).

Each path is served both bare (``/images/json``) and with a version prefix
(``/v1.51/images/json``); ``{name:.+}`` lets image names carry slashes
(``localhost:5000/team/app:1``).
"""

from __future__ import annotations

from aiohttp import web

from sampan.api.handlers import (
    build,
    container_files,
    container_io,
    containers,
    distribution,
    exec,
    images,
    networks,
    system,
    volumes,
)

ROUTES: list[tuple[str, str, object]] = [
    ("GET", "/_ping", system.ping),
    ("HEAD", "/_ping", system.ping),
    ("GET", "/version", system.version),
    ("GET", "/info", system.info),
    ("GET", "/events", system.events),
    ("GET", "/system/df", system.disk_usage),
    ("POST", "/build", build.build),
    ("POST", "/build/prune", build.prune),
    ("GET", "/images/json", images.list_images),
    ("POST", "/images/create", images.create),
    ("POST", "/images/load", images.load),
    ("GET", "/images/get", images.get_many),
    ("POST", "/images/prune", images.prune),
    ("GET", "/images/{name:.+}/json", images.inspect),
    ("GET", "/images/{name:.+}/history", images.history),
    ("GET", "/images/{name:.+}/get", images.get_one),
    ("POST", "/images/{name:.+}/tag", images.tag),
    ("POST", "/images/{name:.+}/push", distribution.push),
    ("POST", "/auth", distribution.auth),
    ("GET", "/distribution/{name:.+}/json", distribution.inspect),
    ("DELETE", "/images/{name:.+}", images.remove),
    ("POST", "/containers/create", containers.create),
    ("GET", "/containers/json", containers.list_containers),
    ("POST", "/containers/prune", containers.prune),
    ("GET", "/containers/{id}/json", containers.inspect),
    ("POST", "/containers/{id}/start", containers.start),
    ("POST", "/containers/{id}/stop", containers.stop),
    ("POST", "/containers/{id}/restart", containers.restart),
    ("POST", "/containers/{id}/kill", containers.kill),
    ("POST", "/containers/{id}/pause", containers.pause),
    ("POST", "/containers/{id}/unpause", containers.unpause),
    ("POST", "/containers/{id}/rename", containers.rename),
    ("POST", "/containers/{id}/update", containers.update),
    ("POST", "/containers/{id}/wait", containers.wait),
    ("DELETE", "/containers/{id}", containers.remove),
    ("DELETE", "/containers/{id}/{alias}", containers.remove),  # ?link=1: a legacy link's name
    ("POST", "/containers/{id}/attach", container_io.attach),
    ("GET", "/containers/{id}/attach/ws", container_io.attach_ws),
    ("POST", "/containers/{id}/resize", container_io.resize),
    ("GET", "/containers/{id}/logs", container_io.container_logs),
    ("GET", "/containers/{id}/stats", container_io.stats),
    ("GET", "/containers/{id}/top", container_io.top),
    ("GET", "/containers/{id}/changes", container_files.changes),
    ("HEAD", "/containers/{id}/archive", container_files.archive_head),
    ("GET", "/containers/{id}/archive", container_files.archive_get),
    ("PUT", "/containers/{id}/archive", container_files.archive_put),
    ("GET", "/containers/{id}/export", container_files.export),
    ("POST", "/commit", container_files.commit_container),
    ("POST", "/containers/{id}/exec", exec.create),
    ("POST", "/exec/{id}/start", exec.start),
    ("POST", "/exec/{id}/resize", exec.resize),
    ("GET", "/exec/{id}/json", exec.inspect),
    ("GET", "/volumes", volumes.list_volumes),
    ("POST", "/volumes/create", volumes.create),
    ("POST", "/volumes/prune", volumes.prune),
    ("GET", "/volumes/{name}", volumes.inspect),
    ("DELETE", "/volumes/{name}", volumes.remove),
    ("GET", "/networks", networks.list_networks),
    ("POST", "/networks/create", networks.create),
    ("POST", "/networks/prune", networks.prune),
    ("GET", "/networks/{id}", networks.inspect),
    ("DELETE", "/networks/{id}", networks.remove),
    ("POST", "/networks/{id}/connect", networks.connect),
    ("POST", "/networks/{id}/disconnect", networks.disconnect),
]

VERSION_PREFIX = r"/v{version:[0-9]+\.[0-9]+}"


def add_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        for prefix in ("", VERSION_PREFIX):
            app.router.add_route(method, prefix + path, handler)  # type: ignore[arg-type]
