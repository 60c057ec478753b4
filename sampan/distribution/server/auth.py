"""Who may do what on the registry: no auth, htpasswd Basic, or Bearer tokens with scopes.

Vocabulary (Docker's token spec): an *access* is ``type:name:actions`` (``repository:app:pull,push``,
``registry:catalog:*``); a request *needs* a list of accesses; an :class:`Authorizer` either lets
it through or raises a :class:`RegistryError` whose ``WWW-Authenticate`` header tells the
client how to authenticate:

* :class:`OpenAuthorizer` — everyone may do everything;
* :class:`HtpasswdAuthorizer` — Basic credentials checked against an htpasswd file of bcrypt
  hashes; a valid user may do everything (as the distribution registry's htpasswd mode);
* :class:`TokenAuthorizer` — the client trades Basic credentials (or nothing, as ``anonymous``)
  for a token at ``GET /token?service=&scope=...``; the token is an HS256 JWT whose ``access``
  claim holds what the user's rules grant of the scopes asked; the registry checks it and answers
  ``error="insufficient_scope"`` when it lacks the access a request needs.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sampan.distribution.server.errors import RegistryError
from sampan.errors import InvalidConfig

TOKEN_LIFETIME = 300


@dataclass(frozen=True)
class Access:
    type: str
    name: str
    actions: frozenset[str]

    def scope(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"

    def to_claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": sorted(self.actions)}


def parse_scope(text: str) -> list[Access]:
    """Accesses in a ``scope`` parameter (space-separated ``type:name:actions`` items)."""
    out = []
    for item in text.split():
        kind, _, rest = item.partition(":")
        name, _, actions = rest.rpartition(":")
        if not kind or not name:
            raise RegistryError("UNSUPPORTED", f"invalid scope {item!r}", status=400)
        out.append(Access(kind, name, frozenset(a for a in actions.split(",") if a)))
    return out


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _basic(headers: Mapping[str, str]) -> tuple[str, str] | None:
    value = headers.get("Authorization", "")
    scheme, _, cred = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(cred.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class PasswordCheck:
    """bcrypt verification with a cache of recent successes (bcrypt costs ~0.1 s per check)."""

    def __init__(self) -> None:
        self._ok: dict[bytes, float] = {}

    def __call__(self, user: str, password: str, hashed: str) -> bool:
        key = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).digest()
        if key in self._ok:
            return True
        import bcrypt  # imported here: only the auth modes need it

        try:
            good = bcrypt.checkpw(password.encode(), hashed.encode())
        except ValueError:
            return False
        if good:
            if len(self._ok) > 1024:
                self._ok.clear()
            self._ok[key] = time.monotonic()
        return good


def load_htpasswd(path: Path) -> dict[str, str]:
    """user -> bcrypt hash from an htpasswd file (only bcrypt ``$2y$``/``$2b$`` entries)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidConfig("auth.htpasswd.path", f"cannot read {path}: {exc.strerror}") from None
    users = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not hashed.startswith(("$2y$", "$2b$", "$2a$")):
            raise InvalidConfig("auth.htpasswd.path", f"{path}:{n}: not a bcrypt htpasswd entry")
        users[user] = hashed
    return users


class Authorizer(Protocol):
    def authorize(self, headers: Mapping[str, str], needed: list[Access]) -> str:
        """The user name if ``needed`` is allowed; else raise a 401/403 RegistryError."""
        ...

    def login(self, headers: Mapping[str, str]) -> str:
        """The user of a request's Basic credentials (for the web page); raise 401 if none."""
        ...

    def may_pull(self, user: str, name: str) -> bool:
        """Whether ``user`` (from :meth:`login`) may see repository ``name``."""
        ...


class OpenAuthorizer:
    def authorize(self, headers: Mapping[str, str], needed: list[Access]) -> str:
        return ""

    def login(self, headers: Mapping[str, str]) -> str:
        return ""

    def may_pull(self, user: str, name: str) -> bool:
        return True


class HtpasswdAuthorizer:
    def __init__(self, users: dict[str, str], realm: str) -> None:
        self.users = users
        self.realm = realm
        self._check = PasswordCheck()

    def login(self, headers: Mapping[str, str]) -> str:
        cred = _basic(headers)
        if cred is not None:
            user, password = cred
            hashed = self.users.get(user)
            if hashed is not None and self._check(user, password, hashed):
                return user
        raise RegistryError(
            "UNAUTHORIZED", "authentication required",
            headers={"WWW-Authenticate": f'Basic realm="{self.realm}"'},
        )

    def authorize(self, headers: Mapping[str, str], needed: list[Access]) -> str:
        return self.login(headers)

    def may_pull(self, user: str, name: str) -> bool:
        return user in self.users


@dataclass
class TokenUser:
    """A user of token mode: a bcrypt hash (empty for ``anonymous``) and access rules."""

    password_hash: str
    rules: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)  # (type, glob, actions)

    def grant(self, wanted: Access) -> Access:
        allowed: set[str] = set()
        for kind, pattern, actions in self.rules:
            if kind == wanted.type and fnmatch.fnmatchcase(wanted.name, pattern):
                allowed |= set(wanted.actions) if "*" in actions else set(actions)
        return Access(wanted.type, wanted.name, frozenset(wanted.actions & allowed))


