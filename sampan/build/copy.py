"""COPY and ADD: Docker's rules for sources, destinations, owners, modes and archives.

Sources (paths in the build context, or in another stage's/image's root for ``--from``):

* each source is cleaned and taken relative to the source root; ``..`` never leaves it, and a
  source that is a symlink is followed *inside* the root (as the legacy builder's
  FollowSymlinkInScope);
* wildcards ``*``, ``?`` and ``[...]`` match within one path element (Go's filepath.Match);
  a pattern that matches nothing is "no source files were specified"; a plain path that does
  not exist is "file not found in build context or excluded by .dockerignore";
* a directory source copies its *contents*; a file source lands at the destination, or
  under it when the destination ends in ``/`` or is an existing directory; several sources
  need a destination that ends in ``/``.

Destination: relative to WORKDIR; missing parents are created mode 0755 and owned by the
``--chown`` identity (default 0:0), as moby's ``MkdirAllAndChownNew``.  Every path inside the
destination root is resolved here, component by component, with the image's symlinks
interpreted inside that root: a hostile image cannot make a COPY write outside it.

Copied entries keep their mode and mtime; owners are 0:0 or ``--chown``; ``--chmod`` (octal)
replaces the mode of every file and directory copied; symlinks are copied as symlinks;
hard links between copied files stay hard links.  ``ADD`` extracts a local tar (plain, gzip,
bzip2, xz, zstd) into the destination directory with the storage layer's safe extractor,
and downloads ``http(s)`` URLs (mode 0600, mtime from Last-Modified, ``--checksum`` checked).

BuildKit's ``--exclude`` patterns (ignore-file syntax) are matched relative to each source
(a directory's entries, a file's name); ``--parents`` keeps each source's directories under
the destination (``COPY --parents a/b/ /dst/`` gives ``/dst/a/b/...``).

``normalize_modes`` (used under SOURCE_DATE_EPOCH) makes modes independent of the umask that
made the context: files 0644 (0755 when any execute bit is set), directories 0755.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from sampan.build.users import Identity
from sampan.errors import DigestMismatch, InvalidArgument, NotFound, SampanError, from_oserror

_WILDCARDS = frozenset("*?[")
_MAX_LINKS = 40


@dataclass(frozen=True)
class CopyOptions:
    chown: Identity | None = None
    chmod: int | None = None
    normalize_modes: bool = False
    unpack_archives: bool = False  # ADD (local sources only: a downloaded archive stays a file)
    downloaded: tuple[Path, ...] = ()
    excludes: tuple[str, ...] = ()  # --exclude (.dockerignore patterns, relative to each source)
    parents: bool = False  # --parents: keep the sources' directories under the destination


def parse_chmod(text: str) -> int | None:
    if not text:
        return None
    try:
        mode = int(text, 8)
    except ValueError:
        raise InvalidArgument(f"invalid chmod parameter: {text}") from None
    if mode > 0o7777 or mode < 0:
        raise InvalidArgument(f"invalid chmod parameter: {text}")
    return mode


def is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))


# ------------------------------------------------------------------ sources


def _clean(src: str) -> str:
    return posixpath.normpath("/" + src).lstrip("/")


def scoped(root: Path, path: str, *, follow_last: bool = True) -> Path:
    """``path`` inside ``root`` with symlinks resolved as if ``root`` were ``/``."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root.joinpath(*done, part)
        if (parts or follow_last) and candidate.is_symlink():
            hops += 1
            if hops > _MAX_LINKS:
                raise InvalidArgument(f"too many levels of symbolic links: {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(part)
    return root.joinpath(*done)


def _glob(root: Path, pattern: str) -> list[str]:
    matches = [""]
    for part in pattern.split("/"):
        nxt: list[str] = []
        for base in matches:
            full = root / base if base else root
            if not any(c in _WILDCARDS for c in part):
                if os.path.lexists(full / part):
                    nxt.append(f"{base}/{part}" if base else part)
                continue
            try:
                names = sorted(os.listdir(full))
            except OSError:
                continue
            nxt += [f"{base}/{n}" if base else n for n in names if fnmatch.fnmatchcase(n, part)]
        matches = nxt
    return matches


def resolve_sources(root: Path, sources: list[str], *, cmd: str) -> list[tuple[str, Path]]:
    """(cleaned name, host path) of every source, in order; errors with Docker's wording."""
    out: list[tuple[str, Path]] = []
    for src in sources:
        rel = _clean(src)
        if any(c in _WILDCARDS for c in rel):
            names = _glob(root, rel)
            if not names:
                raise NotFound(f"{cmd} failed: no source files were specified")
            out += [(n, scoped(root, n)) for n in names]
            continue
        path = scoped(root, rel) if rel else root
        if not os.path.lexists(path):
            raise NotFound(
                f"{cmd} failed: file not found in build context or excluded by .dockerignore: "
                f"stat {rel or '.'}: file does not exist"
            )
        out.append((rel, path))
    return out


def _walk(path: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(relative name, lstat) of ``path`` and, for a directory, everything below it, sorted."""
    st = os.lstat(path)
    yield "", st
    if stat.S_ISDIR(st.st_mode):
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            rel = os.path.relpath(dirpath, path)
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                yield (name if rel == "." else f"{rel}/{name}"), os.lstat(full)


def source_digest(items: list[tuple[str, Path]], *, normalize_modes: bool = False) -> str:
    """A digest of the sources' names, types, modes, link targets and contents (not mtimes):
    the cache key of a COPY/ADD and the ``file:``/``dir:`` hash of its history entry."""
    h = hashlib.sha256()
    for name, path in items:
        h.update(b"S" + name.encode("utf-8", "surrogateescape") + b"\0")
        for rel, st in _walk(path):
            mode = _mode(st.st_mode, normalize_modes)
            h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{mode}\0".encode("utf-8", "surrogateescape"))
            full = path / rel if rel else path
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(full).encode("utf-8", "surrogateescape") + b"\0")
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def _mode(st_mode: int, normalize: bool) -> int:
    mode = stat.S_IMODE(st_mode)
    if not normalize or stat.S_ISLNK(st_mode):
        return mode
    if stat.S_ISDIR(st_mode) or mode & 0o111:
        return 0o755
    return 0o644


# ------------------------------------------------------------------ copying


class _Copier:
    def __init__(self, opts: CopyOptions) -> None:
        from sampan.build.context import PatternMatcher

        self.opts = opts
        self.excluded = PatternMatcher(list(opts.excludes)).matches_or_parent_matches if opts.excludes else None
        self.uid, self.gid = (opts.chown.uid, opts.chown.gid) if opts.chown else (0, 0)
        self.links: dict[tuple[int, int], Path] = {}

    def mkdirs(self, root: Path, path: str) -> Path:
        """Create the missing directories of ``path`` (inside ``root``); return its host path."""
        target = scoped(root, path)
        missing = []
        probe = target
        while not os.path.lexists(probe) and probe != root:
            missing.append(probe)
            probe = probe.parent
        for d in reversed(missing):
            os.mkdir(d, 0o755)
            os.chmod(d, 0o755)
            os.lchown(d, self.uid, self.gid)
        if not target.is_dir():
            raise InvalidArgument(f"cannot copy to non-directory: {path}")
        return target

    def entry(self, src: Path, st: os.stat_result, dst: Path) -> None:
        mode = self.opts.chmod if self.opts.chmod is not None else _mode(st.st_mode, self.opts.normalize_modes)
        if os.path.lexists(dst) and not (stat.S_ISDIR(st.st_mode) and dst.is_dir() and not dst.is_symlink()):
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            else:
                dst.unlink()
        if stat.S_ISDIR(st.st_mode):
            if not dst.is_dir():
                os.mkdir(dst, 0o700)
            os.chmod(dst, mode)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
            os.lchown(dst, self.uid, self.gid)
            os.utime(dst, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)
            return
        elif stat.S_ISREG(st.st_mode):
            first = self.links.get((st.st_dev, st.st_ino)) if st.st_nlink > 1 else None
            if first is not None:
                os.link(first, dst)
                return
            shutil.copyfile(src, dst, follow_symlinks=False)
            os.chmod(dst, mode)
            if st.st_nlink > 1:
                self.links[(st.st_dev, st.st_ino)] = dst
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(dst, mode)
        else:
            return  # sockets and devices are not copied
        os.lchown(dst, self.uid, self.gid)
        os.utime(dst, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)

    def tree(self, src: Path, dst: Path) -> None:
        """The contents of directory ``src`` into directory ``dst``."""
        dirs: list[tuple[Path, os.stat_result]] = []
        for rel, st in _walk(src):
            if not rel or (self.excluded is not None and self.excluded(rel)):
                continue
            target = dst / rel
            self.entry(src / rel, st, target)
            if stat.S_ISDIR(st.st_mode):
                dirs.append((target, st))
        for target, st in reversed(dirs):  # mtimes once their contents are in place
            os.utime(target, ns=(st.st_mtime_ns, st.st_mtime_ns))


def _is_archive(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(6)
        if head[:4] == b"\x28\xb5\x2f\xfd":
            return True
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError, EOFError):
        return False


def _extract(archive: Path, dest: Path) -> None:
    from sampan.image.streams import decompressed
    from sampan.storage.archive import apply_layer

    with open(archive, "rb") as f:
        src = decompressed(f, f"ADD {archive.name}", kinds=("bzip2", "xz"))
        apply_layer(src, dest, whiteouts="delete", compression="auto", where=f"ADD {archive.name}")


def copy_sources(
    root: Path,
    items: list[tuple[str, Path]],
    dest: str,
    opts: CopyOptions,
    *,
    cmd: str,
) -> None:
    """Copy the resolved ``items`` into the root filesystem ``root`` at ``dest`` (absolute)."""
    copier = _Copier(opts)
    to_dir = dest.endswith("/") or dest.endswith("/.")
    if len(items) > 1 and not to_dir:
        raise InvalidArgument(
            f"When using {cmd} with more than one source file, the destination must be a "
            "directory and end with a /"
        )
    base_dest = dest
    try:
        for name, path in items:
            if copier.excluded is not None and copier.excluded(posixpath.basename(name)):
                continue  # BuildKit matches --exclude relative to each source's directory
            st = os.stat(path)  # a source symlink is followed (inside its root)
            if opts.parents and name:
                keep = name if stat.S_ISDIR(st.st_mode) else posixpath.dirname(name)
                dest = posixpath.join(base_dest, keep) + "/" if keep else base_dest
            if stat.S_ISDIR(st.st_mode):
                target = copier.mkdirs(root, dest)
                copier.tree(path, target)
                continue
            if opts.unpack_archives and path not in opts.downloaded and _is_archive(path):
                _extract(path, copier.mkdirs(root, dest))
                continue
            dest_path = scoped(root, dest)
            if to_dir or dest_path.is_dir():
                parent = copier.mkdirs(root, dest)
                target = parent / posixpath.basename(name or path.name)
            else:
                parent = copier.mkdirs(root, posixpath.dirname(dest.rstrip("/")) or "/")
                target = parent / posixpath.basename(dest.rstrip("/"))
            copier.entry(path, st, target)
    except SampanError:
        raise
    except OSError as exc:
        raise from_oserror(exc, f"{cmd} failed") from exc


def write_inline(root: Path, dest: str, name: str, data: bytes, opts: CopyOptions) -> None:
    """``COPY <<EOF /dest``: the heredoc body as a file (mode 0644 unless ``--chmod``)."""
    copier = _Copier(opts)
    to_dir = dest.endswith("/")
    if to_dir:
        target = copier.mkdirs(root, dest) / name
    else:
        target = copier.mkdirs(root, posixpath.dirname(dest) or "/") / posixpath.basename(dest)
    if os.path.lexists(target):
        target.unlink()
    target.write_bytes(data)
    os.chmod(target, opts.chmod if opts.chmod is not None else 0o644)
    os.lchown(target, copier.uid, copier.gid)


# ------------------------------------------------------------------ ADD <url>


def download(url: str, directory: Path, *, checksum: str = "", timeout: float = 60) -> tuple[str, Path]:
    """Fetch ``url`` into ``directory``; return (file name for the destination, local path).

    The file gets mode 0600 and the response's Last-Modified time, as Docker does."""
    parsed = urllib.parse.urlsplit(url)
    name = posixpath.basename(parsed.path) or parsed.hostname or "download"
    local = directory / name
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(local, "wb") as out:
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
            modified = resp.headers.get("Last-Modified")
    except OSError as exc:
        raise InvalidArgument(f"failed to GET {url}: {exc}") from None
    actual = "sha256:" + h.hexdigest()
    if checksum:
        if not checksum.startswith("sha256:"):
            raise InvalidArgument(f"unsupported digest algorithm in checksum {checksum}")
        if checksum != actual:
            raise DigestMismatch(f"ADD {url}", checksum, actual)
    os.chmod(local, 0o600)
    if modified:
        try:
            when = parsedate_to_datetime(modified).timestamp()
            os.utime(local, (when, when))
        except (TypeError, ValueError):
            pass
    return name, local
