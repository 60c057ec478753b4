"""``save``, ``load`` and ``import``: image archives in and out, streamed, never held in memory.

``save -o FILE`` writes to a temporary file beside FILE and renames it at the end, so a failed
save leaves nothing half-written; without ``-o`` it refuses to write a tar to a terminal.
``load`` and ``import`` send the file (or stdin) as the request body as it is read.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, BinaryIO

from sampan import errors
from sampan.cli.flags import Flag, Spec

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options

SAVE = Spec(
    "image save", "[OPTIONS] IMAGE [IMAGE...]",
    "Save one or more images to a tar archive (streamed to STDOUT by default)",
    Flag("output", "o", kind="string", help="Write to a file, instead of STDOUT"),
    aliases=("image save", "save"), min_args=1,
)
LOAD = Spec(
    "image load", "[OPTIONS]", "Load an image from a tar archive or STDIN",
    Flag("input", "i", kind="string", help="Read from tar archive file, instead of STDIN"),
    Flag("quiet", "q", help="Suppress the load output"),
    aliases=("image load", "load"), max_args=0,
)
IMPORT = Spec(
    "image import", "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
    "Import the contents from a tarball to create a filesystem image",
    Flag("change", "c", kind="list", help="Apply Dockerfile instruction to the created image"),
    Flag("message", "m", kind="string", help="Set commit message for imported image"),
    Flag("platform", kind="string", help="Set platform if server is multi-platform capable"),
    aliases=("image import", "import"), min_args=1, max_args=2,
)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _binary(stream: Any) -> BinaryIO:
    buffer = getattr(stream, "buffer", None)
    return buffer if buffer is not None else stream  # type: ignore[no-any-return]


def save(ctx: Context, opts: Options, args: list[str]) -> int:
    output = str(opts["output"])
    if not output and _isatty(ctx.stdout):
        raise errors.InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    if output:
        directory = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(directory):
            raise errors.InvalidArgument(f'failed to save image: invalid output path: directory "{directory}" does not exist')
    response = ctx.client().save_images(args)
    if not output:
        ctx.stdout.flush()
        out = _binary(ctx.stdout)
        for piece in response.iter_raw():
            out.write(piece)
        out.flush()
        return 0
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".sampan-save-", dir=os.path.dirname(os.path.abspath(output)))
    try:
        with os.fdopen(fd, "wb") as f:
            for piece in response.iter_raw():
                f.write(piece)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, output)
    except OSError as exc:
        _remove(tmp)
        raise errors.from_oserror(exc, f"failed to save image to {output}") from None
    except BaseException:
        _remove(tmp)
        raise
    return 0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _open_input(path: str, what: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise errors.from_oserror(exc, f"open {path}") from None


def load(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.progress import display

    path = str(opts["input"])
    if path:
        body = _open_input(path, "input")
    else:
        if _isatty(ctx.stdin):
            raise errors.InvalidArgument("requested load from stdin, but stdin is empty")
        body = _binary(ctx.stdin)
    try:
        messages = ctx.client().load_images(body, quiet=bool(opts["quiet"]) or not _isatty(ctx.stdout))
        display(messages, ctx.stdout, tty=_isatty(ctx.stdout))
    finally:
        if path:
            body.close()
    return 0


def import_(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.progress import display

    source = args[0]
    repo = args[1] if len(args) > 1 else ""
    if "://" in source:
        raise errors.NotImplementedFeature(
            f"importing from a URL is not supported: {source} (download it, then import the file or '-')"
        )
    if source == "-":
        if _isatty(ctx.stdin):
            raise errors.InvalidArgument("import from stdin, but stdin is a terminal: pipe a tar archive into it")
        body = _binary(ctx.stdin)
    else:
        body = _open_input(source, "source")
    try:
        messages = ctx.client().import_image(
            body, repo=repo, changes=[str(c) for c in opts["change"]],  # type: ignore[attr-defined]
            message=str(opts["message"]), platform=str(opts["platform"]),
        )
        display(messages, ctx.stdout, tty=_isatty(ctx.stdout))
    finally:
        if source != "-":
            body.close()
    return 0
