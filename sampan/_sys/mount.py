"""mount(2), umount2(2) and the new mount API (fsopen/fsconfig/fsmount/move_mount).

The new API matters for deep images: the classic mount(2) option string is one page, so about
40 overlay lowerdirs fit; ``fsconfig(FSCONFIG_SET_STRING, "lowerdir+", dir)`` adds one layer per
call with no such limit (kernel >= 6.8).
"""

from __future__ import annotations

import ctypes
import os

from sampan._sys.libc import check, libc, syscall

TYPE_CHECKING = False
if TYPE_CHECKING:  # not at run time: sampan.mount imports dataclasses (~5 ms for the runtime)
    from collections.abc import Iterable

    from sampan.mount import Mount

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

FSOPEN_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100

#: mount(8)-style option words that are flags, with (set, clear) bits.
FLAG_OPTIONS: dict[str, tuple[int, int]] = {
    "ro": (MS_RDONLY, 0),
    "rw": (0, MS_RDONLY),
    "nosuid": (MS_NOSUID, 0),
    "suid": (0, MS_NOSUID),
    "nodev": (MS_NODEV, 0),
    "dev": (0, MS_NODEV),
    "noexec": (MS_NOEXEC, 0),
    "exec": (0, MS_NOEXEC),
    "noatime": (MS_NOATIME, 0),
    "nodiratime": (MS_NODIRATIME, 0),
    "relatime": (MS_RELATIME, 0),
    "strictatime": (MS_STRICTATIME, 0),
    "bind": (MS_BIND, 0),
    "rbind": (MS_BIND | MS_REC, 0),
    "remount": (MS_REMOUNT, 0),
}
PROPAGATION_OPTIONS: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mount(source: str, target: str, fstype: str = "", flags: int = 0, data: str = "") -> None:
    """mount(2). ``data`` is the filesystem's option string (one page at most)."""
    check(
        libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {fstype or 'bind'} {source} on {target}",
    )


def umount(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    check(libc.umount2(target.encode(), flags), f"umount {target}")


def is_mountpoint(path: str) -> bool:
    """Whether something is mounted on ``path`` (per /proc/self/mountinfo, so that a bind
    mount from the same filesystem counts, which ``os.path.ismount`` misses)."""
    target = os.fsencode(os.path.realpath(path))
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            point = line.split(b" ", 5)[4]
            if b"\\" in point:  # the kernel escapes space, tab, newline and backslash in octal
                for code in (b"040", b"011", b"012", b"134"):
                    point = point.replace(b"\\" + code, bytes([int(code, 8)]))
            if point == target:
                return True
    return False


def parse_options(options: Iterable[str]) -> tuple[int, int, str]:
    """Split mount(8)-style words into (flags, propagation flags, data string)."""
    flags = 0
    propagation = 0
    data: list[str] = []
    for opt in options:
        if opt in FLAG_OPTIONS:
            set_bits, clear_bits = FLAG_OPTIONS[opt]
            flags = (flags | set_bits) & ~clear_bits
        elif opt in PROPAGATION_OPTIONS:
            propagation |= PROPAGATION_OPTIONS[opt]
        else:
            data.append(opt)
    return flags, propagation, ",".join(data)


def fsopen(fstype: str) -> int:
    return syscall("fsopen", fstype.encode(), FSOPEN_CLOEXEC, what=f"fsopen {fstype}")


def fsconfig_string(fd: int, key: str, value: str) -> None:
    syscall(
        "fsconfig", fd, FSCONFIG_SET_STRING, key.encode(), value.encode(), 0,
        what=f"fsconfig {key}={value}",
    )


def fsconfig_flag(fd: int, key: str) -> None:
    syscall("fsconfig", fd, FSCONFIG_SET_FLAG, key.encode(), None, 0, what=f"fsconfig {key}")


def fsconfig_create(fd: int) -> None:
    syscall("fsconfig", fd, FSCONFIG_CMD_CREATE, None, None, 0, what="fsconfig create")


def fsmount(fd: int, attr_flags: int = 0) -> int:
    return syscall("fsmount", fd, FSMOUNT_CLOEXEC, attr_flags, what="fsmount")


def move_mount(fd: int, target: str) -> None:
    syscall(
        "move_mount", fd, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH,
        what=f"move_mount to {target}",
    )


def mount_overlay_new_api(target: str, options: Iterable[str], *, readonly: bool = False) -> None:
    """Mount overlayfs with the new mount API: one ``lowerdir+`` per layer, no page limit.

    ``options`` are the usual overlay words (``lowerdir=a:b``, ``upperdir=``, ``workdir=``,
    others passed as flags or strings).  Lowerdirs are given top-most first, as in mount(8).
    """
    fd = fsopen("overlay")
    try:
        for opt in options:
            key, sep, value = opt.partition("=")
            if key == "lowerdir":
                for lower in value.split(":"):
                    fsconfig_string(fd, "lowerdir+", lower)
            elif key in ("ro", "rw"):
                continue
            elif sep:
                fsconfig_string(fd, key, value)
            else:
                fsconfig_flag(fd, key)
        fsconfig_create(fd)
        mfd = fsmount(fd, 0x1 if readonly else 0)  # MOUNT_ATTR_RDONLY
        try:
            move_mount(mfd, target)
        finally:
            os.close(mfd)
    finally:
        os.close(fd)


def perform(m: Mount, target: str) -> None:
    """Perform a :class:`Mount` on ``target`` (its own ``target`` field is ignored).

    Overlay mounts whose option string would not fit in one page go through the new mount API.
    """
    flags, propagation, data = parse_options(m.options)
    if m.type == "overlay" and len(data) >= 4000:
        mount_overlay_new_api(target, m.options, readonly=bool(flags & MS_RDONLY))
    else:
        fstype = "" if m.type == "bind" else m.type
        mount(m.source, target, fstype, flags, data)
        if flags & MS_BIND and flags & MS_RDONLY:
            mount("", target, "", flags | MS_REMOUNT, "")
    if propagation:
        mount("", target, "", propagation, "")
