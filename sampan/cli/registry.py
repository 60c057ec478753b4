"""``pull``, ``push``, ``login`` and ``logout``: registries through the daemon.

Credentials live where docker keeps them, in ``config.json`` of the directory ``SAMPAN_CONFIG``
or ``DOCKER_CONFIG`` names (default ``~/.docker``): ``auths`` holds base64 ``user:password``
(or an ``identitytoken``) per registry; ``credsStore`` / ``credHelpers`` hand them to a
``docker-credential-<name>`` helper (``get``/``store``/``erase`` on stdin/stdout) when that helper
is installed.  Docker Hub's key is ``https://index.docker.io/v1/``; other registries are keyed
by ``host[:port]``.  Each pull or push sends the registry's credentials in ``X-Registry-Auth``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.cli.flags import Flag, Spec

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options

HUB_KEY = "https://index.docker.io/v1/"

PULL = Spec(
    "image pull", "[OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry",
    Flag("all-tags", "a", help="Download all tagged images in the repository"),
    Flag("platform", kind="string", help="Set platform if server is multi-platform capable"),
    Flag("quiet", "q", help="Suppress verbose output"),
    Flag("disable-content-trust", help="Skip image verification (default true)"),
    aliases=("image pull", "pull"), min_args=1, max_args=1,
)
PUSH = Spec(
    "image push", "[OPTIONS] NAME[:TAG]", "Upload an image to a registry",
    Flag("all-tags", "a", help="Push all tags of an image to the repository"),
    Flag("quiet", "q", help="Suppress verbose output"),
    Flag("disable-content-trust", help="Skip image signing (default true)"),
    aliases=("image push", "push"), min_args=1, max_args=1,
)
LOGIN = Spec(
    "login", "[OPTIONS] [SERVER]", "Authenticate to a registry",
    Flag("username", "u", kind="string", help="Username"),
    Flag("password", "p", kind="string", help="Password"),
    Flag("password-stdin", help="Take the password from stdin"),
    max_args=1,
)
LOGOUT = Spec("logout", "[SERVER]", "Log out from a registry", max_args=1)


# ---------------------------------------------------------------- credentials


def config_dir(environ: Any) -> Path:
    for key in ("SAMPAN_CONFIG", "DOCKER_CONFIG"):
        if environ.get(key):
            return Path(environ[key])
    return Path(environ.get("HOME") or os.path.expanduser("~")) / ".docker"


def server_key(server: str) -> str:
    """The key a registry's credentials are stored under (docker's)."""
    text = server.strip()
    bare = text.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if not text or bare in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return HUB_KEY
    return bare


def registry_of(name: str) -> str:
    from sampan.image import reference

    return server_key(reference.parse(name, default_tag=False).domain)


class CredentialStore:
    """``config.json`` of one directory, and the helpers it names."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "config.json"

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise errors.InvalidArgument(f"loading config file {self.path}: {exc}") from None
        return data if isinstance(data, dict) else {}

    def save(self, data: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".config.json.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent="\t")
            f.write("\n")
        os.replace(tmp, self.path)

    def helper(self, key: str, data: dict[str, Any]) -> str:
        name = (data.get("credHelpers") or {}).get(key) or data.get("credsStore") or ""
        if name and shutil.which(f"docker-credential-{name}"):
            return str(name)
        return ""

    def _run_helper(self, name: str, action: str, payload: str) -> str:
        try:
            r = subprocess.run([f"docker-credential-{name}", action], input=payload, capture_output=True,
                               text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise errors.Unavailable(f"credential helper docker-credential-{name}: {exc}") from None
        if r.returncode != 0:
            text = (r.stdout or r.stderr).strip()
            if action == "get" and "credentials not found" in text.lower():
                return ""
            raise errors.Unavailable(f"credential helper docker-credential-{name} {action}: {text}")
        return r.stdout

    def get(self, key: str) -> dict[str, str]:
        """Docker's AuthConfig for ``key`` ({} when none is stored)."""
        data = self.load()
        helper = self.helper(key, data)
        if helper:
            answer = self._run_helper(helper, "get", key)
            if not answer.strip():
                return {}
            doc = json.loads(answer)
            user, secret = str(doc.get("Username", "")), str(doc.get("Secret", ""))
            if user == "<token>":
                return {"identitytoken": secret, "serveraddress": key}
            return {"username": user, "password": secret, "serveraddress": key}
        entry = (data.get("auths") or {}).get(key) or {}
        out: dict[str, str] = {"serveraddress": key}
        if entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode("utf-8", "replace").partition(":")
            out.update(username=user, password=password)
        if entry.get("identitytoken"):
            out["identitytoken"] = str(entry["identitytoken"])
        return out if len(out) > 1 else {}

    def store(self, key: str, username: str, password: str, identity_token: str) -> str:
        """Store credentials; return the warning to print (plain-text storage) or ""."""
        data = self.load()
        helper = self.helper(key, data)
        if helper:
            user, secret = ("<token>", identity_token) if identity_token else (username, password)
            self._run_helper(helper, "store", json.dumps({"ServerURL": key, "Username": user, "Secret": secret}))
            data.setdefault("auths", {})[key] = {}
            self.save(data)
            return ""
        entry: dict[str, str] = {}
        if identity_token:
            entry["auth"] = base64.b64encode(f"{username}:".encode()).decode()
            entry["identitytoken"] = identity_token
        else:
            entry["auth"] = base64.b64encode(f"{username}:{password}".encode()).decode()
        data.setdefault("auths", {})[key] = entry
        self.save(data)
        return (f"WARNING! Your credentials are stored unencrypted in '{self.path}'.\n"
                "Configure a credential helper to remove this warning. See\n"
                "https://docs.docker.com/go/credential-store/\n")

    def erase(self, key: str) -> bool:
        data = self.load()
        helper = self.helper(key, data)
        found = key in (data.get("auths") or {})
        if helper:
            self._run_helper(helper, "erase", key)
        if found:
            del data["auths"][key]
            self.save(data)
        return found or bool(helper)


def registry_auth_header(ctx: Context, name: str) -> dict[str, str]:
    """``{"X-Registry-Auth": ...}`` for the registry of image ``name`` (empty if none stored)."""
    key = registry_of(name)
    creds = CredentialStore(config_dir(ctx.environ)).get(key)
    if not creds:
        return {}
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(creds).encode()).decode()}


