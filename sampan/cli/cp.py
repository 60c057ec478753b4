"""Container filesystems: ``cp`` (both ways, tar streams through ``/containers/{id}/archive``),
``export``, ``commit`` and ``diff``.

``cp`` follows docker's naming rules: copying to an existing directory puts the source inside it
under its own name; to a path that does not exist, the source takes that name.  ``-`` as the
source reads a tar from stdin, as the destination writes one to stdout.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.cli.flags import Flag, Spec

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options
    from sampan.client.client import Client

CP = Spec(
    "cp", "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tsampan cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    "Copy files/folders between a container and the local filesystem",
    Flag("archive", "a", help="Archive mode (copy all uid/gid information)"),
    Flag("follow-link", "L", help="Always follow symbol link in SRC_PATH"),
    Flag("quiet", "q", help="Suppress progress output during copy"),
    aliases=("container cp", "cp"), min_args=2, max_args=2,
)
EXPORT = Spec(
    "export", "[OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive",
    Flag("output", "o", kind="string", help="Write to a file, instead of STDOUT"),
    aliases=("container export", "export"), min_args=1, max_args=1,
)
COMMIT = Spec(
    "commit", "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]", "Create a new image from a container's changes",
    Flag("author", "a", kind="string", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
    Flag("change", "c", kind="list", help="Apply Dockerfile instruction to the created image"),
    Flag("message", "m", kind="string", help="Commit message"),
    Flag("pause", "p", default=True, help="Pause container during commit"),
    aliases=("container commit", "commit"), min_args=1, max_args=2,
)
DIFF = Spec(
    "diff", "CONTAINER", "Inspect changes to files or directories on a container's filesystem",
    aliases=("container diff", "diff"), min_args=1, max_args=1,
)

DIR_BIT = 1 << 31  # Go's os.ModeDir


def split_cp_arg(arg: str) -> tuple[str, str]:
    """``name:/path`` -> (name, path); a local path (absolute, ``./x``, no colon) -> ("", path)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return "", arg
    name, _, path = arg.partition(":")
    return name, path


def _path_stat(client: Client, container: str, path: str) -> dict[str, Any] | None:
    import base64
    import json

    try:
        response = client.request("HEAD", f"/containers/{container}/archive", query={"path": path})
    except errors.NotFound:
        return None
    response.read()
    header = response.headers.get("x-docker-container-path-stat", "")
    if not header:
        return {}
    try:
        stat: dict[str, Any] = json.loads(base64.b64decode(header))
        return stat
    except ValueError:
        return {}


def _copy_from(ctx: Context, client: Client, container: str, src: str, dest: str, quiet: bool) -> int:
    import tarfile
    import tempfile

    response = client.request("GET", f"/containers/{container}/archive", query={"path": src})
    if dest == "-":
        out = ctx.stdout.buffer  # type: ignore[attr-defined]
        ctx.stdout.flush()
        for data in response.iter_raw():
            out.write(data)
        out.flush()
        return 0
    with tempfile.TemporaryFile() as spool:
        size = 0
        for data in response.iter_raw():
            spool.write(data)
            size += len(data)
        spool.seek(0)
        base = os.path.basename(src.rstrip("/")) or "."
        if os.path.isdir(dest):
            target_dir, rename = dest, ""
        else:
            parent = os.path.dirname(os.path.abspath(dest))
            if not os.path.isdir(parent):
                raise errors.NotFound(f"no such directory: {parent}")
            target_dir, rename = parent, os.path.basename(dest)
        with tarfile.open(fileobj=spool, mode="r|") as tar:
            if not rename:
                tar.extractall(target_dir, filter="tar")
            else:
                staging = tempfile.mkdtemp(prefix=".sampan-cp-", dir=target_dir)
                try:
                    tar.extractall(staging, filter="tar")
                    os.replace(os.path.join(staging, base), os.path.join(target_dir, rename))
                finally:
                    import shutil

                    shutil.rmtree(staging, ignore_errors=True)
    if not quiet:
        from sampan.cli.output import human_size

        ctx.stderr.write(f"Successfully copied {human_size(size, 3)} to {dest}\n")
    return 0


