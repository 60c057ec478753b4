"""Remote build contexts: ``POST /build?remote=URL`` (dockerd's ``remotecontext``) and
``sampan build URL``.

Vocabulary: a *remote* is the URL a build names instead of sending a context tar.  It is
classified as moby's ``urlutil`` does (:func:`classify`):

- a *git URL*: ``git://...``, ``git@host:path``, ``github.com/...`` (read as
  ``https://github.com/...``), or an ``http(s)://`` URL whose path ends in ``.git`` (with an
  optional ``#fragment``).  The fragment is ``ref:subdir`` (:class:`GitSource`); both parts
  are optional;
- an *http(s) URL*: anything else starting with ``http://`` or ``https://``;
- anything else is refused ("could not be recognized as URL").

An http(s) remote is downloaded (:func:`download`: streamed to a file, at most
:data:`MAX_DOWNLOAD` bytes, a socket timeout and an overall deadline) and its *bytes* are
sniffed (:func:`sniff`), never its name or Content-Type: a tar, plain or compressed with
gzip, bzip2, xz or zstd, is the context; text is a Dockerfile alone, and the context is just
that file, named by the ``dockerfile`` parameter (default ``Dockerfile``), as dockerd makes
it; anything else is an error naming the URL.

A git remote is cloned with the ``git`` binary as moby's ``gitutils`` does: ``git init``,
``remote add origin``, ``fetch --depth 1 origin -- REF`` (not shallow from a "dumb" http
server, which cannot serve it), ``checkout FETCH_HEAD``, ``submodule update --init
--recursive --depth=1``; ``protocol.file.allow=never`` and ``GIT_PROTOCOL_FROM_USER=0`` keep a
repository from pulling local files in as submodules, and the daemon runs git without the
system's or a user's configuration (``isolated``).  Two deliberate differences from dockerd,
both BuildKit's behaviour: without a ref the remote's default branch (``HEAD``) is fetched,
not ``master``; and ``.git`` directories are not part of the context (a fresh clone's
``.git`` differs every time — index stat data, pack files — so ``COPY .`` would never hit
the cache nor be reproducible).

Whatever the source, the context then gets what a directory context gets from the client:
its ``.dockerignore`` applies (:func:`~sampan.build.context.prune_ignored`), and the rest of
the build (locating the Dockerfile, cache keys, ``SOURCE_DATE_EPOCH``) is unchanged.  Every
temporary file and directory is removed on success and on failure.

Typical use (the daemon)::

    dockerfile = fetch_context(url, context_dir, dockerfile=name, scratch=tmp, log=log)
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sampan.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SampanError,
    Unauthorized,
    Unavailable,
    from_oserror,
)

MAX_DOWNLOAD = 1 << 30
"""The largest remote context downloaded (bytes, as received: compressed)."""
SOCKET_TIMEOUT = 60.0
"""Seconds a download or a git command may wait for the server without progress."""
DEADLINE = 1800.0
"""Seconds a download or a clone may take in all."""

_GIT_PREFIXES = ("git://", "github.com/", "git@")
_GIT_SUFFIX = re.compile(r".git(?:#.+)?$")  # moby's (the unescaped dot included)
_COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}
SNIFF_SIZE = 1024
"""Bytes :func:`sniff` needs to decide (a tar's first header is 512)."""

Log = Callable[[str], None]


def is_url(remote: str) -> bool:
    """An http(s) URL (moby's ``urlutil.IsURL``: a prefix check, nothing more)."""
    return remote.startswith(("http://", "https://"))


def is_git_url(remote: str) -> bool:
    """A git repository as ``docker build`` reads it (moby's ``urlutil.IsGitURL``)."""
    return (is_url(remote) and _GIT_SUFFIX.search(remote) is not None) or remote.startswith(_GIT_PREFIXES)


def classify(remote: str) -> str:
    """``"git"``, ``"url"`` or, for anything else, an :class:`InvalidArgument`."""
    if is_git_url(remote):
        return "git"
    if is_url(remote):
        return "url"
    raise InvalidArgument(f"remoteURL ({remote}) could not be recognized as URL")


# ------------------------------------------------------------------ git


@dataclass(frozen=True)
class GitSource:
    """A git remote split as moby's ``parseRemoteURL``: the URL git fetches from, the ref
    (empty: the remote's default branch) and the context's directory in the repository."""

    remote: str
    ref: str = ""
    subdir: str = ""


def _is_git_transport(url: str) -> bool:
    return url.startswith("git@") or urllib.parse.urlsplit(url).scheme in ("git", "http", "https", "ssh")


def parse_git_url(url: str) -> GitSource:
    """Split a git URL into remote, ref and subdir (``URL#ref:subdir``)."""
    if not _is_git_transport(url):
        url = "https://" + url  # github.com/user/repo
    if url.startswith("git@"):  # scp-like, not a URL
        remote, _, fragment = url.partition("#")
    else:
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError as exc:
            raise InvalidArgument(f"invalid git URL {url}: {exc}") from None
        fragment = parts.fragment
        remote = urllib.parse.urlunsplit(parts._replace(fragment=""))
    ref, _, subdir = fragment.partition(":")
    if ref.startswith("-"):
        raise InvalidArgument(f"invalid refspec: {ref}")
    if not remote or remote in ("https://", "git@"):
        raise InvalidArgument(f"invalid git URL {url}: no repository")
    if subdir:
        norm = posixpath.normpath(subdir.lstrip("/") or ".")
        if norm == ".." or norm.startswith("../"):
            raise InvalidArgument(f"error setting git context, {subdir!r} not within git root")
        subdir = "" if norm == "." else norm
    return GitSource(remote, ref, subdir)


_GIT_OPTIONS = ("-c", "protocol.file.allow=never",  # no local repository as a submodule (moby)
                "-c", "http.lowSpeedLimit=1", "-c", f"http.lowSpeedTime={int(SOCKET_TIMEOUT)}")


def _git_env(isolated: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_PROTOCOL_FROM_USER="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    if isolated:  # the daemon: no system or user configuration (moby: WithIsolatedConfig)
        env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", HOME="/dev/null")
        env.pop("XDG_CONFIG_HOME", None)
    return env


def _git(args: list[str], cwd: Path, env: dict[str, str], deadline: float, what: str) -> str:
    """Run git; its combined output, or an error naming ``what`` and git's message."""
    timeout = max(1.0, deadline - time.monotonic())
    try:
        proc = subprocess.run(["git", *_GIT_OPTIONS, *args], cwd=cwd, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise Unavailable("unable to find 'git': install git to build from a git repository") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{what}: git {args[0]} timed out after {timeout:.0f}s") from None
    except OSError as exc:
        raise from_oserror(exc, f"{what}: run git") from None
    out = proc.stdout.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        message = " ".join(line.strip() for line in out.splitlines() if line.strip()) or f"exit status {proc.returncode}"
        raise InvalidArgument(f"{what}: {message}")
    return out


def supports_shallow(remote: str, *, timeout: float = SOCKET_TIMEOUT) -> bool:
    """Whether ``git fetch --depth 1`` can work: any non-http transport, or a "smart" http
    server (it answers ``info/refs?service=git-upload-pack`` with the upload-pack
    advertisement), as moby's ``supportsShallowClone`` checks."""
    if urllib.parse.urlsplit(remote).scheme not in ("http", "https"):
        return True
    url = remote + "/info/refs?service=git-upload-pack"
    for method in ("HEAD", "GET"):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=timeout) as resp:
                if resp.status == 200:
                    return bool(resp.headers.get("Content-Type") == "application/x-git-upload-pack-advertisement")
        except (OSError, ValueError):
            continue
    return False


def clone(source: GitSource, parent: Path, *, isolated: bool, deadline: float | None = None) -> tuple[Path, Path]:
    """Clone ``source`` into a new directory under ``parent``; return (the clone's root, the
    context directory in it).  ``.git`` entries are removed.  The caller removes the root;
    on failure nothing is left behind."""
    end = time.monotonic() + DEADLINE if deadline is None else deadline
    what = f"error fetching git repository {source.remote}"
    env = _git_env(isolated)
    try:
        root = Path(tempfile.mkdtemp(prefix="git-", dir=parent))
    except OSError as exc:
        raise from_oserror(exc, f"{what}: make a directory in {parent}") from None
    try:
        _git(["init", "-q"], root, env, end, what)
        _git(["remote", "add", "origin", source.remote], root, env, end, what)
        depth = ["--depth", "1"] if supports_shallow(source.remote) else []
        _git(["fetch", "-q", *depth, "origin", "--", source.ref or "HEAD"], root, env, end, what)
        _git(["checkout", "-q", "FETCH_HEAD"], root, env, end,
             f"error checking out {source.ref or 'HEAD'} of {source.remote}")
        _git(["submodule", "update", "-q", "--init", "--recursive", "--depth=1"], root, env, end,
             f"error initializing submodules of {source.remote}")
        _remove_git_dirs(root)
        context = _context_dir(root, source)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return root, context


def _remove_git_dirs(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (".git",):
            if name in dirnames:
                dirnames.remove(name)
                shutil.rmtree(Path(dirpath, name))
            elif name in filenames:  # a submodule's gitlink
                os.unlink(Path(dirpath, name))


def _context_dir(root: Path, source: GitSource) -> Path:
    """``subdir`` inside the clone, symlinks resolved but never outside it."""
    if not source.subdir:
        return root
    real_root = os.path.realpath(root)
    path = os.path.realpath(root / source.subdir)
    if path != real_root and not path.startswith(real_root + "/"):
        raise InvalidArgument(f"error setting git context, {source.subdir!r} not within git root")
    if not os.path.isdir(path):
        if not os.path.lexists(path):
            raise NotFound(f"error setting git context: {source.subdir!r} not found in {source.remote}")
        raise InvalidArgument(f"error setting git context, not a directory: {source.subdir}")
    return Path(path)


# ------------------------------------------------------------------ http(s)


def sniff(head: bytes) -> str:
    """What the first bytes of a download are: ``gzip``, ``bzip2``, ``xz``, ``zstd``,
    ``tar``, ``text`` (a Dockerfile) or ``binary`` (neither)."""
    for magic, name in _COMPRESSED.items():
        if head.startswith(magic):
            return name
    if len(head) >= 512 and (head[257:262] == b"ustar" or _tar_checksum_ok(head[:512])):
        return "tar"
    if not head or b"\0" in head:
        return "binary"
    import codecs

    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "binary"
    return "text"


def _tar_checksum_ok(block: bytes) -> bool:
    """A v7 tar header: the checksum field matches the header's bytes."""
    field = block[148:156].split(b"\0", 1)[0].strip()
    try:
        stored = int(field, 8)
    except ValueError:
        return False
    if not block[:100].strip(b"\0"):
        return False
    return stored == sum(block[:148]) + 8 * 32 + sum(block[156:])


def _http_error(url: str, exc: urllib.error.HTTPError) -> SampanError:
    """An HTTP error status as dockerd's ``GetWithStatusError`` words and classes it."""
    try:
        body = exc.read(4096).decode("utf-8", "replace").strip()
    except OSError:
        body = ""
    msg = f"failed to GET {url} with status {exc.code} {exc.reason}" + (f": {body}" if body else "")
    cls: type[SampanError] = {400: InvalidArgument, 401: Unauthorized, 403: PermissionDenied, 404: NotFound}.get(
        exc.code, Unavailable)
    return cls(msg)


def download(url: str, out: BinaryIO, *, limit: int = MAX_DOWNLOAD, timeout: float = SOCKET_TIMEOUT,
             deadline: float = DEADLINE) -> int:
    """Stream ``url`` into ``out``; return the byte count.  Errors name the URL: an HTTP
    error status (404 is NotFound), an unreachable host, a body over ``limit`` bytes, no
    byte for ``timeout`` seconds or a transfer longer than ``deadline`` seconds."""
    what = f"error downloading remote context {url}"
    end = time.monotonic() + deadline
    request = urllib.request.Request(url, headers={"User-Agent": "sampan"})
    size = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise InvalidArgument(f"{what}: {int(length)} bytes is larger than the limit of {_human(limit)}")
            while chunk := resp.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise InvalidArgument(f"{what}: larger than the limit of {_human(limit)}")
                if time.monotonic() > end:
                    raise Unavailable(f"{what}: not finished after {deadline:.0f}s")
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise _http_error(url, exc) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, OSError) and "Name or service not known" in str(reason):
            raise NotFound(f"{what}: {reason.strerror or reason}") from None
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
        raise Unavailable(f"{what}: {text}") from None
    except TimeoutError:
        raise Unavailable(f"{what}: no data for {timeout:.0f}s") from None
    except (OSError, ValueError) as exc:  # reset connection, truncated body, bad URL
        raise Unavailable(f"{what}: {exc}") from None
    return size


def _human(n: int) -> str:
    return f"{n >> 30} GiB" if n >= 1 << 30 and not n % (1 << 30) else f"{n} bytes"


# ------------------------------------------------------------------ the context


def fetch_context(remote: str, dest: Path, *, dockerfile: str = "", scratch: Path, log: Log | None = None,
                  limit: int = MAX_DOWNLOAD) -> str:
    """Fill the empty directory ``dest`` with the context ``remote`` names and return the
    Dockerfile's name in it (``dockerfile`` unchanged, or the name a bare Dockerfile got).

    ``scratch`` holds the temporary download or clone (on the same filesystem as ``dest``);
    nothing is left in it.  ``log`` gets the legacy builder's progress line."""
    from sampan.build.context import prune_ignored, read_context_tar

    kind = classify(remote)
    say = log or (lambda _text: None)
    if kind == "git":
        source = parse_git_url(remote)
        root, context = clone(source, scratch, isolated=True)
        try:
            try:
                mode = os.stat(dest).st_mode & 0o7777
                os.rename(context, dest)  # onto the empty directory: a rename, no copy
                os.chmod(dest, mode)  # the root as a tar context's (cache keys see its mode)
            except OSError as exc:
                raise from_oserror(exc, f"move the clone of {remote} into {dest}") from None
        finally:
            shutil.rmtree(root, ignore_errors=True)
        prune_ignored(dest, dockerfile)
        return dockerfile
    with tempfile.TemporaryFile(dir=scratch) as body:
        say(f"Downloading build context from remote url: {remote}\n")
        size = download(remote, body, limit=limit)
        body.seek(0)
        head = body.read(SNIFF_SIZE)
        body.seek(0)
        kind = sniff(head)
        if kind == "binary":
            raise InvalidArgument(
                f"remote context {remote} is neither a tar archive (plain, gzip, bzip2, xz, zstd) nor a Dockerfile")
        if kind == "text":
            name = dockerfile or "Dockerfile"
            rel = os.path.normpath("/" + name).lstrip("/")
            if not rel or rel == ".":
                raise InvalidArgument(f"invalid Dockerfile name {dockerfile!r}")
            target = dest / rel
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as f:
                    shutil.copyfileobj(body, f)
                os.chmod(target, 0o644)
            except OSError as exc:
                raise from_oserror(exc, f"write the Dockerfile of {remote}") from None
            say(f"Downloaded a Dockerfile ({size} bytes); the context is this file alone\n")
            return name
        read_context_tar(body, dest, where=f"remote context {remote}")  # type: ignore[arg-type]
    prune_ignored(dest, dockerfile)
    return dockerfile