# ---------------------------------------------------------------- commands


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _split(name: str) -> tuple[str, str]:
    """``a/b:1`` -> (``a/b``, ``1``); ``a@sha256:..`` -> (``a``, ``sha256:..``); ``a`` -> (``a``, "")."""
    if "@" in name:
        repo, _, digest = name.partition("@")
        return repo, digest
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, ""


def pull(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.progress import display
    from sampan.image import reference

    name = args[0]
    ref = reference.parse(name, default_tag=False)  # a bad name fails here, before any request
    repo, tag = _split(name)
    if opts["all_tags"]:
        if tag:
            raise errors.InvalidArgument("tag can't be used with --all-tags/-a")
    elif not tag:
        tag = "latest"
        if not opts["quiet"]:
            ctx.stdout.write("Using default tag: latest\n")
    query: dict[str, Any] = {"fromImage": repo, "tag": tag or None, "platform": str(opts["platform"]) or None}
    messages = ctx.client().stream("POST", "/images/create", query=query, headers=registry_auth_header(ctx, name))
    quiet = bool(opts["quiet"])
    out = _Null() if quiet else ctx.stdout
    display(messages, out, tty=_isatty(ctx.stdout) and not quiet)  # type: ignore[arg-type]
    full = ref.name if opts["all_tags"] else str(ref if (ref.tag or ref.digest) else ref.with_tag("latest"))
    ctx.stdout.write(full + "\n")
    return 0


def push(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.progress import display
    from sampan.image import reference

    name = args[0]
    ref = reference.parse(name, default_tag=False)
    if ref.digest:
        raise errors.InvalidArgument(f"cannot push a digest reference: {name}")
    repo, tag = _split(name)
    if opts["all_tags"]:
        if tag:
            raise errors.InvalidArgument("tag can't be used with --all-tags/-a")
    elif not tag:
        tag = "latest"
        if not opts["quiet"]:
            ctx.stdout.write("Using default tag: latest\n")
    messages = ctx.client().stream("POST", f"/images/{repo}/push", query={"tag": tag or None},
                                   headers=registry_auth_header(ctx, name))
    quiet = bool(opts["quiet"])
    out = _Null() if quiet else ctx.stdout
    display(messages, out, tty=_isatty(ctx.stdout) and not quiet)  # type: ignore[arg-type]
    if quiet:
        ctx.stdout.write(str(ref.with_tag(tag)) + "\n" if tag else ref.name + "\n")
    return 0


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def login(ctx: Context, opts: Options, args: list[str]) -> int:
    server = args[0] if args else ""
    key = server_key(server)
    username, password = str(opts["username"]), str(opts["password"])
    if opts["password_stdin"]:
        if password:
            raise errors.InvalidArgument("--password and --password-stdin are mutually exclusive")
        if not username:
            raise errors.InvalidArgument("Must provide --username with --password-stdin")
        password = ctx.stdin.read().rstrip("\r\n")
    if password and not opts["password_stdin"]:
        ctx.stderr.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    store = CredentialStore(config_dir(ctx.environ))
    if not username and not password:
        stored = store.get(key)
        if stored:
            _auth(ctx, key, stored)
            ctx.stdout.write("Login Succeeded\n")
            return 0
        if not _isatty(ctx.stdin):
            raise errors.InvalidArgument("Cannot perform an interactive login from a non TTY device")
        ctx.stdout.write("Username: ")
        ctx.stdout.flush()
        username = ctx.stdin.readline().strip()
    if not password:
        import getpass

        password = getpass.getpass("Password: ") if _isatty(ctx.stdin) else ctx.stdin.readline().rstrip("\r\n")
    if not username:
        raise errors.InvalidArgument("Error: Non-null Username Required")
    if not password:
        raise errors.InvalidArgument("Error: Password Required")
    answer = _auth(ctx, key, {"username": username, "password": password, "serveraddress": key})
    token = str(answer.get("IdentityToken") or "")
    warning = store.store(key, username, password, token)
    if warning:
        ctx.stderr.write(warning)
    ctx.stdout.write(str(answer.get("Status") or "Login Succeeded") + "\n")
    return 0


def _auth(ctx: Context, key: str, creds: dict[str, str]) -> dict[str, Any]:
    body = dict(creds)
    body["serveraddress"] = key
    answer = ctx.client().json("POST", "/auth", body=body)
    return answer if isinstance(answer, dict) else {}


def logout(ctx: Context, opts: Options, args: list[str]) -> int:
    server = args[0] if args else ""
    key = server_key(server)
    store = CredentialStore(config_dir(ctx.environ))
    shown = key
    if not store.erase(key):
        ctx.stdout.write(f"Not logged in to {shown}\n")
        return 0
    ctx.stdout.write(f"Removing login credentials for {shown}\n")
    return 0

__all__ = ["LOGIN", "LOGOUT", "PULL", "PUSH", "login", "logout", "pull", "push"]
