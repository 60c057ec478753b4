"""Registry authentication on the client side: anonymous, Basic, Bearer tokens, identity tokens.

Vocabulary: *credentials* (:class:`Credentials`) are what a user gave for one registry — a
username and password, an *identity token* (an OAuth2 refresh token a registry handed out at
login), or a ready *registry token*; they arrive with each Engine API request in the
``X-Registry-Auth`` header (base64url JSON, :func:`decode_registry_auth`) and the daemon never
stores them.  A *challenge* is a registry's ``WWW-Authenticate`` answer to an unauthenticated
request; a *scope* is ``repository:NAME:pull,push``.

Typical use (``registry.py`` does this)::

    auth = Authorizer(credentials, fetch=token_fetcher)
    header = auth.header("127.0.0.1:5000", ["repository:app:pull"])   # None before a challenge
    ... a 401 arrives ...
    auth.challenged("127.0.0.1:5000", response_www_authenticate)
    header = auth.header("127.0.0.1:5000", ["repository:app:pull"])   # "Bearer eyJ..." now

The Bearer flow is Docker's token spec: ``GET realm?service=S&scope=A&scope=B`` with Basic
credentials (or none: anonymous), or, with an identity token, the OAuth2 ``POST realm`` of
``grant_type=refresh_token``.  Tokens are cached per (realm, service, scopes) until they expire.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sampan.errors import InvalidArgument, Unauthorized

#: (method, url, headers, form body or None) -> (status, body bytes)
TokenFetch = Callable[[str, str, dict[str, str], "bytes | None"], tuple[int, bytes]]

CLIENT_ID = "sampan"


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""
    registry_token: str = ""
    server_address: str = ""

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def basic(self) -> str:
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()


def _b64decode(text: str) -> bytes:
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded)
    except (binascii.Error, ValueError):
        raise InvalidArgument("X-Registry-Auth: not valid base64") from None


def decode_registry_auth(header: str | None) -> Credentials:
    """The credentials of an ``X-Registry-Auth`` header (empty or ``{}`` = anonymous)."""
    if not header or not header.strip():
        return Credentials()
    try:
        data = json.loads(_b64decode(header))
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("X-Registry-Auth: not base64-encoded JSON") from None
    if not isinstance(data, dict):
        return Credentials()
    return credentials_from_json(data)


def credentials_from_json(data: dict[str, Any]) -> Credentials:
    """Docker's AuthConfig JSON (``username``, ``password``, ``auth``, ``identitytoken``, ...)."""

    def get(*keys: str) -> str:
        for key in keys:
            for k, v in data.items():
                if k.lower() == key and isinstance(v, str):
                    return v
        return ""

    username, password = get("username"), get("password")
    packed = get("auth")
    if packed and not username:
        user, sep, pw = _b64decode(packed).decode("utf-8", "replace").partition(":")
        if not sep:
            raise InvalidArgument("registry credentials: 'auth' is not base64 of user:password")
        username, password = user, pw
    return Credentials(
        username=username, password=password, identity_token=get("identitytoken"),
        registry_token=get("registrytoken"), server_address=get("serveraddress"),
    )


