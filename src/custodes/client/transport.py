"""How a client reaches a node: which URLs it accepts, and the HTTP client it opens.

* ``check_node_url`` refuses ``http://`` except on loopback (127.0.0.0/8, ::1,
  ``localhost``): leases, decisions and kill orders must not cross a network in clear.
  A URL with no scheme at all (``node.example:8400``) is told to write one.
* ``node_client`` keeps idle connections for ``KEEPALIVE_EXPIRY_S``, well below the
  node's own keep-alive (uvicorn closes idle connections after 5 s). With both at 5 s a
  request sent on a connection the server is closing meets a reset.
* ``is_stale_connection`` says whether a transport error is that race (the request was
  sent on a connection the server had closed), after which one immediate retry is safe
  for a request that is idempotent or made fresh.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import httpx

from custodes.errors import ConfigError

__all__ = ["KEEPALIVE_EXPIRY_S", "check_node_url", "is_stale_connection", "node_client"]

KEEPALIVE_EXPIRY_S = 2.0
_LOOPBACK_NAMES = frozenset({"localhost"})


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_node_url(url: str) -> str:
    """``url`` without a trailing slash, or ConfigError when it may not be used.

    ``https://`` anywhere; ``http://`` only to a loopback host.
    """
    parts = urlsplit(url)
    if "://" not in url:
        raise ConfigError(
            f"the node URL {url!r} has no scheme: write it as https://{url or 'HOST'} "
            "(or http://127.0.0.1:PORT for a node on this machine)",
            detail={"url": url},
        )
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url.rstrip("/")
    if parts.scheme == "http" and _is_loopback(host):
        return url.rstrip("/")
    raise ConfigError(
        f"refusing node URL {url!r}: use https:// (plain http:// is allowed only to a "
        "loopback host: 127.0.0.0/8, ::1 or localhost)",
        detail={"url": url},
    )


def node_client(base_url: str | None = None, *, timeout: float = 30.0) -> httpx.Client:
    """An HTTP client for a node's API, checking ``base_url`` (when given) first."""
    limits = httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S)
    if base_url is None:
        return httpx.Client(timeout=timeout, limits=limits)
    return httpx.Client(base_url=check_node_url(base_url), timeout=timeout, limits=limits)


def is_stale_connection(exc: httpx.HTTPError) -> bool:
    """Whether ``exc`` is a reused connection closed under the request (reset, EOF)."""
    return isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError)
