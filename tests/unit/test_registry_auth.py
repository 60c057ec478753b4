"""Token signing and scopes, htpasswd parsing and the registry's auth challenges (no server)."""

from __future__ import annotations

import base64
from pathlib import Path

import bcrypt
import pytest

from sampan.distribution.server import auth
from sampan.distribution.server.errors import RegistryError
from sampan.errors import InvalidConfig

HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def make_tokens() -> auth.TokenAuthorizer:
    users = auth.token_users({
        "dev": {"password": HASH, "access": [{"name": "dev/*", "actions": ["pull", "push"]},
                                             {"name": "lib/*", "actions": ["pull"]}]},
        "admin": {"password": HASH, "access": [{"name": "*", "actions": ["*"]}]},
        "anonymous": {"access": [{"name": "lib/*", "actions": ["pull"]}]},
    })
    return auth.TokenAuthorizer(realm="http://r/token", service="svc", issuer="iss", secret=b"k", users=users)


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("repository:a/b:pull,push", [auth.Access("repository", "a/b", frozenset({"pull", "push"}))]),
        ("repository:host:5000/a:pull", [auth.Access("repository", "host:5000/a", frozenset({"pull"}))]),
        ("registry:catalog:* repository:x:pull",
         [auth.Access("registry", "catalog", frozenset({"*"})), auth.Access("repository", "x", frozenset({"pull"}))]),
    ],
)
def test_parse_scope(scope: str, expected: list[auth.Access]) -> None:
    assert auth.parse_scope(scope) == expected


def test_parse_scope_rejects_garbage() -> None:
    with pytest.raises(RegistryError):
        auth.parse_scope("nonsense")


def test_token_grants_only_what_rules_allow() -> None:
    tokens = make_tokens()
    answer = tokens.issue(basic("dev", "secret"), ["repository:lib/x:pull,push", "repository:dev/y:push"])
    claims = tokens.verify(answer["token"])
    assert claims is not None
    assert claims["access"] == [
        {"type": "repository", "name": "lib/x", "actions": ["pull"]},
        {"type": "repository", "name": "dev/y", "actions": ["push"]},
    ]
    header = {"Authorization": f"Bearer {answer['token']}"}
    need = lambda name, *acts: [auth.Access("repository", name, frozenset(acts))]  # noqa: E731
    assert tokens.authorize(header, need("lib/x", "pull")) == "dev"
    with pytest.raises(RegistryError) as info:
        tokens.authorize(header, need("lib/x", "pull", "push"))
    assert info.value.status == 401 and info.value.code == "DENIED"
    assert 'error="insufficient_scope"' in info.value.headers["WWW-Authenticate"]


def test_token_wildcard_and_anonymous() -> None:
    tokens = make_tokens()
    admin = tokens.issue(basic("admin", "secret"), ["repository:any/thing:pull,push,delete"])
    assert tokens.verify(admin["token"])["access"][0]["actions"] == ["delete", "pull", "push"]  # type: ignore[index]
    anon = tokens.issue({}, ["repository:lib/x:pull,push", "repository:dev/x:pull"])
    assert tokens.verify(anon["token"])["access"] == [  # type: ignore[index]
        {"type": "repository", "name": "lib/x", "actions": ["pull"]}]
    with pytest.raises(RegistryError) as info:
        tokens.issue(basic("dev", "wrong"), [])
    assert info.value.status == 401


def test_token_expiry_tampering_and_audience() -> None:
    tokens = make_tokens()
    token = tokens.issue(basic("dev", "secret"), [], now=1000.0)["token"]
    assert tokens.verify(token, now=1001.0) is not None
    assert tokens.verify(token, now=1000.0 + auth.TOKEN_LIFETIME + 1) is None
    head, body, mac = token.split(".")
    assert tokens.verify(f"{head}.{body}x.{mac}", now=1001.0) is None
    other = auth.TokenAuthorizer(realm="r", service="other", issuer="i", secret=b"k", users={})
    assert other.verify(token, now=1001.0) is None
    with pytest.raises(RegistryError) as info:
        tokens.authorize({"Authorization": "Bearer junk"}, [])
    assert info.value.headers["WWW-Authenticate"] == 'Bearer realm="http://r/token",service="svc"'


def test_htpasswd(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(f"# comment\nalice:{HASH.replace('$2b$', '$2y$', 1)}\n")
    users = auth.load_htpasswd(path)
    ht = auth.HtpasswdAuthorizer(users, "realm")
    assert ht.authorize(basic("alice", "secret"), []) == "alice"
    for headers in ({}, basic("alice", "nope"), basic("bob", "secret"), {"Authorization": "Basic !!!"}):
        with pytest.raises(RegistryError) as info:
            ht.authorize(headers, [])
        assert info.value.headers["WWW-Authenticate"] == 'Basic realm="realm"'
    path.write_text("alice:{SHA}abc\n")
    with pytest.raises(InvalidConfig, match="not a bcrypt"):
        auth.load_htpasswd(path)


def test_token_users_validation() -> None:
    with pytest.raises(InvalidConfig, match="bcrypt"):
        auth.token_users({"dev": {"password": "plain"}})
    with pytest.raises(InvalidConfig, match="actions"):
        auth.token_users({"dev": {"password": HASH, "access": [{"name": "x", "actions": "pull"}]}})