def encode_registry_auth(creds: Credentials) -> str:
    """The ``X-Registry-Auth`` value for ``creds`` (base64url JSON, as the docker CLI sends)."""
    body: dict[str, str] = {}
    if creds.username or creds.password:
        body["username"], body["password"] = creds.username, creds.password
    if creds.identity_token:
        body["identitytoken"] = creds.identity_token
    if creds.registry_token:
        body["registrytoken"] = creds.registry_token
    if creds.server_address:
        body["serveraddress"] = creds.server_address
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic" (lower case)
    params: dict[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """``Bearer realm="https://a/token",service="a",scope="x" , Basic realm="r"`` -> challenges."""
    out: list[Challenge] = []
    i, n = 0, len(header)
    current: Challenge | None = None
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        start = i
        while i < n and header[i] not in " \t=,":
            i += 1
        token = header[start:i]
        if not token:
            break
        j = i
        while j < n and header[j] in " \t":
            j += 1
        if j < n and header[j] == "=" and current is not None:
            i = j + 1
            while i < n and header[i] in " \t":
                i += 1
            if i < n and header[i] == '"':
                i += 1
                value = []
                while i < n and header[i] != '"':
                    if header[i] == "\\" and i + 1 < n:
                        i += 1
                    value.append(header[i])
                    i += 1
                i += 1
                current.params[token.lower()] = "".join(value)
            else:
                start = i
                while i < n and header[i] not in " \t,":
                    i += 1
                current.params[token.lower()] = header[start:i]
        else:
            current = Challenge(token.lower(), {})
            out.append(current)
            i = j
    return out


@dataclass
class _Token:
    value: str
    expires: float


class Authorizer:
    """The ``Authorization`` header for each request to each registry host; thread-safe."""

    def __init__(self, credentials: Credentials, fetch: TokenFetch) -> None:
        self.credentials = credentials
        self._fetch = fetch
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, str, tuple[str, ...]], _Token] = {}
        self._lock = threading.Lock()
        self.refresh_token = ""  # set when a token server handed one out (login)

    def challenged(self, host: str, www_authenticate: str) -> bool:
        """Record a 401's challenge; False when nothing new can be tried (give up)."""
        found = [c for c in parse_challenges(www_authenticate) if c.scheme in ("bearer", "basic")]
        if not found:
            return False
        challenge = next((c for c in found if c.scheme == "bearer"), found[0])
        with self._lock:
            old = self._challenges.get(host)
            self._challenges[host] = challenge
            if old == challenge:
                # the same challenge again: what we sent was refused.  A cached token may have
                # expired early: forget the realm's tokens and try once more with a fresh one
                # (the caller bounds the attempts); Basic credentials are simply wrong.
                realm = challenge.params.get("realm")
                before = len(self._tokens)
                self._tokens = {k: v for k, v in self._tokens.items() if k[0] != realm}
                return challenge.scheme == "bearer" and len(self._tokens) < before
        return True

    def header(self, host: str, scopes: list[str]) -> str | None:
        challenge = self._challenges.get(host)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            if self.credentials.anonymous:
                return None  # the registry's 401 stands: "authentication required"
            return self.credentials.basic()
        if self.credentials.registry_token:
            return "Bearer " + self.credentials.registry_token
        return "Bearer " + self.token(challenge, scopes)

    def token(self, challenge: Challenge, scopes: list[str]) -> str:
        realm = challenge.params.get("realm", "")
        service = challenge.params.get("service", "")
        if not realm:
            raise Unauthorized("registry's Bearer challenge names no realm")
        wanted = sorted(set(scopes) | ({challenge.params["scope"]} if challenge.params.get("scope") else set()))
        key = (realm, service, tuple(wanted))
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.expires > time.time() + 5:
                return cached.value
        value, expires = self._request_token(realm, service, wanted)
        with self._lock:
            self._tokens[key] = _Token(value, expires)
        return value

    def _request_token(self, realm: str, service: str, scopes: list[str], *, offline: bool = False) -> tuple[str, float]:
        creds = self.credentials
        if creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "client_id": CLIENT_ID, "service": service}
            if scopes:
                form["scope"] = " ".join(scopes)
            status, body = self._fetch(
                "POST", realm, {"Content-Type": "application/x-www-form-urlencoded"}, urlencode(form).encode()
            )
        else:
            query: list[tuple[str, str]] = [("service", service)] if service else []
            query += [("scope", s) for s in scopes]
            if offline and not creds.anonymous:
                query += [("offline_token", "true"), ("client_id", CLIENT_ID)]
            headers = {} if creds.anonymous else {"Authorization": creds.basic()}
            sep = "&" if "?" in realm else "?"
            status, body = self._fetch("GET", realm + (sep + urlencode(query) if query else ""), headers, None)
        if status in (401, 403):
            raise Unauthorized(f"authentication failed at {realm}: {_error_text(body) or 'credentials refused'}")
        if status != 200:
            raise Unauthorized(f"token server {realm} answered {status}: {_error_text(body)}")
        try:
            doc = json.loads(body)
            value = str(doc.get("token") or doc.get("access_token") or "")
            lifetime = float(doc.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            raise Unauthorized(f"token server {realm}: malformed answer") from None
        if not value:
            raise Unauthorized(f"token server {realm}: no token in its answer")
        if isinstance(doc.get("refresh_token"), str):
            self.refresh_token = doc["refresh_token"]
        return value, time.time() + min(lifetime, 3600)

    def login_token(self, host: str) -> str:
        """After a Bearer challenge: check the credentials with the token server and return an
        identity token if it offers one (``POST /auth``)."""
        challenge = self._challenges.get(host)
        if challenge is None or challenge.scheme != "bearer":
            return ""
        self._request_token(challenge.params.get("realm", ""), challenge.params.get("service", ""), [], offline=True)
        return self.refresh_token


def _error_text(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(doc, dict):
        errs = doc.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            return str(errs[0].get("message") or errs[0].get("code") or "")
        if "details" in doc or "message" in doc:
            return str(doc.get("details") or doc.get("message"))
    return ""
