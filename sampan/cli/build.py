"""``sampan build`` and ``sampan builder prune``: Docker's flags, the legacy builder's output.

``SOURCE_DATE_EPOCH`` in the environment becomes a build arg (reproducible images).
The context is a directory (sent as a tar honouring ``.dockerignore``, see
``build/context.py``), ``-`` (a tar on stdin), or a URL (``build/remote.py``): a git URL
(``https://host/repo.git#ref:subdir``, ``git://...``, ``git@host:repo``, ``github.com/...``)
is cloned here with the user's own git configuration and credentials, as the docker CLI
does, and sent as a directory (``-f`` is then relative to the clone's context, and ``.git`` is
not sent); any other http(s) URL is sent as ``remote=URL`` for the daemon to download (a
tar, or a Dockerfile alone).  ``-f`` takes any path (outside the context
too) or ``-`` (the Dockerfile on stdin): such a Dockerfile travels in the tar under a generated
name.  ``--progress tty`` (the default on a terminal) keeps the build compact: each step's
line is rewritten in place and a RUN step's output shows only while it runs; ``plain`` prints
the daemon's text unchanged.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import TYPE_CHECKING, Any, BinaryIO

from sampan import errors
from sampan.cli.flags import Flag, Spec

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options

BUILD = Spec(
    "build", "[OPTIONS] PATH | -",
    "Build an image from a Dockerfile",
    Flag("tag", "t", kind="list", help='Name and optionally a tag in the "name:tag" format'),
    Flag("file", "f", kind="string", help="Name of the Dockerfile (Default is 'PATH/Dockerfile')"),
    Flag("build-arg", kind="list", help="Set build-time variables"),
    Flag("target", kind="string", help="Set the target build stage to build."),
    Flag("no-cache", help="Do not use cache when building the image"),
    Flag("pull", help="Always attempt to pull a newer version of the image"),
    Flag("label", kind="list", help="Set metadata for an image"),
    Flag("quiet", "q", help="Suppress the build output and print image ID on success"),
    Flag("iidfile", kind="string", help="Write the image ID to the file"),
    Flag("network", kind="string", default="default", help="Set the networking mode for the RUN instructions during build"),
    Flag("progress", kind="string", default="auto", help="Set type of progress output (auto, plain, tty)"),
    Flag("platform", kind="string", help="Set platform if server is multi-platform capable"),
    Flag("cache-from", kind="list", help="Images to consider as cache sources"),
    Flag("memory", "m", kind="string", help="Memory limit"),
    Flag("shm-size", kind="string", help="Size of /dev/shm"),
    Flag("add-host", kind="list", help="Add a custom host-to-IP mapping (host:ip)"),
    Flag("rm", default=True, help="Remove intermediate containers after a successful build"),
    Flag("force-rm", help="Always remove intermediate containers"),
    aliases=("image build", "build", "builder build"), min_args=1, max_args=1,
)

PRUNE = Spec(
    "builder prune", "[OPTIONS]",
    "Remove build cache",
    Flag("all", "a", help="Remove all unused build cache, not just dangling ones"),
    Flag("force", "f", help="Do not prompt for confirmation"),
    aliases=("builder prune",), max_args=0,
)

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _bytes(text: str, what: str) -> int:
    if not text:
        return 0
    t = text.strip().lower()
    unit = t[-1] if t[-1] in "bkmg" else ""
    try:
        return int(float(t[: len(t) - len(unit)]) * _UNITS[unit])
    except ValueError:
        raise errors.InvalidArgument(f"invalid {what}: {text}") from None


def _is_archive(data: bytes) -> bool:
    """A tar (ustar magic at 257) or a gzip, bzip2, xz or zstd stream."""
    magics = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")
    return data[257:262] == b"ustar" or data.startswith(magics)


def _build_args(values: list[str]) -> dict[str, str]:
    """``--build-arg`` values; ``SOURCE_DATE_EPOCH`` from the environment is passed as a
    build arg unless one is given (as ``docker buildx build`` does): reproducible builds."""
    out: dict[str, str] = {}
    if "SOURCE_DATE_EPOCH" in os.environ:
        out["SOURCE_DATE_EPOCH"] = os.environ["SOURCE_DATE_EPOCH"]
    for item in values:
        key, sep, value = item.partition("=")
        if sep:
            out[key] = value
        elif key in os.environ:  # --build-arg NAME takes the value from the environment
            out[key] = os.environ[key]
    return out


def _remote_kind(path: str) -> str:
    """``git``, ``url`` or ``""`` (a path) for a context argument that is not a directory."""
    if path == "-" or os.path.isdir(path) or not path.startswith(("http://", "https://", "git://", "github.com/", "git@")):
        return ""
    from sampan.build.remote import classify

    return classify(path)


def _clone(url: str) -> tuple[str, str]:
    """Clone a git context into a temp directory: (its root, the context directory)."""
    from pathlib import Path

    from sampan.build.remote import clone, parse_git_url

    root, context = clone(parse_git_url(url), Path(tempfile.gettempdir()), isolated=False)
    return str(root), str(context)


def _context_tar(path: str, dockerfile: str, stdin: Any, *, in_context: bool = False) -> tuple[BinaryIO, str, _Producer | None]:
    """The body of POST /build, the Dockerfile name inside it, and the thread writing the
    body when it is streamed.  ``in_context``: a relative ``-f`` is relative to the context
    (a git clone), not to the working directory."""
    from pathlib import Path

    from sampan.build.context import keep_build_files, load_excludes, write_context_tar

    if path == "-":  # a tar (maybe compressed) or, as the docker CLI accepts, a Dockerfile
        data = getattr(stdin, "buffer", stdin).read()
        body: BinaryIO = tempfile.TemporaryFile()  # noqa: SIM115 (returned to the caller)
        if _is_archive(data):
            body.write(data)
        else:
            import io
            import tarfile

            with tarfile.open(fileobj=body, mode="w") as tar:
                info = tarfile.TarInfo("Dockerfile")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            dockerfile = "Dockerfile"
        body.seek(0)
        return body, dockerfile or "Dockerfile", None
    ctx = Path(path)
    if not ctx.is_dir():
        raise errors.InvalidArgument(f'unable to prepare context: path "{path}" not found')
    extra: dict[str, bytes] = {}
    name = dockerfile or "Dockerfile"
    if dockerfile == "-":
        name = f".dockerfile.{os.urandom(10).hex()}"
        extra[name] = getattr(stdin, "buffer", stdin).read()
    elif dockerfile:
        df = Path(dockerfile)
        full = df if df.is_absolute() else (ctx if in_context else Path.cwd()) / df
        try:
            rel = os.path.relpath(os.path.realpath(full), os.path.realpath(ctx))
        except ValueError:
            rel = ".."
        if rel.startswith(".."):
            name = f".dockerfile.{os.urandom(10).hex()}"
            try:
                extra[name] = full.read_bytes()
            except OSError as exc:
                raise errors.from_oserror(exc, f"unable to prepare context: read {dockerfile}") from None
        else:
            name = rel
    excludes = keep_build_files(load_excludes(ctx, name), name, from_stdin=bool(extra))
    producer = _Producer(lambda out: write_context_tar(ctx, out, excludes=excludes, extra=extra))
    return producer.reader, name, producer


class _Producer:
    """The context tar written by a thread into a pipe the request reads (sending overlaps
    tarring; the daemon unpacks as it receives)."""

    def __init__(self, write: Any) -> None:
        import threading

        r, w = os.pipe()
        self.error: BaseException | None = None
        self.reader: BinaryIO = os.fdopen(r, "rb")

        def run() -> None:
            try:
                with os.fdopen(w, "wb") as out:
                    write(out)
            except BrokenPipeError:
                pass
            except BaseException as exc:  # reported by the main thread
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def failure(self) -> BaseException | None:
        """Why writing the tar failed (an unreadable file), if it did."""
        self.thread.join(5)
        return self.error


def build(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.client.client import stream_error

    quiet = bool(opts["quiet"])
    labels: dict[str, str] = {}
    for item in opts["label"]:  # type: ignore[attr-defined]
        k, _, v = str(item).partition("=")
        labels[k] = v
    progress = str(opts["progress"])
    if progress not in ("auto", "plain", "tty"):
        raise errors.InvalidArgument(f"invalid progress mode {progress!r}: use auto, plain or tty")
    tty = progress == "tty" or (progress == "auto" and _isatty(ctx.stdout))
    kind = _remote_kind(args[0])
    clone_root = ""
    body: BinaryIO | None = None
    producer: _Producer | None = None
    dockerfile = str(opts["file"])
    if kind == "url":  # the daemon downloads it
        if dockerfile == "-" or os.path.isabs(dockerfile):
            raise errors.InvalidArgument(f"-f {dockerfile}: a remote context takes a Dockerfile path inside it")
    elif kind == "git":
        clone_root, context_dir = _clone(args[0])
        try:
            body, dockerfile, producer = _context_tar(context_dir, dockerfile, ctx.stdin, in_context=True)
        except BaseException:
            import shutil

            shutil.rmtree(clone_root, ignore_errors=True)
            raise
    else:
        body, dockerfile, producer = _context_tar(args[0], dockerfile, ctx.stdin)

    def producer_failure() -> BaseException | None:
        return producer.failure() if producer is not None else None

    query: dict[str, Any] = {
        "t": [str(t) for t in opts["tag"]],  # type: ignore[attr-defined]
        "dockerfile": dockerfile, "buildargs": json.dumps(_build_args([str(b) for b in opts["build_arg"]])),  # type: ignore[attr-defined]
        "labels": json.dumps(labels), "target": str(opts["target"]) or None,
        "nocache": "1" if opts["no_cache"] else None, "pull": "1" if opts["pull"] else None,
        "q": "1" if quiet else None, "networkmode": str(opts["network"]),
        "cachefrom": json.dumps([str(c) for c in opts["cache_from"]]),  # type: ignore[attr-defined]
        "memory": _bytes(str(opts["memory"]), "memory") or None,
        "shmsize": _bytes(str(opts["shm_size"]), "shm-size") or None,
        "extrahosts": ",".join(str(h) for h in opts["add_host"]) or None,  # type: ignore[attr-defined]
        "platform": str(opts["platform"]) or None, "rm": "1",
        "remote": args[0] if kind == "url" else None,
    }
    image_id = ""
    out = ctx.stdout
    try:
        messages = ctx.client().stream("POST", "/build", query=query, body=body,
                                       headers={"Content-Type": "application/x-tar"})
        live = ""
        step_output: list[str] = []  # the running step's output, shown again if the build fails
        for msg in messages:
            error = stream_error(msg)
            if error is not None:
                if live:
                    out.write("\n" + "".join(step_output))
                out.flush()
                raise producer_failure() or error
            if isinstance(msg.get("aux"), dict):
                image_id = str(msg["aux"].get("ID") or image_id)
                continue
            text = str(msg.get("stream") or "")
            if quiet:
                image_id = text.strip() or image_id
                continue
            if not tty:
                out.write(text)
            elif text.startswith("Step "):
                out.write(("\r\x1b[K" if live else "") + text.rstrip("\n"))
                live = text
                step_output = []
            elif text.startswith(("Successfully", "[Warning]")):
                out.write(("\n" if live else "") + text)
                live = ""
            elif not text.startswith((" --->", "Removing intermediate")) and text.strip():
                step_output.append(text)
                last = text.rstrip("\n").rsplit("\n", 1)[-1][:70]
                out.write(f"\r\x1b[K{live.rstrip()}  | {last}")
            out.flush()
    except errors.SampanError:
        raise
    except OSError:
        failed = producer_failure()
        if failed is not None:
            raise failed from None
        raise
    finally:
        if body is not None:
            body.close()
        if producer is not None and clone_root:
            producer.failure()  # the tar is written (or abandoned) before the clone goes
        if clone_root:
            import shutil

            shutil.rmtree(clone_root, ignore_errors=True)
    if quiet:
        out.write(image_id + "\n")
    if opts["iidfile"]:
        with open(str(opts["iidfile"]), "w") as f:
            f.write(image_id)
    return 0


def prune(ctx: Context, opts: Options, args: list[str]) -> int:
    if not opts["force"] and _isatty(ctx.stdin):
        ctx.stdout.write("WARNING! This will remove all dangling build cache.\nAre you sure you want to continue? [y/N] ")
        ctx.stdout.flush()
        if ctx.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    result = ctx.client().json("POST", "/build/prune", query={"all": "1" if opts["all"] else None})
    for item in (result or {}).get("CachesDeleted") or []:
        ctx.stdout.write(f"Deleted: {item}\n")
    from sampan.cli.output import human_size

    ctx.stdout.write(f"Total reclaimed space: {human_size(int((result or {}).get('SpaceReclaimed') or 0))}\n")
    return 0


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False

