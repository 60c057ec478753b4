"""The Engine API client: one method per endpoint the CLI uses, blocking, standard library only.

Responses with a status >= 400 come back as the sampan error the daemon raised: the status is
mapped through :func:`sampan.api.errors.error_for_status` (the reverse of the server's table) and
the message is the daemon's ``{"message": ...}``.  Such errors are marked so that the CLI can
print them as Docker does ("Error response from daemon: ..."): see :func:`from_daemon`.

Paths are sent without a ``/vX.Y`` prefix unless ``api_version`` is given, which the daemon
treats as its newest version; that saves the ``/_ping`` round trip Docker's client makes.

Typical use::

    client = Client(SocketTransport(parse_host("unix:///run/sampan/sampan.sock")))
    for image in client.images(all=True):
        print(image["Id"])
    for message in client.load_images(open("busybox.tar", "rb")):
        ...  # JSON progress messages; in-band errors are the caller's to check
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sampan import errors
from sampan.client.transport import Body, Request, Response, Transport

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = _SAFE | frozenset(b"/:@")

Query = Mapping[str, "str | int | bool | Sequence[str] | None"]


def quote(text: str, *, path: bool = False) -> str:
    """Percent-encode ``text`` (RFC 3986 unreserved characters stay; ``/:@`` too in a path)."""
    safe = _PATH_SAFE if path else _SAFE
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in text.encode())


def encode_query(query: Query | None) -> str:
    """``{"all": True, "names": ["a", "b"]}`` -> ``?all=1&names=a&names=b``; None and False drop."""
    if not query:
        return ""
    parts: list[str] = []
    for key, value in query.items():
        if value is None or value is False:
            continue
        if value is True:
            parts.append(f"{quote(key)}=1")
        elif isinstance(value, str | int):
            parts.append(f"{quote(key)}={quote(str(value))}")
        else:
            parts.extend(f"{quote(key)}={quote(str(v))}" for v in value)
    return "?" + "&".join(parts) if parts else ""


def encode_filters(filters: Mapping[str, Sequence[str]] | None) -> str | None:
    """Docker's ``filters`` query value: ``{"dangling": {"true": true}}``."""
    if not filters:
        return None
    import json

    return json.dumps({k: dict.fromkeys(v, True) for k, v in filters.items()}, separators=(",", ":"))


def from_daemon(exc: BaseException) -> bool:
    """Whether ``exc`` is an error response from the daemon (as opposed to a local failure)."""
    return bool(getattr(exc, "from_daemon", False))


def error_from_response(response: Response) -> errors.SampanError:
    from sampan.api.errors import error_for_status

    body = response.read()
    message = ""
    try:
        import json

        doc = json.loads(body)
        if isinstance(doc, dict):
            message = str(doc.get("message", ""))
    except ValueError:
        message = body.decode("utf-8", "replace").strip()
    if not message:
        message = f"{response.status} {response.reason}".strip()
    err = error_for_status(response.status, message)
    err.from_daemon = True  # type: ignore[attr-defined]
    return err


def stream_error(message: Mapping[str, Any]) -> errors.SampanError | None:
    """The in-band error of a JSON progress message (``errorDetail``/``error``), if any."""
    detail = message.get("errorDetail")
    text = message.get("error")
    if not detail and not text:
        return None
    if isinstance(detail, dict) and detail.get("message"):
        text = detail["message"]
    code = detail.get("code") if isinstance(detail, dict) else None
    if isinstance(code, int) and code >= 400:
        from sampan.api.errors import error_for_status

        return error_for_status(code, str(text))
    return errors.Internal(str(text))


class Client:
    def __init__(self, transport: Transport, *, api_version: str = "") -> None:
        self.transport = transport
        self.prefix = f"/v{api_version}" if api_version else ""

    # ------------------------------------------------------------------ plumbing

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Body = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send a request; return the response if its status is < 400, else raise its error."""
        target = self.prefix + quote(path, path=True) + encode_query(query)
        response = self.transport.send(Request(method, target, headers, body))
        if response.status >= 400:
            raise error_from_response(response)
        return response

    def json(self, method: str, path: str, *, query: Query | None = None, body: Any = None) -> Any:
        headers = None
        payload: Body = None
        if body is not None:
            import json

            payload = json.dumps(body).encode()
            headers = {"Content-Type": "application/json"}
        return self.request(method, path, query=query, body=payload, headers=headers).json()

    def stream(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Body = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The JSON messages of a newline-delimited progress stream, as they arrive."""
        import json

        response = self.request(method, path, query=query, body=body, headers=headers)
        try:
            for line in response.iter_lines():
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    raise errors.Internal(f"malformed progress message from the daemon: {line[:80]!r}") from None
                if isinstance(message, dict):
                    yield message
        finally:
            response.close()

    # ------------------------------------------------------------------ system

    def ping(self) -> dict[str, str]:
        response = self.request("GET", "/_ping")
        response.read()
        return response.headers

    def version(self) -> dict[str, Any]:
        return dict(self.json("GET", "/version") or {})

    def info(self) -> dict[str, Any]:
        return dict(self.json("GET", "/info") or {})

    def system_df(self, *, types: Sequence[str] = ()) -> dict[str, Any]:
        return dict(self.json("GET", "/system/df", query={"type": list(types)}) or {})

    # ------------------------------------------------------------------ images

    def images(
        self,
        *,
        all: bool = False,
        digests: bool = False,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> list[dict[str, Any]]:
        query = {"all": all, "digests": digests, "filters": encode_filters(filters)}
        return list(self.json("GET", "/images/json", query=query) or [])

    def inspect_image(self, name: str) -> dict[str, Any]:
        return dict(self.json("GET", f"/images/{name}/json"))

    def image_history(self, name: str) -> list[dict[str, Any]]:
        return list(self.json("GET", f"/images/{name}/history") or [])

    def tag_image(self, name: str, *, repo: str, tag: str = "") -> None:
        self.request("POST", f"/images/{name}/tag", query={"repo": repo, "tag": tag or None}).read()

    def remove_image(self, name: str, *, force: bool = False, noprune: bool = False) -> list[dict[str, Any]]:
        query = {"force": force, "noprune": noprune}
        return list(self.json("DELETE", f"/images/{name}", query=query) or [])

    def prune_images(self, *, filters: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
        return dict(self.json("POST", "/images/prune", query={"filters": encode_filters(filters)}) or {})

    def load_images(self, body: Body, *, quiet: bool = False) -> Iterator[dict[str, Any]]:
        return self.stream(
            "POST", "/images/load", query={"quiet": quiet}, body=body,
            headers={"Content-Type": "application/x-tar"},
        )

    def save_images(self, names: Sequence[str]) -> Response:
        """The docker-archive tar of ``names``; read it with ``response.iter_raw()``."""
        if len(names) == 1:
            return self.request("GET", f"/images/{names[0]}/get")
        return self.request("GET", "/images/get", query={"names": list(names)})

    def import_image(
        self,
        body: Body,
        *,
        repo: str = "",
        changes: Sequence[str] = (),
        message: str = "",
        platform: str = "",
    ) -> Iterator[dict[str, Any]]:
        """Import a rootfs tar (``fromSrc=-``); the last message's ``status`` is the image ID."""
        query = {
            "fromSrc": "-", "repo": repo or None, "changes": list(changes),
            "message": message or None, "platform": platform or None,
        }
        return self.stream(
            "POST", "/images/create", query=query, body=body,
            headers={"Content-Type": "application/x-tar"},
        )
