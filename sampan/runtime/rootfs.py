"""The container's filesystem view, built in its new mount namespace by the init.

Order (each step needs the one before it):

1. make ``/`` a slave (or ``linux.rootfsPropagation``) recursively, so nothing done below
   propagates back to the host;
2. bind the rootfs on itself: pivot_root needs a mount point;
3. the spec's mounts, in order, each target resolved *inside* the rootfs (symlinks are
   followed as if the rootfs were ``/``, never out of it) and opened with openat2
   RESOLVE_IN_ROOT; the mount is then made on ``/proc/self/fd/N`` of that handle, so a
   symlink swapped in after the check cannot redirect it;
4. ``/dev`` as runc builds it when /dev is not bind-mounted: null zero full random urandom tty,
   the spec's devices, fd/stdin/stdout/stderr/core links, ptmx -> pts/ptmx;
5. pivot_root (or MS_MOVE + chroot when the root is a ramfs, or when asked);
6. after pivot: sysctls, read-only paths, masked paths, the root made read-only last (the
   steps before it write into the tree).
"""

from __future__ import annotations

import errno
import os
import stat

from sampan._sys import mount as m
from sampan._sys.proc import (
    MOUNT_ATTR_RDONLY,
    O_PATH,
    RESOLVE_IN_ROOT,
    RESOLVE_NO_MAGICLINKS,
    mount_setattr_recursive,
    move_mount_to_fd,
    openat2,
    pivot_root,
)
from sampan.errors import InvalidConfig, PermissionDenied
from sampan.oci import runtime as oci
from sampan.oci.defaults import DEFAULT_DEVICES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_MAX_LINKS = 255


def secure_join(root: str, unsafe: str) -> str:
    """``root`` + ``unsafe`` with every symlink resolved as if ``root`` were ``/``.

    ``..`` stops at ``root``; an absolute link target restarts at ``root``.  Components that
    do not exist yet are appended unresolved (the caller creates them).
    """
    pending = [p for p in unsafe.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        if part == ".":
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise InvalidConfig(unsafe, "too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = [p for p in target.split("/") if p not in ("", ".")] + pending
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _open_in_root(rootfd: int, root: str, path: str) -> int:
    rel = os.path.relpath(path, root)
    return openat2(rootfd, rel, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)


def _make_target(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, exist_ok=True)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.lexists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))