class TokenAuthorizer:
    def __init__(
        self, *, realm: str, service: str, issuer: str, secret: bytes, users: dict[str, TokenUser]
    ) -> None:
        if not secret:
            raise InvalidConfig("auth.token.secret", "must not be empty")
        self.realm = realm
        self.service = service
        self.issuer = issuer
        self.secret = secret
        self.users = users
        self._check = PasswordCheck()

    # ---------------------------------------------------------------- token endpoint

    def _user(self, headers: Mapping[str, str]) -> tuple[str, TokenUser]:
        cred = _basic(headers)
        if cred is None:
            anon = self.users.get("anonymous")
            if anon is not None and not headers.get("Authorization"):
                return "anonymous", anon
        else:
            name, password = cred
            user = self.users.get(name)
            if user is not None and user.password_hash and self._check(name, password, user.password_hash):
                return name, user
        raise RegistryError(
            "UNAUTHORIZED", "invalid credentials for the token service",
            headers={"WWW-Authenticate": f'Basic realm="{self.realm}"'},
        )

    def issue(self, headers: Mapping[str, str], scopes: list[str], now: float | None = None) -> dict[str, Any]:
        """The JSON answer of the token endpoint for these Basic credentials and scopes."""
        name, user = self._user(headers)
        granted = []
        for scope in scopes:
            for wanted in parse_scope(scope):
                got = user.grant(wanted)
                if got.actions:
                    granted.append(got)
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.issuer, "sub": name, "aud": self.service, "iat": issued, "nbf": issued - 5,
            "exp": issued + TOKEN_LIFETIME, "access": [a.to_claim() for a in granted],
        }
        token = self.sign(claims)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued))
        return {"token": token, "access_token": token, "expires_in": TOKEN_LIFETIME, "issued_at": stamp}

    def sign(self, claims: dict[str, Any]) -> str:
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        mac = hmac.new(self.secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(mac)}"

    def verify(self, token: str, now: float | None = None) -> dict[str, Any] | None:
        """The claims of a token this registry signed and that is valid now, else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        mac = hmac.new(self.secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(mac, _unb64(parts[2])):
                return None
            claims = json.loads(_unb64(parts[1]))
        except (binascii.Error, ValueError):
            return None
        t = now if now is not None else time.time()
        if not isinstance(claims, dict) or claims.get("aud") != self.service:
            return None
        if not (claims.get("nbf", 0) <= t < claims.get("exp", 0)):
            return None
        return claims

    # ---------------------------------------------------------------- registry side

    def _challenge(self, needed: list[Access], error: str = "") -> str:
        parts = [f'Bearer realm="{self.realm}"', f'service="{self.service}"']
        if needed:
            parts.append(f'scope="{" ".join(a.scope() for a in needed)}"')
        if error:
            parts.append(f'error="{error}"')
        return ",".join(parts)

    def authorize(self, headers: Mapping[str, str], needed: list[Access]) -> str:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        claims = self.verify(token.strip()) if scheme.lower() == "bearer" else None
        if claims is None:
            raise RegistryError(
                "UNAUTHORIZED", "authentication required", headers={"WWW-Authenticate": self._challenge(needed)}
            )
        have: dict[tuple[str, str], set[str]] = {}
        for entry in claims.get("access", []):
            if isinstance(entry, dict):
                have.setdefault((str(entry.get("type")), str(entry.get("name"))), set()).update(
                    str(a) for a in entry.get("actions", [])
                )
        for access in needed:
            granted = have.get((access.type, access.name), set())
            if not (access.actions <= granted or "*" in granted):
                raise RegistryError(
                    "DENIED", f"insufficient_scope: {access.scope()} not granted", status=401,
                    headers={"WWW-Authenticate": self._challenge(needed, "insufficient_scope")},
                )
        return str(claims.get("sub", ""))

    def login(self, headers: Mapping[str, str]) -> str:
        return self._user(headers)[0]

    def may_pull(self, user: str, name: str) -> bool:
        spec = self.users.get(user)
        return spec is not None and bool(spec.grant(Access("repository", name, frozenset({"pull"}))).actions)


def token_users(raw: Any) -> dict[str, TokenUser]:
    """Parse ``auth.token.users``: ``{name: {"password": bcrypt, "access": [{type, name, actions}]}}``."""
    if not isinstance(raw, dict):
        raise InvalidConfig("auth.token.users", "must be an object of user name -> {password, access}")
    users = {}
    for name, spec in raw.items():
        where = f"auth.token.users.{name}"
        if not isinstance(spec, dict):
            raise InvalidConfig(where, "must be an object")
        password = spec.get("password", "")
        if name != "anonymous" and not (isinstance(password, str) and password.startswith("$2")):
            raise InvalidConfig(f"{where}.password", "must be a bcrypt hash ($2y$/$2b$)")
        rules = []
        for i, rule in enumerate(spec.get("access", [])):
            if not isinstance(rule, dict) or not isinstance(rule.get("name"), str):
                raise InvalidConfig(f"{where}.access[{i}]", "needs a name (glob) and actions")
            actions = rule.get("actions", [])
            if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
                raise InvalidConfig(f"{where}.access[{i}].actions", "must be a list of strings")
            rules.append((str(rule.get("type", "repository")), rule["name"], frozenset(actions)))
        users[name] = TokenUser(password if isinstance(password, str) else "", rules)
    return users
