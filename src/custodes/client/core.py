"""The client's core: one httpx transport, the credentials, the pinned keys, one request path.

Every request of every API goes through ``_Core._send``: it builds the absolute URL,
adds the credentials the request needs, maps transport failures and error answers
(``custodes.client.errors``) and retries an idempotent read once when a kept-alive
connection was closed under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx
from pydantic import BaseModel

from custodes.client.errors import raise_for_error, unreachable
from custodes.client.transport import check_node_url, is_stale_connection, node_client
from custodes.errors import ConfigError
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.note import NoteVerifier, parse_vkey
from custodes.registry.private import request_body, seal_change

__all__ = ["Auth", "Pins"]


class Auth(Enum):
    """Which credential a request carries."""

    NONE = "none"  # never send one (a lease request is signed by the agent)
    OPTIONAL = "optional"  # the principal's token when the client holds one
    PRINCIPAL = "principal"  # the principal's token, required
    ADMIN = "admin"  # the node's admin token, required


@dataclass(frozen=True)
class Pins:
    """The node's keys as first fetched: later answers must be signed by these."""

    log_vkey: str
    witness_vkey: str
    node_entry_public_key: bytes

    @property
    def log_verifier(self) -> NoteVerifier:
        return parse_vkey(self.log_vkey)


class _Core:
    """State and the one request path the API mixins share."""

    def __init__(
        self,
        url: str,
        *,
        principal: str | None = None,
        token: str | None = None,
        key: EnvelopeSigner | None = None,
        admin_token: str | None = None,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        # An injected transport (a test's, a FakeNode's) was checked by whoever built it.
        self.url = check_node_url(url) if http is None else url.rstrip("/")
        self.principal, self.key = principal, key
        self._token, self._admin = token, admin_token
        self._owns_http = http is None
        self._http = http or node_client(timeout=timeout)
        self.pins: Pins | None = None

    @property
    def token(self) -> str | None:
        """The API token this client sends (None: the public)."""
        return self._token

    def close(self) -> None:
        """Close the transport, unless it was handed in (its owner closes it)."""
        if self._owns_http:
            self._http.close()

    def _headers(self, auth: Auth) -> dict[str, str]:
        if auth is Auth.ADMIN:
            if not self._admin:
                raise ConfigError("this needs the node's admin token (CUSTODES_ADMIN_TOKEN)")
            return {"Authorization": f"Bearer {self._admin}"}
        if auth is Auth.PRINCIPAL and not self._token:
            raise ConfigError("this needs a principal and its API token (--as, --token)")
        if auth in (Auth.PRINCIPAL, Auth.OPTIONAL) and self._token:
            return {"Authorization": f"Bearer {self._token}"}
        return {}

    def _signer(self) -> tuple[str, EnvelopeSigner]:
        """The acting principal and its key, for a change signed here."""
        if self.principal is None or self.key is None:
            raise ConfigError("this change is signed by a principal: give --as, --token, --key")
        return self.principal, self.key

    def _actor(self) -> str:
        return self._signer()[0]

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        auth: Auth = Auth.OPTIONAL,
        timeout: float | httpx.Timeout | None = None,
    ) -> httpx.Response:
        headers = self._headers(auth)
        if content is not None:
            headers["Content-Type"] = "application/json"
        request = self._http.build_request(
            method,
            self.url + path,
            params={k: v for k, v in (params or {}).items() if v is not None},
            content=content,
            headers=headers,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
        )
        response = self._transmit(request, retry=method == "GET")
        raise_for_error(response)
        return response

    def _transmit(self, request: httpx.Request, *, retry: bool) -> httpx.Response:
        try:
            return self._http.send(request)
        except httpx.HTTPError as exc:
            if not (retry and is_stale_connection(exc)):
                raise unreachable(self.url, exc) from exc
        try:
            return self._http.send(request)
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from exc

    def _submit(self, path: str, payload_type: str, change: BaseModel) -> dict[str, Any]:
        """Sign ``change`` as the acting principal and send it with its token.

        Private fields (contacts, addresses) never enter the signed, logged payload: it
        carries a salted commitment and the clear text travels beside it.
        """
        _, key = self._signer()
        sealed, opening = seal_change(change)
        payload = sealed.model_dump_json(exclude_none=True).encode()
        envelope = sign_envelope(payload_type, payload, [key]).to_json()
        body = canonical_dumps(request_body(envelope, opening))
        answer: dict[str, Any] = self._json("POST", path, content=body, auth=Auth.PRINCIPAL)
        return answer

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()
