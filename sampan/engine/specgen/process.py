"""process: args, environment, user, working directory, terminal, rlimits, OOM score.

Users are resolved as Docker does: ``name``, ``uid``, ``name:group``, ``uid:gid``; names are
looked up in the container's ``/etc/passwd`` and ``/etc/group`` (read without following
symlinks out of the rootfs); a numeric uid that has no entry is still accepted, a name that
has none is an error ("unable to find user x: no matching entries in passwd file").
"""

from __future__ import annotations

import os

from sampan import errors
from sampan.engine.specgen import Spec, SpecContext
from sampan.oci.defaults import DEFAULT_ENV_PATH

RLIMITS = {
    "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK", "as": "RLIMIT_AS",
}


def merge_env(image_env: list[str], env: list[str]) -> list[str]:
    """The image's environment overridden by the container's, by variable name (Docker's
    ReplaceOrAppendEnvValues): ``NAME`` without ``=`` in ``env`` removes the image's variable,
    or stays as given (the process does not get it) when the image has none."""
    out: dict[str, str | None] = {item.partition("=")[0]: item for item in image_env}
    for item in env:
        key, sep, _ = item.partition("=")
        if sep:
            out[key] = item
        elif key in out and out[key] is not None and "=" in str(out[key]):
            out[key] = None
        else:
            out[key] = item
    return [v for v in out.values() if v is not None]


def with_process(spec: Spec, ctx: SpecContext) -> None:
    c = ctx.container
    args = [c.path, *c.args] if c.path else []
    if not args:
        raise errors.InvalidArgument("no command specified")
    env = [e for e in merge_env(ctx.image_env, [*c.link_env, *c.spec.env]) if "=" in e]
    names = {e.partition("=")[0] for e in env}
    if "PATH" not in names:
        env.insert(0, DEFAULT_ENV_PATH)
    env.append(f"HOSTNAME={spec.get('hostname') or c.spec.hostname or c.id[:12]}")
    if c.spec.tty and "TERM" not in names:
        env.append("TERM=xterm")
    uid, gid, extra = resolve_user(ctx.rootfs, c.spec.user, c.host.group_add)
    process: dict[str, object] = {
        "terminal": c.spec.tty,
        "user": {"uid": uid, "gid": gid, **({"additionalGids": extra} if extra else {})},
        "args": args,
        "env": env,
        "cwd": c.spec.working_dir or "/",
        "noNewPrivileges": False,
    }
    height, width = [*c.host.console_size, 0, 0][:2]
    if c.spec.tty and height and width:
        process["consoleSize"] = {"height": height, "width": width}
    if c.host.ulimits:
        rlimits = []
        for u in c.host.ulimits:
            kind = RLIMITS.get(u.name)
            if kind is None:
                raise errors.InvalidArgument(f"invalid ulimit type: {u.name}")
            rlimits.append({"type": kind, "soft": _unlimited(u.soft), "hard": _unlimited(u.hard)})
        process["rlimits"] = rlimits
    if c.host.oom_score_adj:
        process["oomScoreAdj"] = c.host.oom_score_adj
    spec["process"] = process


def _read_in_root(rootfs: str, path: str) -> list[list[str]]:
    """The colon-separated lines of a file inside ``rootfs`` ([] when it does not exist)."""
    from sampan._sys.openat2 import RESOLVE_IN_ROOT, openat2

    try:
        root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        fd = openat2(root, path.lstrip("/"), os.O_RDONLY | os.O_CLOEXEC, RESOLVE_IN_ROOT)
    except OSError:
        return []
    finally:
        os.close(root)
    with os.fdopen(fd, "r", errors="replace") as f:
        return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]


def resolve_user(rootfs: str, user: str, group_add: list[str] | None = None) -> tuple[int, int, list[int]]:
    """(uid, gid, additional gids) for Docker's ``--user`` value inside ``rootfs``."""
    name, _, group = (user or "").partition(":")
    passwd = _read_in_root(rootfs, "/etc/passwd")
    groups = _read_in_root(rootfs, "/etc/group")
    uid, gid, login = 0, 0, "root"
    if name:
        entry = next((p for p in passwd if len(p) >= 4 and (p[0] == name or p[2] == name)), None)
        if entry is not None:
            uid, gid, login = _int(entry[2], user), _int(entry[3], user), entry[0]
        elif name.isdigit():
            uid, gid, login = int(name), 0, ""
        else:
            raise errors.InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
    elif passwd:
        root = next((p for p in passwd if len(p) >= 4 and p[0] == "root"), None)
        if root is not None:
            gid = _int(root[3], "root")
    if group:
        gid = _group_id(groups, group)
    extra: list[int] = []
    if login:
        for g in groups:
            if len(g) >= 4 and login in g[3].split(",") and g[2].isdigit() and int(g[2]) != gid:
                extra.append(int(g[2]))
    for wanted in group_add or []:
        gid_extra = _group_id(groups, wanted)
        if gid_extra not in extra:
            extra.append(gid_extra)
    return uid, gid, extra


def _group_id(groups: list[list[str]], group: str) -> int:
    entry = next((g for g in groups if len(g) >= 3 and (g[0] == group or g[2] == group)), None)
    if entry is not None:
        return _int(entry[2], group)
    if group.isdigit():
        return int(group)
    raise errors.InvalidArgument(f"unable to find group {group}: no matching entries in group file")


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise errors.InvalidArgument(f"invalid user/group entry for {what!r}: {text!r}") from None


def _unlimited(value: int) -> int:
    """Docker's -1 (unlimited) as the runtime spec's uint64 (what dockerd writes; runc rejects -1)."""
    return (1 << 64) - 1 if value < 0 else value
