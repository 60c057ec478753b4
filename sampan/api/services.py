"""What the API serves (the engine's services) and per-request accessors for handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from sampan import API_VERSION
from sampan.engine.events import EventBus
from sampan.engine.images import ImageService
from sampan.engine.system import SystemService

if TYPE_CHECKING:
    from sampan.engine.archive import ContainerFiles
    from sampan.engine.attach import AttachService
    from sampan.engine.builds import BuildService
    from sampan.engine.containers import ContainerService
    from sampan.engine.distribution import DistributionService
    from sampan.engine.exec import ExecService
    from sampan.engine.health import HealthMonitor
    from sampan.engine.networks import NetworkService
    from sampan.engine.stats import StatsService
    from sampan.engine.volumes import VolumeService


@dataclass
class Services:
    """Built explicitly by ``daemon.wiring``; later issues add containers, networks, volumes."""

    images: ImageService
    system: SystemService
    events: EventBus
    distribution: DistributionService | None = None
    containers: ContainerService | None = None
    volumes: VolumeService | None = None
    execs: ExecService | None = None
    stats: StatsService | None = None
    attach: AttachService | None = None
    files: ContainerFiles | None = None
    networks: NetworkService | None = None
    health: HealthMonitor | None = None
    builds: BuildService | None = None


SERVICES = web.AppKey("services", Services)
API_VERSION_KEY = web.RequestKey("api_version", str)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def api_version(request: web.Request) -> str:
    """The version this request was negotiated at (see ``versions.negotiate``)."""
    version: str = request.get(API_VERSION_KEY, API_VERSION)
    return version
