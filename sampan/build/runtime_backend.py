"""RuntimeBackend: the BuildBackend that runs RUN steps directly with the OCI runtime.

* a work is a snapshot of the image store's snapshotter (overlay, or the copy-based native
  one) prepared on the base's top layer and mounted at ``<state>/works/<key>/rootfs``;
* ``run`` writes an OCI bundle from ``oci.defaults.default_config`` (Docker's default
  capabilities, masked paths and seccomp profile) and runs it with ``sampan-runtime run`` in a
  child process (the runtime makes its caller a child subreaper; keeping that out of the
  daemon is why it is a child), its stdout and stderr streamed back to the build log (stderr
  in red, as dockerd's legacy builder shows it);
* networking: ``bridge`` (the default, as Docker's: the step's network namespace gets an
  endpoint on the engine's default bridge through the :class:`~sampan.build.backend.StepNetwork`
  the daemon gives, so ``apt-get`` reaches the configured mirror through NAT), ``host`` (the
  step shares the host's network namespace; also the fallback for ``bridge`` when no
  StepNetwork was given), ``none`` (a fresh network namespace with only loopback), or the name
  of a user-defined network (an endpoint on it through the StepNetwork, ``/etc/resolv.conf``
  naming its embedded DNS at 127.0.0.11). With
  ``bridge`` and ``host``, ``/etc/resolv.conf`` and ``/etc/hosts`` of the host are bind-mounted
  read-only over the image's when the image has those files (the default bridge uses the host's
  resolvers, as Docker's does);
* with a :class:`~sampan.build.runserver.RunServer` (the daemon's), ``run`` forks the
  container's runtime from that pre-imported process instead (~40 ms less per RUN step);
* ``cancelled`` (the build's client went away): a running RUN step looks at it every 0.1 s;
  once it is true the step's container is SIGKILLed (every process), the runtime deletes it
  (state, cgroup), and ``run`` raises Unavailable: the step commits nothing, and the builder
  releases its work (unmount, snapshot) as after any failed step;
* ``commit`` writes the work's changes with ``storage.archive.write_diff`` (OCI whiteouts,
  sorted, normalized headers, mtimes clamped to SOURCE_DATE_EPOCH) into a content-store blob
  and unpacks it through the store's ``Staging`` as the committed layer of its chain, so the
  image store's own rules (leases, crash safety, reconcile) hold for build layers too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sampan.build.backend import BaseImage, Output, RunSpec, StepNetwork
from sampan.build.runserver import RunServer, kill_step, relay
from sampan.build.users import resolve_user
from sampan.errors import InvalidArgument, NotFound, SampanError, Unavailable, from_oserror
from sampan.image import config as cfg
from sampan.image.schema import LayerRecord
from sampan.image.store import ImageStore
from sampan.image.unpack import LayerBlob, Staging
from sampan.oci.defaults import default_config
from sampan.oci.mediatypes import DOCKER_LAYER
from sampan.storage.archive import write_diff

#: diff_id of a layer tar without entries (1024 zero bytes): Docker's "empty layer".
EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
WORK_PREFIX = "build-"
#: Pulls an image into the store (the engine's registry client), reporting text lines.
Puller = Callable[[str, Callable[[str], None]], None]
#: True once the build should stop (its client went away).
Cancelled = Callable[[], bool]

_RUNTIME_MAIN = str(Path(__file__).resolve().parent.parent / "runtime_main.py")


class RuntimeBackend:
    """See the module docstring.  ``state_dir`` holds bundles, mounts and runtime state."""

    def __init__(self, store: ImageStore, *, state_dir: Path, puller: Puller | None = None,
                 runner: RunServer | None = None, network: StepNetwork | None = None,
                 cancelled: Cancelled | None = None) -> None:
        self.store = store
        self.state_dir = state_dir
        self.puller = puller
        self.runner = runner
        self.network = network
        self.cancelled = cancelled

    @contextmanager
    def session(self) -> Iterator[RuntimeSession]:
        s = RuntimeSession(self.store, self.state_dir, self.puller, self.runner, self.network,
                           cancelled=self.cancelled)
        try:
            yield s
        finally:
            s.close()

    def reconcile(self) -> None:
        """At daemon start: drop works a previous daemon left (mounts, snapshots, bundles)."""
        works = self.state_dir / "works"
        if works.is_dir():
            mounted = _mount_points()
            for d in works.iterdir():
                _unmount(d / "rootfs", mounted.count(str(d / "rootfs")))
                shutil.rmtree(d, ignore_errors=True)
        sn = self.store.snapshotter
        for info in list(sn.walk()):
            if info.name.startswith(WORK_PREFIX) and info.kind.value != "committed":
                with suppress(NotFound):
                    sn.remove(info.name)


def _unmount(target: Path, count: int = 0) -> None:
    """Unmount ``target`` ``count`` times (a bind mount on the same filesystem is invisible
    to ``os.path.ismount``), then while it still is a mount point."""
    import errno

    from sampan._sys.mount import umount

    for _ in range(count):
        try:
            umount(str(target), 2)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOENT):
                break
            raise from_oserror(exc, f"unmount {target}") from exc
    while os.path.ismount(target):
        try:
            umount(str(target), 2)
        except OSError as exc:
            raise from_oserror(exc, f"unmount {target}") from exc


def _drop_copied_up(upper: Path, dirs: list[str]) -> None:
    """Directories overlay copied up only because a mount point was made in them (and removed
    again): empty in the upper dir, they are dropped there so the layer does not list them."""
    for rel in dirs:
        path = upper / rel if rel != "." else upper
        while path != upper:
            try:
                if any(path.iterdir()) or _opaque(path):
                    break
                path.rmdir()
            except OSError:
                break
            path = path.parent


def _opaque(path: Path) -> bool:
    try:
        return bool(os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False))
    except OSError:
        return False


def _mount_points() -> list[str]:
    try:
        with open("/proc/self/mountinfo") as f:
            return [line.split()[4] for line in f]
    except OSError:
        return []


class RuntimeSession:
    """One build's works and staging (thread-safe)."""

    def __init__(self, store: ImageStore, state_dir: Path, puller: Puller | None = None,
                 runner: RunServer | None = None, network: StepNetwork | None = None, *,
                 cancelled: Cancelled | None = None) -> None:
        self.store = store
        self.cancelled = cancelled
        self.puller = puller
        self.runner = runner
        self.network = network
        self.state_dir = state_dir
        self.staging: Staging = store.staging()
        self.lock = threading.Lock()
        self.works: dict[str, str] = {}  # key -> snapshot key
        self.mounted: dict[str, int] = {}  # key -> mounts stacked on its rootfs
        self.releasing: list[threading.Thread] = []
        self.release_errors: list[BaseException] = []
        self.runtime_root = state_dir / "runtime"
        self.mount_points: dict[str, list[Path]] = {}
        self.parent_times: dict[str, list[tuple[Path, int, int]]] = {}
        self.touched: dict[str, list[str]] = {}  # key -> dirs (relative) a mount point was made in

    # ------------------------------------------------------------ images

    def image(self, name: str) -> BaseImage:
        image = self.store.get(name)
        return BaseImage(image.id, image.config, tuple(image.layers), tuple(image.repo_tags))

    def pull(self, name: str, *, output: Callable[[str], None]) -> BaseImage:
        if self.puller is None:
            return self.image(name)
        self.puller(name, output)
        return self.image(name)

    def add_image(self, config: dict[str, Any], layers: list[LayerRecord], *, parent: str) -> BaseImage:
        with self.lock:
            blob = self.staging.put_bytes(cfg.encode(config), what="image config")
            image, _ = self.store.add_image(blob, layers, parent=parent)
        return BaseImage(image.id, image.config, tuple(image.layers), tuple(image.repo_tags))

    def tag(self, image_id: str, references: list[str]) -> list[str]:
        for ref in references:
            self.store.tag(image_id, ref)
        return list(references)

    # ------------------------------------------------------------ works

    def _root(self, key: str) -> Path:
        return self.state_dir / "works" / key / "rootfs"

    def _mount(self, key: str, snap: str, mounts: list[Any]) -> Path:
        from sampan._sys.mount import perform

        target = self._root(key)
        target.mkdir(parents=True, exist_ok=True)
        self.works[key] = snap
        try:
            for m in mounts:
                perform(m, str(target))
                self.mounted[key] = self.mounted.get(key, 0) + 1
        except OSError as exc:
            self.release(key)
            self.releasing.pop().join()
            raise from_oserror(exc, f"mount the build root filesystem {key}") from exc
        return target

    def prepare(self, key: str, base: BaseImage) -> Path:
        snap = WORK_PREFIX + key
        parent = base.layers[-1].chain_id if base.layers else None
        mounts = self.store.snapshotter.prepare(snap, parent)
        return self._mount(key, snap, mounts)

    def view(self, key: str, base: BaseImage) -> Path:
        snap = WORK_PREFIX + key
        parent = base.layers[-1].chain_id if base.layers else None
        mounts = self.store.snapshotter.view(snap, parent)
        return self._mount(key, snap, mounts)

    def release(self, key: str) -> None:
        """Drop a work.  The unmount (~10 ms for an overlay) and the snapshot's removal run in
        the background; ``close`` waits for them."""
        snap = self.works.pop(key, None)
        count = self.mounted.pop(key, 0)

        def drop() -> None:
            root = self._root(key)
            _unmount(root, count)
            shutil.rmtree(root.parent, ignore_errors=True)
            if snap is not None:
                with suppress(NotFound):
                    self.store.snapshotter.remove(snap)

        thread = threading.Thread(target=self._quietly, args=(drop,), name=f"release-{key[:12]}")
        thread.start()
        self.releasing.append(thread)

    def _quietly(self, fn: Any) -> None:
        try:
            fn()
        except (SampanError, OSError) as exc:
            self.release_errors.append(exc)

    def close(self) -> None:
        for key in list(self.works):
            self.release(key)
        for thread in self.releasing:
            thread.join()
        self.staging.close()

    # ------------------------------------------------------------ RUN

    def _bundle(self, key: str, spec: RunSpec, cid: str) -> Path:
        root = self._root(key)
        config = default_config(spec.args, rootfs=str(root), hostname=spec.hostname or cid[:12])
        ident = resolve_user(root, spec.user, supplementary=True) if spec.user else None
        process = config["process"]
        process["env"] = list(spec.env)
        process["cwd"] = spec.workdir or "/"
        if ident is not None:
            process["user"] = {"uid": ident.uid, "gid": ident.gid}
            if ident.additional_gids:
                process["user"]["additionalGids"] = list(ident.additional_gids)
        linux = config["linux"]
        mode = "host" if spec.network == "bridge" and self.network is None else spec.network
        if mode not in ("host", "none"):
            if self.network is None:
                raise InvalidArgument(f"network {mode}: this builder has no networks but host and none")
            netns = self.network.attach(cid, mode)
            for ns in linux["namespaces"]:
                if ns["type"] == "network":
                    ns["path"] = str(netns)
        elif mode == "host":
            linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "network"]
        if mode not in ("bridge", "host", "none"):  # a user network: its embedded DNS, as containers have
            self._bind_file(root, config, "resolv.conf", "nameserver 127.0.0.11\noptions ndots:0\n")
        elif mode in ("bridge", "host"):
            for name in ("resolv.conf", "hosts"):
                inside = root / "etc" / name
                if inside.is_file() and not inside.is_symlink() and Path("/etc", name).is_file():
                    config["mounts"].append({"destination": f"/etc/{name}", "type": "bind",
                                             "source": f"/etc/{name}", "options": ["rbind", "ro"]})
        if spec.extra_hosts:
            self._extra_hosts(root, config, spec.extra_hosts)
        created = self._run_mounts(key, root, config, spec)
        res = spec.resources
        if res.memory or res.cpu_shares:
            resources: dict[str, Any] = {}
            if res.memory:
                resources["memory"] = {"limit": res.memory}
            if res.cpu_shares:
                resources["cpu"] = {"shares": res.cpu_shares}
            linux["resources"] = resources
            # flat, not under a shared parent: the step's cgroup goes away whole with the step
            linux["cgroupsPath"] = f"sampan-build-{cid}"
        if res.shm_size:
            for m in config["mounts"]:
                if m["destination"] == "/dev/shm":
                    m["options"] = [o for o in m["options"] if not o.startswith("size=")] + [f"size={res.shm_size}"]
        bundle = root.parent / "bundle"
        bundle.mkdir(exist_ok=True)
        (bundle / "config.json").write_text(json.dumps(config))
        self.mount_points[key] = created
        return bundle

    def _bind_file(self, root: Path, config: dict[str, Any], name: str, text: str) -> None:
        """``text`` bound read-only over the image's /etc/<name> (only when the image has one)."""
        inside = root / "etc" / name
        if not inside.is_file() or inside.is_symlink():
            return
        path = root.parent / name
        path.write_text(text)
        config["mounts"].append({"destination": f"/etc/{name}", "type": "bind", "source": str(path),
                                 "options": ["rbind", "ro"]})

    def _extra_hosts(self, root: Path, config: dict[str, Any], extra: tuple[str, ...]) -> None:
        """``--add-host name:ip``: an /etc/hosts of the host's lines plus these, bound over
        the image's (only when the image has one: a mount point would land in the layer)."""
        inside = root / "etc" / "hosts"
        if not inside.is_file() or inside.is_symlink():
            return
        try:
            base = Path("/etc/hosts").read_text()
        except OSError:
            base = "127.0.0.1\tlocalhost\n"
        lines = [base.rstrip("\n")]
        for item in extra:
            name, sep, ip = item.partition(":")
            if not sep or not name or not ip:
                raise InvalidArgument(f"invalid extra host {item!r}: expected host:ip")
            lines.append(f"{ip}\t{name}")
        hosts = root.parent / "hosts"
        hosts.write_text("\n".join(lines) + "\n")
        config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/etc/hosts"]
        config["mounts"].append({"destination": "/etc/hosts", "type": "bind", "source": str(hosts),
                                 "options": ["rbind", "ro"]})

    def _run_mounts(self, key: str, root: Path, config: dict[str, Any], spec: RunSpec) -> list[Path]:
        """The RUN step's ``--mount``s; returns the mount points that did not exist (removed
        again after the step, so they do not end up in its layer)."""
        from sampan.build.copy import scoped

        created: list[Path] = []
        for m in spec.mounts:
            target = scoped(root, m.target)
            if not os.path.lexists(target):
                missing = target
                while not os.path.lexists(missing.parent) and missing.parent != root:
                    missing = missing.parent
                created.append(missing)
                parent = os.stat(missing.parent)
                self.parent_times.setdefault(key, []).append((missing.parent, parent.st_atime_ns, parent.st_mtime_ns))
            if m.type == "tmpfs":
                options = ["nosuid", "nodev"] + ([f"size={m.size}"] if m.size else [])
                config["mounts"].append({"destination": m.target, "type": "tmpfs", "source": "tmpfs",
                                         "options": options})
                continue
            source = m.source
            if m.type == "cache":
                source = str(self.state_dir / "cache" / (m.source or m.target).strip("/").replace("/", "_"))
                os.makedirs(source, exist_ok=True)
            config["mounts"].append({"destination": m.target, "type": "bind", "source": source,
                                     "options": ["rbind", "ro" if m.readonly else "rw"]})
        return created

    def run(self, key: str, spec: RunSpec, *, output: Output) -> int:
        cid = uuid.uuid4().hex
        try:
            code = self._run_bundle(key, self._bundle(key, spec, cid), cid, output)
        finally:
            if spec.network not in ("host", "none") and self.network is not None:
                self.network.detach(cid)  # also when the bundle failed half-way
        if self.cancelled is not None and self.cancelled():
            raise Unavailable("the build was cancelled: the client went away")
        return code

    def _run_bundle(self, key: str, bundle: Path, cid: str, output: Output) -> int:
        self.runtime_root.mkdir(parents=True, exist_ok=True)
        if self.runner is not None:
            try:
                return self.runner.run(str(self.runtime_root), cid, str(bundle), output, self.cancelled)
            finally:
                self._remove_mount_points(key)
        cmd = [sys.executable, "-I", "-S", _RUNTIME_MAIN, "--root", str(self.runtime_root),
               "run", "--bundle", str(bundle), cid]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, close_fds=True)
        except OSError as exc:
            raise from_oserror(exc, "start the OCI runtime for a RUN step") from exc
        assert proc.stdout is not None and proc.stderr is not None
        root = str(self.runtime_root)
        try:
            relay(proc.stdout.fileno(), output, cancelled=self.cancelled, stop=lambda: kill_step(root, cid),
                  err_fd=proc.stderr.fileno())
        finally:
            proc.stdout.close()
            proc.stderr.close()
            code = proc.wait()
            self._remove_mount_points(key)
        return code

    def _remove_mount_points(self, key: str) -> None:
        """Remove the mount points a RUN step's mounts needed and give their parents back
        their times, so that the step's layer does not record them."""
        root = self._root(key)
        for point in reversed(self.mount_points.pop(key, [])):
            if point.is_dir() and not point.is_symlink():
                shutil.rmtree(point, ignore_errors=True)
            else:
                with suppress(OSError):
                    point.unlink()
        for parent, atime, mtime in reversed(self.parent_times.pop(key, [])):
            with suppress(OSError):
                os.utime(parent, ns=(atime, mtime), follow_symlinks=False)
            self.touched.setdefault(key, []).append(os.path.relpath(parent, root))

    # ------------------------------------------------------------ commit

    def commit(self, key: str, base: BaseImage, *, source_date_epoch: int | None) -> LayerRecord | None:
        snap = self.works[key]
        sn = self.store.snapshotter
        lower = None
        if sn.whiteouts != "overlay" and base.layers:
            lower = sn.upper_dir(base.layers[-1].chain_id)
        tmpdir = self.store.data_root / "tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        if sn.whiteouts == "overlay":
            _drop_copied_up(sn.upper_dir(snap), self.touched.pop(key, []))
        with tempfile.TemporaryFile(dir=tmpdir) as tmp:
            applied = write_diff(sn.upper_dir(snap), tmp, whiteouts=sn.whiteouts, lower=lower,  # type: ignore[arg-type]
                                 source_date_epoch=source_date_epoch)
            if applied.diff_id == EMPTY_LAYER:
                return None
            tmp.seek(0)
            with self.lock:
                blob = self.staging.copy_blob(tmp, expected=applied.diff_id, what="build layer")
                layers = [LayerBlob(la.blob, la.media_type, la.diff_id) for la in base.layers]
                layers.append(LayerBlob(blob, DOCKER_LAYER, applied.diff_id, where=f"build step {key}"))
                records = self.staging.unpack(layers)
        return records[-1]