def _copy_to(ctx: Context, client: Client, src: str, container: str, dest: str, opts: Options) -> int:
    import tarfile
    import tempfile

    query: dict[str, Any] = {"noOverwriteDirNonDir": True, "copyUIDGID": bool(opts["archive"])}
    if src == "-":
        client.request("PUT", f"/containers/{container}/archive", query={**query, "path": dest},
                       body=ctx.stdin.buffer, headers={"Content-Type": "application/x-tar"}).read()  # type: ignore[attr-defined]
        return 0
    if not os.path.lexists(src):
        raise errors.NotFound(f"stat {src}: no such file or directory")
    stat = _path_stat(client, container, dest)
    if (stat is not None and int(stat.get("mode", 0) or 0) & DIR_BIT) or (stat == {} and dest.endswith("/")):
        parent, name = dest, os.path.basename(os.path.normpath(src))
    else:
        if dest.endswith("/"):
            raise errors.NotFound(f"no such directory: {dest}")
        parent, name = os.path.dirname(dest.rstrip("/")) or "/", os.path.basename(dest.rstrip("/"))
    with tempfile.TemporaryFile() as spool:
        with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(src if not opts["follow_link"] else os.path.realpath(src), arcname=name)
        size = spool.tell()
        spool.seek(0)
        client.request("PUT", f"/containers/{container}/archive", query={**query, "path": parent},
                       body=spool, headers={"Content-Type": "application/x-tar"}).read()
    if not opts["quiet"]:
        from sampan.cli.output import human_size

        ctx.stderr.write(f"Successfully copied {human_size(size, 3)} to {container}:{dest}\n")
    return 0


def cp(ctx: Context, opts: Options, args: list[str]) -> int:
    src_name, src_path = split_cp_arg(args[0])
    dest_name, dest_path = split_cp_arg(args[1])
    if src_name and dest_name:
        raise errors.InvalidArgument("copying between containers is not supported")
    if not src_name and not dest_name:
        raise errors.InvalidArgument("must specify at least one container source")
    client = ctx.client()
    if src_name:
        return _copy_from(ctx, client, src_name, src_path, dest_path, bool(opts["quiet"]))
    return _copy_to(ctx, client, src_path, dest_name, dest_path, opts)


def export(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.attach import isatty

    output = str(opts["output"])
    if not output and isatty(ctx.stdout):
        raise errors.InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    response = ctx.client().request("GET", f"/containers/{args[0]}/export")
    if not output:
        out = ctx.stdout.buffer  # type: ignore[attr-defined]
        for data in response.iter_raw():
            out.write(data)
        out.flush()
        return 0
    tmp = f"{output}.sampan-tmp"
    try:
        with open(tmp, "wb") as f:
            for data in response.iter_raw():
                f.write(data)
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return 0


def commit(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.images import split_tag

    repo = tag = ""
    if len(args) > 1:
        repo, tag = split_tag(args[1])
    query = {
        "container": args[0], "repo": repo or None, "tag": tag or None,
        "comment": str(opts["message"]) or None, "author": str(opts["author"]) or None,
        "pause": "1" if opts["pause"] else "0", "changes": list(opts["change"]),  # type: ignore[call-overload]
    }
    result = ctx.client().json("POST", "/commit", query=query, body={}) or {}
    ctx.stdout.write(f"{result.get('Id', '')}\n")
    return 0


_KIND = {0: "C", 1: "A", 2: "D"}


def diff(ctx: Context, opts: Options, args: list[str]) -> int:
    changes = ctx.client().json("GET", f"/containers/{args[0]}/changes") or []
    for change in changes:
        ctx.stdout.write(f"{_KIND.get(int(change.get('Kind', 0)), '?')} {change.get('Path', '')}\n")
    return 0
