"""The build context: which files a build sees (.dockerignore), and the context tar.

Vocabulary: the *context* is a directory (or the tar made from it) the Dockerfile's COPY and
ADD read from; *excludes* are the patterns of an ignore file; a path is *included* when no
pattern excludes it.

Ignore files (moby's ``patternmatcher`` and ``ignorefile``):

- one pattern a line; a line starting with ``#`` is a comment; blank lines are skipped;
  surrounding whitespace is trimmed;
- a pattern is cleaned like a path (``./a//b/`` is ``a/b``) and a leading ``/`` is dropped,
  so patterns are always relative to the context root;
- ``*`` and ``?`` match within one path element, ``[...]`` is a character class, ``\\``
  escapes; ``**`` matches any number of elements (``**/x``, ``a/**/b``, ``a/**``);
- a pattern that matches a directory excludes everything below it;
- ``!pattern`` re-includes; the *last* pattern that matches a path decides;
- ``<Dockerfile>.dockerignore`` next to the Dockerfile (``app.Dockerfile.dockerignore`` for
  ``-f app.Dockerfile``) is used instead of the context's ``.dockerignore`` when it exists;
- the Dockerfile and the ignore file are always sent, even when excluded (the docker CLI
  adds ``!Dockerfile`` and ``!.dockerignore`` exceptions; the builder drops them again).

The tar is what ``docker build`` sends as the body of ``POST /build``: entries in lexical walk
order, paths relative to the root, owner 0:0, modes and mtimes kept, hard links kept as links.

Typical use::

    # client side (sampan build DIR -f FILE)
    excludes = keep_build_files(load_excludes(ctx, "FILE"), "FILE")
    write_context_tar(ctx, body, excludes=excludes)
    # daemon side (POST /build)
    read_context_tar(body, workdir)
    text = locate_dockerfile(workdir, params.dockerfile).read_bytes()
    remove_ignored_build_files(workdir, params.dockerfile)
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sampan.errors import InvalidArgument, NotFound, from_oserror

IGNORE_FILE = ".dockerignore"
_BOM = "\ufeff"
_ESCAPE = frozenset(".+()|{}$")


def go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` on a slash path ("" becomes "."; "//a" becomes "/a")."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def read_ignore_patterns(data: str | bytes) -> list[str]:
    """The patterns of an ignore file, cleaned as moby's ``ignorefile.ReadAll`` does."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    if text.startswith(_BOM):
        text = text[1:]
    patterns = []
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


