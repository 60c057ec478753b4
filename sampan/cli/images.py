"""Image commands: ``images``/``image ls``, ``image inspect``/``inspect``, ``history``, ``tag``,
``rmi``/``image rm`` and ``image prune`` (``save``/``load``/``import`` are in :mod:`transfer`).

Output follows docker's formatter contexts: one row per (repository, tag) of each image, the
field names of ``--format`` are docker's (Repository, Tag, ID, CreatedSince, CreatedAt, Size,
Digest, Containers, SharedSize, UniqueSize, VirtualSize).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.cli.flags import Flag, Spec
from sampan.cli.system import FORMAT_HELP, TABLE_FORMAT_HELP

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options

LS = Spec(
    "image ls", "[OPTIONS] [REPOSITORY[:TAG]]", "List images",
    Flag("all", "a", help="Show all images (default hides intermediate images)"),
    Flag("digests", help="Show digests"),
    Flag("filter", "f", kind="list", metavar="filter", help="Filter output based on conditions provided"),
    Flag("format", kind="string", help=TABLE_FORMAT_HELP),
    Flag("no-trunc", help="Don't truncate output"),
    Flag("quiet", "q", help="Only show image IDs"),
    aliases=("image ls", "image list", "images"), max_args=1,
)
IMAGE_INSPECT = Spec(
    "image inspect", "[OPTIONS] IMAGE [IMAGE...]", "Display detailed information on one or more images",
    Flag("format", "f", kind="string", help=FORMAT_HELP), min_args=1,
)
INSPECT = Spec(
    "inspect", "[OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on sampan objects",
    Flag("format", "f", kind="string", help=FORMAT_HELP),
    Flag("size", "s", help="Display total file sizes if the type is container"),
    Flag("type", kind="string", help="Only inspect objects of the given type"),
    min_args=1,
)
HISTORY = Spec(
    "image history", "[OPTIONS] IMAGE", "Show the history of an image",
    Flag("format", kind="string", help=TABLE_FORMAT_HELP),
    Flag("human", "H", default=True, help="Print sizes and dates in human readable format"),
    Flag("no-trunc", help="Don't truncate output"),
    Flag("quiet", "q", help="Only show image IDs"),
    aliases=("image history", "history"), min_args=1, max_args=1,
)
TAG = Spec(
    "image tag", "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    aliases=("image tag", "tag"), min_args=2, max_args=2,
)
RMI = Spec(
    "image rm", "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images",
    Flag("force", "f", help="Force removal of the image"),
    Flag("no-prune", help="Do not delete untagged parents"),
    aliases=("image rm", "image remove", "rmi"), min_args=1,
)
PRUNE = Spec(
    "image prune", "[OPTIONS]", "Remove unused images",
    Flag("all", "a", help="Remove all unused images, not just dangling ones"),
    Flag("filter", kind="list", metavar="filter", help="Provide filter values (e.g. \"until=<timestamp>\")"),
    Flag("force", "f", help="Do not prompt for confirmation"),
    max_args=0,
)

IMAGE_HEADERS = {
    "Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT", "Size": "SIZE", "Digest": "DIGEST", "Containers": "CONTAINERS",
    "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
}
IMAGE_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGE_TABLE_DIGESTS = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
NONE = "<none>"


def parse_filters(values: Iterable[str], flag: str = "-f, --filter") -> dict[str, list[str]]:
    """``--filter key=value`` flags as the API's filters map."""
    from sampan.cli.flags import UsageError

    filters: dict[str, list[str]] = {}
    for value in values:
        key, sep, arg = value.partition("=")
        if not sep:
            raise UsageError(
                f'invalid argument "{value}" for "{flag}" flag: bad format of filter (expected name=value)', code=125
            )
        filters.setdefault(key.strip().lower(), []).append(arg)
    return filters


def split_tag(ref: str) -> tuple[str, str]:
    """``host:5000/repo:tag`` -> (``host:5000/repo``, ``tag``); no tag -> (ref, "")."""
    colon = ref.rfind(":")
    if colon > ref.rfind("/"):
        return ref[:colon], ref[colon + 1 :]
    return ref, ""


