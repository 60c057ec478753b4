"""Builds the engine for one data root, explicitly (no plugin registry, no globals).

``build(cfg)`` opens ``<data-root>/sampan.db``, opens the image store (choosing the storage
driver), reconciles it with the disk, and wires the services the API serves.  ``close()``
releases what was opened, in reverse order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sampan import errors
from sampan.api.services import Services
from sampan.daemon.config import DaemonConfig
from sampan.distribution.http import RegistryOptions
from sampan.engine.containers import ContainerService
from sampan.engine.distribution import DistributionService
from sampan.engine.events import EventBus
from sampan.engine.images import ImageService
from sampan.engine.networks import NetworkService
from sampan.engine.restore import restore
from sampan.engine.system import SystemService
from sampan.engine.volumes import VolumeService
from sampan.image.store import ImageStore
from sampan.storage.db import Database

log = logging.getLogger("sampand")


@dataclass
class Engine:
    services: Services
    db: Database
    closers: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                close()
        self.db.close()


def daemon_id(data_root: Path) -> str:
    """A stable identifier for this data root (``<data-root>/engine-id``), made once."""
    path = data_root / "engine-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = str(uuid.uuid4())
    tmp = path.with_name(f".engine-id.{os.getpid()}")
    tmp.write_text(value + "\n")
    os.replace(tmp, path)
    return value


def storage_driver_name(store: ImageStore, configured: str | None) -> str:
    """The snapshotter's own name (``overlay`` or ``native``), as ``/info`` reports it."""
    name = getattr(store.snapshotter, "name", None)
    return name if isinstance(name, str) and name else str(configured or "overlay")


def registry_options(cfg: DaemonConfig) -> RegistryOptions:
    return RegistryOptions(
        mirrors=list(cfg.registry_mirrors), insecure=list(cfg.insecure_registries),
        certs_dir=cfg.registry_certs_dir, max_downloads=cfg.max_concurrent_downloads,
        max_uploads=cfg.max_concurrent_uploads,
    )


def build(cfg: DaemonConfig) -> Engine:
    db = Database.open(cfg.data_root / "sampan.db")
    try:
        store = ImageStore.open(cfg.data_root, db=db, storage_driver=cfg.storage_driver)
        store.reconcile()
        events = EventBus()
        images = ImageService(store, events)
        distribution = DistributionService(store, events, registry_options(cfg))
        system = SystemService(
            images,
            events,
            daemon_id=daemon_id(cfg.data_root),
            data_root=cfg.data_root,
            exec_root=cfg.exec_root,
            storage_driver=storage_driver_name(store, cfg.storage_driver),
            debug=cfg.debug,
        )
        volumes = VolumeService(cfg.data_root, db, events)
        containers = ContainerService(
            data_root=cfg.data_root, exec_root=cfg.exec_root, db=db, images=images,
            volumes=volumes, events=events,
        )
        system.containers = containers
        restore(containers)  # live restore: re-adopt what a previous daemon left running
        networks = build_networks(cfg, db, events, containers)
    except BaseException:
        db.close()
        raise
    log.info("data root %s, storage driver %s", cfg.data_root, system.storage_driver)
    services = Services(images=images, system=system, events=events, distribution=distribution,
                        containers=containers, volumes=volumes, networks=networks)
    system.network_info = networks.info
    wire_container_io(services, containers, events)
    services.builds = build_service(cfg, store, db, events, distribution, networks)
    closers = [networks.close, distribution.close, containers.close]
    if services.builds is not None:
        closers.append(services.builds.close)
    return Engine(services, db, closers=closers)


def build_service(cfg: DaemonConfig, store: ImageStore, db: Database, events: EventBus,
                  distribution: DistributionService, networks: NetworkService) -> Any:
    """Builds (``POST /build``): bundles and mounts of RUN steps under ``<exec-root>/build``;
    ``FROM`` of an image that is not local (and ``--pull``) pulls through ``distribution``; RUN
    steps join the default bridge (host networking when the daemon runs with ``--bridge none``)."""
    from sampan.engine.builds import BridgeSteps, BuildService

    steps = BridgeSteps(networks) if networks.cfg.bridge_enabled else None
    return BuildService(store, db, events, state_dir=cfg.exec_root / "build", distribution=distribution,
                        network=steps)


def build_networks(cfg: DaemonConfig, db: Database, events: EventBus, containers: ContainerService) -> NetworkService:
    """The network service, reconciled with the host (bridges, sampan's nft table)."""
    from sampan.engine.network_model import NetworkConfig
    from sampan.network.ipam import DEFAULT_POOLS, parse_pool

    pools = tuple(parse_pool(p) for p in cfg.default_address_pools) or DEFAULT_POOLS
    ncfg = NetworkConfig(exec_root=cfg.exec_root, bridge_name=cfg.bridge, bip=cfg.bip, default_pools=pools,
                         nft=cfg.nft, nft_table=cfg.nft_table, mtu=cfg.mtu, ipv6=cfg.ipv6, fixed_cidr_v6=cfg.fixed_cidr_v6)
    networks = NetworkService(ncfg, db, events)

    def lookup(ref: str) -> tuple[str, str, Path | None]:
        c = containers.get(ref)
        path = networks.netns_path(c.id)
        return c.id, c.name, path if c.state.running and path.exists() else None

    def refresh(cid: str) -> None:
        from sampan.engine.container_network import record_endpoints

        c = containers.get(cid)
        record_endpoints(networks, c)
        containers.save(c)

    def link_aliases(cid: str, network: str) -> dict[str, str]:
        from sampan.engine import links

        try:  # build steps and removed containers have none
            cfg = containers.get(cid).host.endpoints_config.get(network) or {}
            return {alias.lower(): name.lower() for name, alias in map(links.parse, cfg.get("links") or [])}
        except errors.SampanError:
            return {}

    networks.containers = lookup
    networks.link_aliases = link_aliases
    networks.changed = refresh  # type: ignore[method-assign]
    containers.networks = networks
    networks.reconcile()
    return networks


def wire_container_io(services: Services, containers: ContainerService, events: EventBus) -> None:
    """Exec, attach, stats, files and health checks (they build on the container service)."""
    from sampan.engine.archive import ContainerFiles
    from sampan.engine.attach import AttachService
    from sampan.engine.exec import ExecService
    from sampan.engine.health import HealthMonitor
    from sampan.engine.stats import StatsService

    services.execs = ExecService(containers, events)
    services.attach = AttachService(containers)
    services.stats = StatsService(containers)
    services.files = ContainerFiles(containers)
    services.health = HealthMonitor(containers, services.execs, events)
