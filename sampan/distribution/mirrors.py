"""Registry mirrors for ANY registry (Docker's ``registry-mirrors`` work only for Docker Hub).

A mirror is a registry that serves the same repositories under the same paths.  The daemon's
``registry-mirrors`` setting lists them: ``URL`` mirrors every registry, ``HOST=URL`` only the
registry ``HOST`` (``docker.io=http://127.0.0.1:5001``).  Pulls try a registry's mirrors in the
order given, then the registry itself (``registry.Repository.first_answer``); pushes never use
mirrors.
"""

from __future__ import annotations

from sampan.distribution.http import Endpoint, RegistryClient


def parse_mirror(item: str) -> tuple[str | None, str]:
    """``"URL"`` -> (None, URL); ``"HOST=URL"`` -> (HOST, URL)."""
    head = item.split("://", 1)[0]
    if "=" in head:
        host, _, url = item.partition("=")
        return host.strip(), url.strip()
    return None, item.strip()


def mirrors_for(domain: str, mirrors: list[str], client: RegistryClient) -> list[Endpoint]:
    """The endpoints that mirror registry ``domain``, in the configured order."""
    out: list[Endpoint] = []
    for item in mirrors:
        host, url = parse_mirror(item)
        if host is not None and host != domain:
            continue
        ep = client.endpoint_from_url(url.rstrip("/"))
        if ep.host == domain:
            continue  # a registry is not its own mirror
        if ep not in out:
            out.append(ep)
    return out
