"""Adapters from the evals domain to the network: HTTP targets.

* ``OpenAIChatTarget``: any OpenAI-compatible ``/v1/chat/completions`` endpoint.
* ``A2ATarget``: an A2A agent over JSON-RPC ``message/send``.
* The node's evals API (publish, fetch and prove results, read decisions) is
  ``custodes.client.Client``.
"""

from custodes.connectors.a2a import A2ATarget
from custodes.connectors.openai import OpenAIChatTarget, openai_chat

__all__ = [
    "A2ATarget",
    "OpenAIChatTarget",
    "openai_chat",
]
