"""The one error vocabulary of sampan.

Every layer raises these; only the edges translate them: ``api/errors.py`` maps a class to an
HTTP status, ``cli/exitcodes.py`` maps a class to an exit code, and ``client/`` turns an HTTP
status back into a class.  Nothing else picks a behaviour by matching message text.

::

    SampanError
     ├── InvalidArgument            bad input: a flag, a field, a reference, an archive entry
     │    ├── InvalidReference      "invalid reference format"
     │    ├── UnsafeArchiveEntry    a layer entry that would escape or corrupt the layer
     │    ├── DigestMismatch        content whose digest is not the one announced
     │    ├── DockerfileParseError  "dockerfile parse error on line 3: unknown instruction: RUNN"
     │    └── InvalidConfig         a config file or OCI spec field
     ├── NotFound
     │    ├── NoSuchImage           "No such image: busybox:latest"
     │    ├── NoSuchContainer       "No such container: web"
     │    ├── NoSuchExec, NoSuchVolume, NoSuchNetwork, BlobNotFound
     ├── Conflict                   the request is valid but the state forbids it
     │    ├── NameInUse, ImageInUse, ContainerRunning, ContainerNotRunning, DataRootLocked
     ├── NotModified                already in the requested state (start of a running container)
     ├── Unauthorized               credentials missing or refused
     ├── PermissionDenied           the caller or the kernel said no (EPERM, EACCES)
     ├── NotImplementedFeature      a feature sampan does not have (yet); says which
     ├── Unavailable                a daemon, registry or kernel feature cannot be reached
     └── Internal                   a bug or an unexpected system failure; the message says what

Messages carry Docker's wording where Docker has one, because scripts match on them.
"""

from __future__ import annotations


class SampanError(Exception):
    """Base of every error sampan raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(SampanError):
    """The request itself is wrong: a flag, a field, a name, an archive entry."""


class InvalidReference(InvalidArgument):
    """An image reference that does not follow Docker's grammar."""

    def __init__(self, reference: str, reason: str = "invalid reference format") -> None:
        super().__init__(f"{reason}: {reference!r}" if reference else reason)
        self.reference = reference


class UnsafeArchiveEntry(InvalidArgument):
    """A tar entry refused because it could write, link or remove outside its layer."""

    def __init__(self, entry: str, reason: str, *, where: str = "") -> None:
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}refusing archive entry {entry!r}: {reason}")
        self.entry = entry
        self.reason = reason


class DigestMismatch(InvalidArgument):
    """Content whose computed digest differs from the expected one."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{what}: digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class InvalidConfig(InvalidArgument):
    """A configuration document (daemon.json, OCI config.json, ...) with a bad field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


class DockerfileParseError(InvalidArgument):
    """A Dockerfile that cannot be parsed: "dockerfile parse error on line 3: ..." (BuildKit)."""

    def __init__(self, message: str, line: int = 0) -> None:
        prefix = f"dockerfile parse error on line {line}: " if line > 0 else ""
        super().__init__(prefix + message)
        self.line = line
        self.reason = message


class NotFound(SampanError):
    """The named object does not exist."""


class NoSuchImage(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"No such image: {name}")
        self.name = name


class NoSuchContainer(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"No such container: {name}")
        self.name = name


class NoSuchExec(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"No such exec instance: {name}")
        self.name = name


class NoSuchVolume(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"get {name}: no such volume")
        self.name = name


class NoSuchNetwork(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"network {name} not found")
        self.name = name


class BlobNotFound(NotFound):
    def __init__(self, digest: str) -> None:
        super().__init__(f"blob not found: {digest}")
        self.digest = digest


class Conflict(SampanError):
    """Valid request, but the current state forbids it."""


class NameInUse(Conflict):
    pass


class ImageInUse(Conflict):
    pass


class ContainerRunning(Conflict):
    pass


class ContainerNotRunning(Conflict):
    pass


class DataRootLocked(Conflict):
    def __init__(self, root: str, holder: str = "") -> None:
        who = f" (held by {holder})" if holder else ""
        super().__init__(f"data root {root} is in use by another sampand{who}")
        self.root = root


class NotModified(SampanError):
    """Already in the requested state."""


class Unauthorized(SampanError):
    """Credentials missing or refused."""


class PermissionDenied(SampanError):
    """The caller or the kernel refused the operation."""


class NotImplementedFeature(SampanError):
    """A feature sampan does not implement; the message names it.

    (Named so because ``NotImplemented`` is a Python builtin constant.)
    """


class Unavailable(SampanError):
    """A daemon, registry or kernel feature cannot be reached or is missing."""


class Internal(SampanError):
    """An unexpected failure; the message says what was being done."""


def from_oserror(exc: OSError, what: str) -> SampanError:
    """Translate an OSError whose meaning is known at the call site into the tree.

    ``what`` says what was being done ("mount overlay on /x", "open layer tar"), so the
    message stays useful without a traceback.
    """
    import errno

    text = f"{what}: {exc.strerror or exc}"
    if exc.errno == errno.ENOENT:
        return NotFound(text)
    if exc.errno in (errno.EPERM, errno.EACCES):
        return PermissionDenied(text)
    if exc.errno == errno.EEXIST:
        return Conflict(text)
    if exc.errno in (errno.EINVAL, errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR):
        return InvalidArgument(text)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return Unavailable(f"{what}: no space left on device")
    if exc.errno == errno.ENOSYS:
        return NotImplementedFeature(text)
    return Internal(text)