def image_rows(images: Iterable[dict[str, Any]], *, digests: bool = False, no_trunc: bool = False) -> list[dict[str, Any]]:
    """One formatter context per displayed row, as docker's ``imageFormat`` builds them."""
    from sampan.cli.output import go_time, human_size, short_id, since

    rows: list[dict[str, Any]] = []
    for img in images:
        size = int(img.get("Size", 0) or 0)
        shared = int(img.get("SharedSize", -1) if img.get("SharedSize") is not None else -1)
        containers = int(img.get("Containers", -1) if img.get("Containers") is not None else -1)
        created = float(img.get("Created", 0) or 0)
        image_id = str(img.get("Id", ""))
        base = {
            "Containers": "N/A" if containers == -1 else str(containers),
            "CreatedAt": go_time(created),
            "CreatedSince": since(created),
            "ID": image_id if no_trunc else short_id(image_id),
            "SharedSize": "N/A" if shared == -1 else human_size(shared),
            "Size": human_size(size, 3),
            "UniqueSize": "N/A" if shared == -1 else human_size(size - shared),
            "VirtualSize": human_size(int(img.get("VirtualSize", size) or size), 3),
        }
        repo_tags: dict[str, list[str]] = {}
        for ref in img.get("RepoTags") or []:
            if ref in ("<none>:<none>",):
                continue
            repo, tag = split_tag(ref)
            repo_tags.setdefault(repo, []).append(tag or "latest")
        repo_digests: dict[str, list[str]] = {}
        for ref in img.get("RepoDigests") or []:
            repo, sep, digest = ref.partition("@")
            if sep and repo != "<none>":
                repo_digests.setdefault(repo, []).append(digest)

        def add(repo: str, tag: str, digest: str, base: dict[str, str] = base) -> None:
            rows.append({**base, "Repository": repo, "Tag": tag, "Digest": digest})

        added = len(rows)
        for repo, tags in repo_tags.items():
            dgsts = repo_digests.pop(repo, []) if digests else []
            repo_digests.pop(repo, None)
            for tag in tags:
                for digest in dgsts or [NONE]:
                    add(repo, tag, digest)
        for repo, dgsts in repo_digests.items():
            for digest in dgsts if digests else [NONE]:
                add(repo, NONE, digest)
        if len(rows) == added:
            add(NONE, NONE, NONE)
    return [dict(sorted(r.items())) for r in rows]  # Go marshals the context's map sorted