def _cgroup_hierarchies() -> list[tuple[str, str, str]]:
    """(host mount point, root inside the hierarchy, super options) of each v1 hierarchy."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if rfields and rfields[0] == "cgroup":
                out.append((fields[4], fields[3], rfields[-1]))
    return out


def _cgroup_mount(target: str, dest: str, mnt: oci.Mount, *, own_ns: bool) -> None:
    """``type: cgroup``: on a v2-only machine one cgroup2 mount; otherwise a tmpfs (left
    writable, as runc leaves it) holding each v1 hierarchy, read-only per the entry's flags.
    With a cgroup namespace each hierarchy is mounted afresh (its root is the container's
    cgroup); without one, the container's own cgroup directories are bound from the host, as
    runc does, so the container sees its limits and nothing above them."""
    with open("/proc/self/cgroup") as f:
        lines = [line.strip().split(":", 2) for line in f if line.strip()]
    own = {ctrls: path for _hid, ctrls, path in lines if ctrls}
    if not own:
        m.mount("cgroup2", target, "cgroup2", mnt.flags, "")
        return
    flags = mnt.flags & ~m.MS_RDONLY
    m.mount("tmpfs", target, "tmpfs", flags, "mode=755")
    target = dest  # the fd still names the directory under the new tmpfs: use the path now
    for host_mp, host_root, options in _cgroup_hierarchies():
        opts = options.split(",")
        ctrls = next((c for c in own if set(c.split(",")) <= set(opts)), None)
        if ctrls is None:
            continue
        name = os.path.basename(host_mp)
        sub = os.path.join(target, name)
        if os.path.exists(sub):
            continue
        os.makedirs(sub)
        try:
            if own_ns:
                data = ctrls if not ctrls.startswith("name=") else f"none,{ctrls}"
                m.mount("cgroup", sub, "cgroup", mnt.flags, data)
            else:
                rel = os.path.relpath(own[ctrls], host_root) if host_root != "/" else own[ctrls].lstrip("/")
                m.mount(os.path.join(host_mp, rel), sub, "", m.MS_BIND | m.MS_REC)
                m.mount("", sub, "", m.MS_BIND | m.MS_REMOUNT | mnt.flags)
        except OSError:
            os.rmdir(sub)
            continue
        if "," in name:
            for alias in name.split(","):
                if not os.path.lexists(os.path.join(target, alias)):
                    os.symlink(name, os.path.join(target, alias))


def mount_one(
    rootfs: str, rootfd: int, mnt: oci.Mount, field: str, *, cgroupns: bool = False, idmap_fd: int | None = None,
) -> None:
    """Mount ``mnt`` at its destination resolved inside ``rootfs``; ``idmap_fd`` is a detached
    idmapped mount (made by the parent) to move there instead of binding the source."""
    dest = secure_join(rootfs, mnt.destination)
    try:
        src_is_dir = not mnt.bind or os.path.isdir(mnt.source)
        _make_target(dest, src_is_dir)
        fd = _open_in_root(rootfd, rootfs, dest)
    except OSError as exc:
        raise InvalidConfig(f"{field}.destination", f"cannot create {mnt.destination} in the rootfs: {exc.strerror}") from None
    target = f"/proc/self/fd/{fd}"
    top = -1
    try:
        if mnt.type == "cgroup":
            _cgroup_mount(target, dest, mnt, own_ns=cgroupns)
        elif idmap_fd is not None:
            move_mount_to_fd(idmap_fd, fd)
            os.close(idmap_fd)
        elif mnt.bind:
            m.mount(mnt.source, target, "", mnt.flags & (m.MS_BIND | m.MS_REC))
        else:
            m.mount(mnt.source, target, mnt.type, mnt.flags, mnt.data)
        extra = mnt.flags & ~(m.MS_BIND | m.MS_REC) if mnt.bind else 0
        if extra or mnt.recursive_ro or mnt.propagation:
            # ``fd`` names the directory now covered by the mount: open the mount itself
            top = _open_in_root(rootfd, rootfs, dest)
            new = f"/proc/self/fd/{top}"
            if extra:
                m.mount("", new, "", m.MS_BIND | m.MS_REMOUNT | extra)
            if mnt.recursive_ro:
                mount_setattr_recursive(top, MOUNT_ATTR_RDONLY)
            if mnt.propagation:
                m.mount("", new, "", mnt.propagation)
    except OSError as exc:
        what = f"mount {mnt.type} {mnt.source} on {mnt.destination}"
        if mnt.options:
            what += f" with options {','.join(mnt.options)!r}"
        if exc.errno == errno.EINVAL:
            raise InvalidConfig(f"{field}.options", f"{what}: {os.strerror(exc.errno)}") from None
        raise InvalidConfig(field, f"{what}: {os.strerror(exc.errno or 0)}") from None
    finally:
        os.close(fd)
        if top >= 0:
            os.close(top)


def _device(rootfs: str, rootfd: int, path: str, kind: str, major: int, minor: int, mode: int, uid: int, gid: int) -> None:
    dest = secure_join(rootfs, path)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.lexists(dest):
        os.unlink(dest)
    ftype = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[kind]
    try:
        os.mknod(dest, ftype | (mode & 0o7777), os.makedev(major, minor))
        os.chown(dest, uid, gid)
    except PermissionError:
        # in a user namespace mknod is refused: bind the host's node instead, as runc does
        _make_target(dest, False)
        fd = _open_in_root(rootfd, rootfs, dest)
        try:
            m.mount(path, f"/proc/self/fd/{fd}", "", m.MS_BIND)
        finally:
            os.close(fd)


def setup_dev(rootfs: str, rootfd: int, devices: tuple[oci.Device, ...], has_pts: bool) -> None:
    old = os.umask(0)
    try:
        for path, kind, major, minor in DEFAULT_DEVICES:
            if not any(d.path == path for d in devices):
                _device(rootfs, rootfd, path, kind, major, minor, 0o666, 0, 0)
        for i, d in enumerate(devices):
            try:
                _device(rootfs, rootfd, d.path, d.type, d.major, d.minor, d.file_mode, d.uid, d.gid)
            except OSError as exc:
                raise InvalidConfig(f"linux.devices[{i}]", f"cannot create {d.path}: {exc.strerror}") from None
    finally:
        os.umask(old)
    dev = secure_join(rootfs, "/dev")
    links = [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr")]
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "core"))
    if has_pts:
        links.append(("pts/ptmx", "ptmx"))
    for target, name in links:
        path = os.path.join(dev, name)
        if os.path.lexists(path):
            if name != "ptmx":
                continue
            os.unlink(path)
        os.symlink(target, path)


def prepare(
    spec: oci.Spec,
    before_cgroup: Callable[[], None] | None = None,
    idmap_fds: dict[int, int] | None = None,
) -> None:
    """Steps 1-4 (still in the host's root, in the container's mount namespace).
    ``before_cgroup`` runs before the first ``cgroup`` mount (the init joins its cgroup)."""
    rootfs = spec.root_path
    m.mount("", "/", "", m.MS_REC | (spec.linux.rootfs_propagation or m.MS_SLAVE))
    m.mount(rootfs, rootfs, "", m.MS_BIND | m.MS_REC)
    rootfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        cgroupns = spec.linux.namespace("cgroup") is not None
        for i, mnt in enumerate(spec.mounts):
            if mnt.type == "cgroup" and before_cgroup is not None:
                before_cgroup()
                before_cgroup = None
            mount_one(rootfs, rootfd, mnt, f"mounts[{i}]", cgroupns=cgroupns, idmap_fd=(idmap_fds or {}).get(i))
        dev_is_bind = any(x.destination == "/dev" and x.bind for x in spec.mounts)
        if not dev_is_bind:
            has_pts = any(x.destination == "/dev/pts" for x in spec.mounts)
            setup_dev(rootfs, rootfd, spec.linux.devices, has_pts)
        cwd = secure_join(rootfs, spec.process.cwd)
        if not os.path.exists(cwd):
            os.makedirs(cwd, mode=0o755, exist_ok=True)
    finally:
        os.close(rootfd)


def pivot(rootfs: str, *, no_pivot: bool = False) -> None:
    """Step 5: make ``rootfs`` the root and detach the old one."""
    if not no_pivot:
        oldroot = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        newroot = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fchdir(newroot)
            try:
                pivot_root(".", ".")
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                no_pivot = True  # ramfs/initramfs root: pivot_root is refused
            else:
                os.fchdir(oldroot)
                m.mount("", ".", "", m.MS_SLAVE | m.MS_REC)
                m.umount(".", m.MNT_DETACH)
        finally:
            os.close(oldroot)
            os.close(newroot)
    if no_pivot:
        os.chdir(rootfs)
        m.mount(rootfs, "/", "", m.MS_MOVE)
        os.chroot(".")
    os.chdir("/")


def _statvfs_flags(path: str) -> int:
    f = os.statvfs(path).f_flag
    out = 0
    for st_bit, ms_bit in ((os.ST_NOSUID, m.MS_NOSUID), (os.ST_NODEV, m.MS_NODEV), (os.ST_NOEXEC, m.MS_NOEXEC), (os.ST_NOATIME, m.MS_NOATIME), (os.ST_RELATIME, m.MS_RELATIME)):
        if f & st_bit:
            out |= ms_bit
    return out


def readonly_path(path: str) -> None:
    try:
        m.mount(path, path, "", m.MS_BIND | m.MS_REC)
    except FileNotFoundError:
        return
    m.mount("", path, "", m.MS_BIND | m.MS_REMOUNT | m.MS_RDONLY | m.MS_REC | _statvfs_flags(path))


def masked_path(path: str) -> None:
    try:
        if os.path.isdir(path):
            m.mount("tmpfs", path, "tmpfs", m.MS_RDONLY, "")
        else:
            m.mount("/dev/null", path, "", m.MS_BIND)
    except FileNotFoundError:
        return


def finalize(spec: oci.Spec) -> None:
    """Step 6, after pivot_root."""
    for key, value in spec.linux.sysctl:
        try:
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(value)
        except OSError as exc:
            raise InvalidConfig(f"linux.sysctl.{key}", f"cannot set: {exc.strerror}") from None
    for i, path in enumerate(spec.linux.readonly_paths):
        try:
            readonly_path(path)
        except OSError as exc:
            raise InvalidConfig(f"linux.readonlyPaths[{i}]", f"{path}: {exc.strerror}") from None
    for i, path in enumerate(spec.linux.masked_paths):
        try:
            masked_path(path)
        except OSError as exc:
            raise InvalidConfig(f"linux.maskedPaths[{i}]", f"{path}: {exc.strerror}") from None


def make_root_readonly() -> None:
    try:
        m.mount("", "/", "", m.MS_BIND | m.MS_REMOUNT | m.MS_RDONLY | _statvfs_flags("/"))
    except OSError as exc:
        raise PermissionDenied(f"root.readonly: remount / read-only: {exc.strerror}") from None
