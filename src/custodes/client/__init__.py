"""One typed client for a node's whole API, on one httpx transport.

    client = Client("https://node.gb.example", principal="regulator:gb",
                    token=token, key=load_key(Path("gb.key")))
    client.order("suspend", agent_id, "unsafe trades")

* ``Client``: ledger (``append``, ``entry``, proofs, ``checkpoint``, ``node_info``,
  ``signers``), registry (principals and tokens with the admin token, changes signed by
  the acting principal, public reads, ``decisions``), kill switch (``order``,
  ``kill_orders``, ``kill_order_stream``), leases (``lease``), evals (``publish``,
  ``eval_result``, ``eval_results``, ``prove``). ``Client.pinned`` pins the node's keys.
* Errors: a node's JSON error answer becomes the CustodesError subclass it names; a node
  that does not answer becomes ``NodeUnreachable``; a URL without a scheme, or plain
  http off loopback, a ConfigError (``custodes.client.errors``, ``check_node_url``).
* ``load_key`` reads an entry key file.
"""

from custodes.client.alliance import verified_lookup
from custodes.client.client import Client
from custodes.client.core import Pins
from custodes.client.errors import NodeUnreachable, error_from, raise_for_error
from custodes.client.keys import load_key
from custodes.client.killswitch import OrderStream
from custodes.client.models import Decision, LoggedResult, NodeInfo
from custodes.client.proofs import verify_logged
from custodes.client.registry import new_order_id
from custodes.client.transport import (
    KEEPALIVE_EXPIRY_S,
    check_node_url,
    is_stale_connection,
    node_client,
)

__all__ = [
    "KEEPALIVE_EXPIRY_S",
    "Client",
    "Decision",
    "LoggedResult",
    "NodeInfo",
    "NodeUnreachable",
    "OrderStream",
    "Pins",
    "check_node_url",
    "error_from",
    "is_stale_connection",
    "load_key",
    "new_order_id",
    "node_client",
    "raise_for_error",
    "verified_lookup",
    "verify_logged",
]