def ls(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.output import write_formatted

    filters = parse_filters(opts["filter"])  # type: ignore[arg-type]
    if args:
        filters.setdefault("reference", []).append(args[0])
    images = ctx.client().images(all=bool(opts["all"]), digests=bool(opts["digests"]), filters=filters)
    images.sort(key=lambda i: -float(i.get("Created", 0) or 0))
    rows = image_rows(images, digests=bool(opts["digests"]), no_trunc=bool(opts["no_trunc"]))
    fmt = str(opts["format"])
    if opts["quiet"]:
        fmt = "{{.ID}}"
    default = IMAGE_TABLE_DIGESTS if opts["digests"] else IMAGE_TABLE
    write_formatted(ctx.stdout, fmt, rows, default=default, headers=IMAGE_HEADERS)
    return 0


# ---------------------------------------------------------------- inspect


def write_inspected(ctx: Context, fmt: str, found: list[Any], failures: list[str]) -> int:
    """Print what ``inspect`` found (a JSON array, or ``fmt`` per object), then the failures
    on stderr, as the docker CLI does; the exit code (1 when anything was not found)."""
    if found or not fmt:
        if not fmt or fmt == "json":
            from sampan.cli.output import inspect_json

            ctx.stdout.write(inspect_json(found, indent=None if fmt else 4) + "\n")
        else:
            from sampan.cli.template import Template

            template = Template(fmt)
            for item in found:
                ctx.stdout.write(template.render(item) + "\n")
    if failures:
        ctx.stdout.flush()
        ctx.stderr.write("\n".join(failures) + "\n")
        return 1
    return 0


def inspect_named(ctx: Context, fmt: str, names: list[str], path: str) -> int:
    """``inspect`` of objects fetched by ``GET path.format(name)`` (volumes, networks)."""
    client = ctx.client()
    found: list[Any] = []
    failures = []
    for name in names:
        try:
            found.append(client.json("GET", path.format(name)))
        except errors.NotFound as exc:
            failures.append(f"Error response from daemon: {exc}")
    return write_inspected(ctx, fmt, found, failures)


def _inspect_images(ctx: Context, fmt: str, names: list[str], *, object_errors: bool) -> int:
    found: list[Any] = []
    failures: list[str] = []
    client = ctx.client()
    for name in names:
        try:
            found.append(client.inspect_image(name))
        except errors.NotFound as exc:
            from sampan.client.client import from_daemon

            if object_errors:
                failures.append(f"Error: No such object: {name}")
            else:
                failures.append(f"Error response from daemon: {exc}" if from_daemon(exc) else f"Error: {exc}")
    return write_inspected(ctx, fmt, found, failures)


def image_inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    return _inspect_images(ctx, str(opts["format"]), args, object_errors=False)


def inspect(ctx: Context, opts: Options, args: list[str]) -> int:
    kind = str(opts["type"])
    if kind and kind != "image":
        if kind in ("container", "network", "volume", "node", "service", "task", "plugin", "secret", "config"):
            raise errors.NotImplementedFeature(f"inspect --type={kind} is not supported yet")
        raise errors.InvalidArgument(f'"{kind}" is not a valid value for --type')
    return _inspect_images(ctx, str(opts["format"]), args, object_errors=True)


# ---------------------------------------------------------------- history

HISTORY_HEADERS = {
    "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
    "Size": "SIZE", "Comment": "COMMENT",
}
HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_TABLE_RAW = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"


def history_rows(entries: Iterable[dict[str, Any]], *, human: bool = True, no_trunc: bool = False) -> list[dict[str, str]]:
    from sampan.cli.output import ellipsis, human_size, rfc3339, short_id, since

    rows = []
    for h in entries:
        image_id = str(h.get("Id", ""))
        created = float(h.get("Created", 0) or 0)
        created_by = str(h.get("CreatedBy", "")).replace("\t", " ")
        size = int(h.get("Size", 0) or 0)
        rows.append({
            "Comment": str(h.get("Comment", "")),
            "CreatedAt": rfc3339(created),
            "CreatedBy": created_by if no_trunc else ellipsis(created_by, 45),
            "CreatedSince": since(created) if human else rfc3339(created),
            "ID": image_id if no_trunc or image_id == "<missing>" else short_id(image_id),
            "Size": human_size(size, 3) if human else str(size),
        })
    return rows


def history(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.output import write_formatted

    entries = ctx.client().image_history(args[0])
    rows = history_rows(entries, human=bool(opts["human"]), no_trunc=bool(opts["no_trunc"]))
    fmt = "{{.ID}}" if opts["quiet"] else str(opts["format"])
    default = HISTORY_TABLE if opts["human"] else HISTORY_TABLE_RAW
    write_formatted(ctx.stdout, fmt, rows, default=default, headers=HISTORY_HEADERS)
    return 0


# ---------------------------------------------------------------- tag, rmi, prune


def tag(ctx: Context, opts: Options, args: list[str]) -> int:
    source, target = args
    if "@" in target:
        raise errors.InvalidArgument("refusing to create a tag with a digest reference")
    repo, tag_name = split_tag(target)
    if not repo:
        raise errors.InvalidReference(target)
    ctx.client().tag_image(source, repo=repo, tag=tag_name)
    return 0


def rmi(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.client.client import from_daemon

    client = ctx.client()
    failures = []
    fatal = False  # with -f, names the daemon does not know are reported but do not fail (docker CLI)
    for name in args:
        try:
            items = client.remove_image(name, force=bool(opts["force"]), noprune=bool(opts["no_prune"]))
        except errors.SampanError as exc:
            if not from_daemon(exc):
                raise
            fatal = fatal or not isinstance(exc, errors.NotFound)
            failures.append(f"Error response from daemon: {exc}")
            continue
        for item in items:
            if item.get("Untagged"):
                ctx.stdout.write(f"Untagged: {item['Untagged']}\n")
            if item.get("Deleted"):
                ctx.stdout.write(f"Deleted: {item['Deleted']}\n")
    if failures:
        ctx.stdout.flush()
        ctx.stderr.write("\n".join(failures) + "\n")
        return 1 if fatal or not opts["force"] else 0
    return 0


PRUNE_WARNING = "WARNING! This will remove all dangling images."
PRUNE_ALL_WARNING = "WARNING! This will remove all images without at least one container associated to them."


def confirm(ctx: Context, message: str) -> bool:
    ctx.stdout.write(f"{message}\nAre you sure you want to continue? [y/N] ")
    ctx.stdout.flush()
    answer = ctx.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def prune(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.output import human_size

    filters = parse_filters(opts["filter"], "--filter")  # type: ignore[arg-type]
    if opts["all"]:
        filters["dangling"] = ["false"]
    if not opts["force"] and not confirm(ctx, PRUNE_ALL_WARNING if opts["all"] else PRUNE_WARNING):
        return 0
    report = ctx.client().prune_images(filters=filters)
    deleted = report.get("ImagesDeleted") or []
    if deleted:
        lines = ["Deleted Images:"]
        for item in deleted:
            if item.get("Untagged"):
                lines.append(f"untagged: {item['Untagged']}")
            else:
                lines.append(f"deleted: {item.get('Deleted', '')}")
        ctx.stdout.write("\n".join(lines) + "\n\n")
    ctx.stdout.write(f"Total reclaimed space: {human_size(int(report.get('SpaceReclaimed') or 0))}\n")
    return 0