@dataclass
class Pattern:
    """One compiled pattern; ``exclusion`` is True for a ``!`` pattern."""

    cleaned: str
    exclusion: bool = False
    dirs: list[str] = field(default_factory=list)
    kind: str = "exact"
    regex: re.Pattern[str] | None = None

    def __post_init__(self) -> None:
        self.dirs = self.cleaned.split("/")
        self._compile()

    def _compile(self) -> None:
        out = "^"
        kind = "exact"
        p = self.cleaned
        i, n = 0, len(p)
        first = True
        while i < n:
            ch = p[i]
            i += 1
            if ch == "*":
                if i < n and p[i] == "*":
                    i += 1
                    if i < n and p[i] == "/":
                        i += 1
                    if i == n:
                        if kind == "exact":
                            kind = "prefix"
                        else:
                            out += ".*"
                            kind = "regexp"
                    else:
                        out += "(.*/)?"
                        kind = "regexp"
                    if first:
                        kind = "suffix"
                else:
                    out += "[^/]*"
                    kind = "regexp"
            elif ch == "?":
                out += "[^/]"
                kind = "regexp"
            elif ch in _ESCAPE:
                out += "\\" + ch
            elif ch == "\\":
                if i < n:
                    out += "\\" + p[i]
                    i += 1
                    kind = "regexp"
                else:
                    out += "\\\\"
            elif ch in "[]":
                out += ch
                kind = "regexp"
            else:
                out += ch
            first = False
        self.kind = kind
        if kind == "regexp":
            try:
                self.regex = re.compile(out + "$")
            except re.error:
                raise InvalidArgument(f"syntax error in pattern: {self.cleaned}") from None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.cleaned
        if self.kind == "prefix":
            return path.startswith(self.cleaned[:-2])
        if self.kind == "suffix":
            suffix = self.cleaned[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regex is not None
        return self.regex.match(path) is not None


def _valid_go_pattern(p: str) -> bool:
    """Whether Go's ``filepath.Match`` accepts ``p`` (it checks the whole pattern): classes
    must be closed and non-empty, ranges complete, and no escape may end the pattern."""
    i, n = 0, len(p)

    def escaped_char(i: int) -> int:
        if i >= n or p[i] in "-]":
            return -1
        if p[i] == "\\":
            i += 1
            if i >= n:
                return -1
        i += 1
        return i if i < n else -1

    while i < n:
        c = p[i]
        if c == "\\":
            i += 2
            if i > n:
                return False
        elif c == "[":
            i += 1
            if i < n and p[i] == "^":
                i += 1
            ranges = 0
            while True:
                if i < n and p[i] == "]" and ranges:
                    i += 1
                    break
                i = escaped_char(i)
                if i < 0:
                    return False
                if p[i] == "-":
                    i = escaped_char(i + 1)
                    if i < 0:
                        return False
                ranges += 1
        else:
            i += 1
    return True


class PatternMatcher:
    """Decides whether a context path is excluded (moby's ``patternmatcher``)."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[Pattern] = []
        for raw in patterns:
            p = raw.strip()
            if not p:
                continue
            p = go_clean(p)
            exclusion = p.startswith("!")
            if exclusion:
                if len(p) == 1:
                    raise InvalidArgument('illegal exclusion pattern: "!"')
                p = p[1:]
            if not _valid_go_pattern(p):
                raise InvalidArgument(f"syntax error in pattern: {p}")
            self.patterns.append(Pattern(p, exclusion))
        self.exclusions = any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """True when ``path`` (or, for a pattern as deep as its parent, that parent) is
        excluded by the last matching pattern."""
        path = go_clean(path)
        if path == ".":
            return False
        matched = False
        parent = posixpath.dirname(path) or "."
        parent_dirs = parent.split("/")
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit and parent != "." and len(pattern.dirs) <= len(parent_dirs):
                hit = pattern.match("/".join(parent_dirs[: len(pattern.dirs)]))
            if hit:
                matched = not pattern.exclusion
        return matched

    def matches_or_parent_matches(self, path: str) -> bool:
        """Like :meth:`matches`, but a pattern matching any parent directory counts."""
        path = go_clean(path)
        if path == ".":
            return False
        matched = False
        parts = path.split("/")[:-1]
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path) or any(
                pattern.match("/".join(parts[: k + 1])) for k in range(len(parts))
            )
            if hit:
                matched = not pattern.exclusion
        return matched

    def matches_using_parent(self, path: str, parent: list[bool] | None) -> tuple[bool, list[bool]]:
        """Whether ``path`` is excluded, given the per-pattern results of its parent
        directory (None at the top); returns the results to pass to its children."""
        matched = False
        info = [False] * len(self.patterns)
        for i, pattern in enumerate(self.patterns):
            hit = parent[i] if parent else False
            if not hit:
                if pattern.exclusion != matched:
                    continue
                hit = pattern.match(path)
                if not hit and not parent:
                    dirname = posixpath.dirname(path)
                    if dirname:
                        parts = dirname.split("/")
                        hit = any(
                            pattern.match("/".join(parts[: k + 1])) for k in range(len(parts))
                        )
            info[i] = hit
            if hit:
                matched = not pattern.exclusion
        return matched, info


def ignore_file_for(context: Path, dockerfile: str | Path | None = None) -> Path | None:
    """The ignore file that applies: ``<dockerfile>.dockerignore`` beside the Dockerfile if it
    exists, else ``<context>/.dockerignore`` if it exists, else None."""
    if dockerfile is not None and str(dockerfile) != "-":
        df = Path(dockerfile)
        if not df.is_absolute():
            df = context / df
        specific = df.with_name(df.name + IGNORE_FILE)
        if specific.is_file():
            return specific
    default = context / IGNORE_FILE
    return default if default.is_file() else None


def load_excludes(context: Path, dockerfile: str | Path | None = None) -> list[str]:
    """The patterns that apply to a build of ``context`` with ``dockerfile``."""
    path = ignore_file_for(context, dockerfile)
    if path is None:
        return []
    try:
        return read_ignore_patterns(path.read_bytes())
    except OSError as exc:
        raise from_oserror(exc, f"read {path}") from None


def keep_build_files(
    excludes: list[str], dockerfile: str, *, from_stdin: bool = False
) -> list[str]:
    """Add exceptions so the Dockerfile and .dockerignore are always sent (docker CLI)."""
    result = list(excludes)
    if PatternMatcher(result).matches(IGNORE_FILE):
        result.append("!" + IGNORE_FILE)
    dockerfile = dockerfile.replace(os.sep, "/")
    if not from_stdin and PatternMatcher(result).matches(dockerfile):
        result.append("!" + dockerfile)
    return result


def walk_context(context: Path, excludes: list[str]) -> Iterator[str]:
    """The included paths of ``context``, relative, in the order the tar lists them.

    A directory that is excluded is not listed; its contents are not visited unless an
    exception pattern could re-include something below it (as Docker's TarWithOptions)."""
    pm = PatternMatcher(excludes)
    root = Path(context)
    if not root.is_dir():
        raise InvalidArgument(f"unable to prepare context: path {str(context)!r} not found")

    def visit(rel_dir: str, parent: list[bool] | None) -> Iterator[str]:
        full = root / rel_dir if rel_dir else root
        try:
            names = sorted(os.listdir(full))
        except OSError as exc:
            raise from_oserror(exc, f"error checking context: read {full}") from None
        for name in names:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                is_dir = stat.S_ISDIR(os.lstat(root / rel).st_mode)
            except OSError as exc:
                raise from_oserror(exc, f"error checking context: can't stat '{rel}'") from None
            skip, info = pm.matches_using_parent(rel, parent)
            if skip:
                if not is_dir or not pm.exclusions:
                    continue
                prefix = rel + "/"
                if not any(
                    p.exclusion and (p.cleaned + "/").startswith(prefix) for p in pm.patterns
                ):
                    continue
            else:
                yield rel
            if is_dir:
                yield from visit(rel, info)

    yield from visit("", None)


def write_context_tar(
    context: Path,
    out: BinaryIO,
    *,
    excludes: list[str] | None = None,
    extra: dict[str, bytes] | None = None,
) -> list[str]:
    """Write the context tar of ``context`` to ``out``; return the entry names.

    ``extra`` adds in-memory files at the root (the Dockerfile read from stdin with
    ``-f -``).  Owners are 0:0 as the docker CLI sends them."""
    names: list[str] = []

    def owner_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel in walk_context(context, excludes or []):
            path = context / rel
            mode = os.lstat(path).st_mode
            if stat.S_ISSOCK(mode):
                continue
            try:
                tar.add(path, arcname=rel, recursive=False, filter=owner_root)
            except OSError as exc:
                raise from_oserror(exc, f"error checking context: add {rel}") from None
            names.append(rel)
        for name, data in sorted((extra or {}).items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
            names.append(name)
    return names


def read_context_tar(src: BinaryIO, dest: Path, *, where: str = "build context") -> None:
    """Unpack a context tar (plain, gzip, zstd, or — when ``src`` can ``peek`` — bzip2 or
    xz) into the empty directory ``dest``; errors name ``where``.

    Uses the storage layer's safe extractor: nothing is written outside ``dest``; devices
    are skipped.  Names starting with ``.wh.`` are read as whiteouts there, so such files
    do not reach the build (a difference from Docker, which keeps them)."""
    from sampan.storage.archive import apply_layer

    peek = getattr(src, "peek", None)
    head = peek(6)[:6] if peek is not None else b""
    if head.startswith((b"BZh", b"\xfd7zXZ\x00")):
        import bz2
        import lzma

        kind = "bzip2" if head.startswith(b"BZh") else "xz"
        opener: type[bz2.BZ2File] | type[lzma.LZMAFile] = bz2.BZ2File if kind == "bzip2" else lzma.LZMAFile
        with opener(src) as opened:
            try:
                apply_layer(opened, dest, whiteouts="delete", compression="", where=where)  # type: ignore[arg-type]
            except (OSError, EOFError, lzma.LZMAError) as exc:
                raise InvalidArgument(f"{where}: corrupt {kind} stream: {exc}") from None
        return
    apply_layer(src, dest, whiteouts="delete", where=where)


def prune_ignored(context: Path, dockerfile: str = "") -> list[str]:
    """Delete from an unpacked context what its ignore file excludes, keeping the Dockerfile
    and the ignore file (what the client's tar would have held); return the removed paths.

    For contexts the daemon fetched itself (``build/remote.py``): a directory context gets
    this from the client, which never sends excluded files.  A directory that is excluded
    but holds a re-included path stays, with that path only."""
    names = [dockerfile] if dockerfile else ["Dockerfile", "dockerfile"]
    excludes = load_excludes(context, names[0])
    if not excludes:
        return []
    for name in names:
        excludes = keep_build_files(excludes, name)
    keep = set(walk_context(context, excludes))
    removed: list[str] = []
    for dirpath, dirnames, filenames in os.walk(context, topdown=False):
        rel_dir = os.path.relpath(dirpath, context)
        for name in filenames + dirnames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel in keep:
                continue
            path = os.path.join(dirpath, name)
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    if os.listdir(path):
                        continue  # holds a re-included path
                    os.rmdir(path)
                else:
                    os.unlink(path)
            except OSError as exc:
                raise from_oserror(exc, f"apply {IGNORE_FILE}: remove {rel}") from None
            removed.append(rel)
    return sorted(removed)


def locate_dockerfile(context: Path, name: str = "") -> Path:
    """The Dockerfile ``name`` (relative to the unpacked context; default ``Dockerfile``,
    then ``dockerfile``) as the legacy builder finds it, never outside the context."""
    root = Path(os.path.realpath(context))
    candidates = [name] if name else ["Dockerfile", "dockerfile"]
    for candidate in candidates:
        rel = go_clean("/" + candidate.replace(os.sep, "/")).lstrip("/")
        path = Path(os.path.realpath(root / rel))
        if path != root and root not in path.parents:
            raise InvalidArgument(f"forbidden path outside the build context: {candidate} ({path})")
        if path.is_file():
            return path
    raise NotFound(f"Cannot locate specified Dockerfile: {candidates[-1]}")


def remove_ignored_build_files(context: Path, dockerfile: str = "Dockerfile") -> list[str]:
    """After the builder has read them, delete the Dockerfile and ``.dockerignore`` from an
    unpacked context when its ``.dockerignore`` excludes them (so ``COPY .`` does not see
    them), as the legacy builder does.  Returns the removed names."""
    try:
        excludes = read_ignore_patterns((context / IGNORE_FILE).read_bytes())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise from_oserror(exc, f"read {IGNORE_FILE}") from None
    matcher = PatternMatcher(excludes)
    removed = []
    for name in (dockerfile, IGNORE_FILE):
        rel = go_clean(name.replace(os.sep, "/")).lstrip("/")
        if not matcher.matches_or_parent_matches(rel):
            continue
        try:
            (context / rel).unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise from_oserror(exc, f"remove {rel} from the build context") from None
        removed.append(rel)
    return removed
