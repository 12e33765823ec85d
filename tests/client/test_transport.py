"""Clients talk to a node over https, or plain http on loopback only; the transport lets
go of idle connections before the node closes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import uvicorn

from custodes.client import KEEPALIVE_EXPIRY_S, Client, check_node_url, node_client
from custodes.errors import ConfigError
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.bootstrap import bootstrap
from custodes.sdk.guard import Guard
from tests.sdk.support import AGENT

ALLOWED = [
    "https://node.gb.example",
    "https://node.gb.example:8443/",
    "https://203.0.113.7",
    "http://127.0.0.1:8400",
    "http://127.8.9.10",
    "http://[::1]:8400/",
    "http://localhost:8400",
    "http://LocalHost",
]
REFUSED = [
    "http://node.gb.example",
    "http://10.0.0.7:8400",
    "http://203.0.113.7",
    "http://[::2]:8400",
    "http://0.0.0.0:8400",
    "http://localhost.attacker.example",
    "http://127.0.0.1.attacker.example",
    "ftp://node.gb.example",
    "https://",
]
NO_SCHEME = ["node.gb.example", "127.0.0.1:8400", "localhost", ""]


@pytest.mark.parametrize("url", ALLOWED)
def test_https_or_loopback_http_is_accepted(url: str) -> None:
    assert check_node_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", REFUSED)
def test_plain_http_off_loopback_is_refused_with_one_clear_error(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_node_url(url)
    assert "use https://" in caught.value.message
    assert caught.value.detail == {"url": url}


@pytest.mark.parametrize("url", NO_SCHEME)
def test_a_url_without_a_scheme_is_told_to_write_one(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_node_url(url)
    assert "has no scheme: write it as https://" in caught.value.message


KEY = EnvelopeSigner.generate()
URL = "http://node.gb.example"
WHERE_A_NODE_URL_IS_CONFIGURED: dict[str, Callable[[], Any]] = {
    "Guard": lambda: Guard(AGENT, KEY, URL, KEY.public_key, safe_state=print, recorder=None),
    "Client": lambda: Client(URL),
    "Client.pinned": lambda: Client.pinned(URL),
    "bootstrap": lambda: bootstrap(URL, "admin-token", "GB"),
}


@pytest.mark.parametrize(
    "configure", WHERE_A_NODE_URL_IS_CONFIGURED.values(), ids=WHERE_A_NODE_URL_IS_CONFIGURED.keys()
)
def test_every_entry_point_refuses_plain_http_off_loopback(
    configure: Callable[[], Any],
) -> None:
    with pytest.raises(ConfigError, match="use https://"):
        configure()


def test_idle_connections_are_let_go_before_the_node_closes_them() -> None:
    """The node is served by uvicorn with its default keep-alive; a client keeping idle
    connections as long races the server's close and meets resets."""
    server_keepalive = uvicorn.Config(app=None).timeout_keep_alive
    assert server_keepalive / 2 >= KEEPALIVE_EXPIRY_S
    with node_client() as http:
        pool = http._transport._pool  # type: ignore[attr-defined]  # httpx has no accessor
        assert pool._keepalive_expiry == KEEPALIVE_EXPIRY_S
