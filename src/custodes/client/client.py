"""``Client``: the whole node API on one transport (see ``custodes.client``)."""

from __future__ import annotations

import httpx

from custodes.client.alliance import AllianceApi
from custodes.client.audits import AuditsApi
from custodes.client.conformance import ConformanceApi
from custodes.client.evals import EvalsApi
from custodes.client.federation import FederationApi
from custodes.client.forwarding import ForwardingApi
from custodes.client.killswitch import KillSwitchApi
from custodes.client.redteam import RedteamApi
from custodes.client.registry import RegistryApi
from custodes.client.trade import TradeApi
from custodes.ledger.dsse import EnvelopeSigner

__all__ = ["Client"]


class Client(
    EvalsApi,
    RegistryApi,
    KillSwitchApi,
    AllianceApi,
    FederationApi,
    ForwardingApi,
    ConformanceApi,
    AuditsApi,
    TradeApi,
    RedteamApi,
):
    """One node's API: ledger, proofs, registry, kill switch, leases, evals.

    ``principal``, ``token`` and ``key`` act for a principal (changes are signed with
    ``key`` and sent with ``token``; reads send the token when there is one, so private
    fields show where it entitles); ``admin_token`` is for the node's admin endpoints.
    ``http`` hands in a transport (a test's, a ``FakeNode``'s); by default the client
    opens its own (``node_client``) after checking ``url``.
    """

    @classmethod
    def pinned(
        cls,
        url: str,
        *,
        log_vkey: str | None = None,
        principal: str | None = None,
        token: str | None = None,
        key: EnvelopeSigner | None = None,
        admin_token: str | None = None,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> Client:
        """A client that fetched the node's keys once (``/api/v1/node``) and from then on
        refuses answers signed by others: a checkpoint under another log key, or a node
        that presents other keys. With ``log_vkey``, the node must present that key."""
        client = cls(
            url,
            principal=principal,
            token=token,
            key=key,
            admin_token=admin_token,
            timeout=timeout,
            http=http,
        )
        try:
            client.pin(log_vkey=log_vkey)
        except BaseException:
            client.close()
            raise
        return client

    def acting_as(
        self,
        principal: str | None = None,
        token: str | None = None,
        key: EnvelopeSigner | None = None,
        *,
        admin_token: str | None = None,
    ) -> Client:
        """A client with other credentials on this client's transport (and pins)."""
        other = Client(
            self.url,
            principal=principal,
            token=token,
            key=key,
            admin_token=admin_token,
            http=self._http,
        )
        other.pins = self.pins
        return other

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
