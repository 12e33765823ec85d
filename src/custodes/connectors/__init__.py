"""Adapters from the evals domain to the network: HTTP targets and the node's evals API.

* ``OpenAIChatTarget``: any OpenAI-compatible ``/v1/chat/completions`` endpoint.
* ``A2ATarget``: an A2A agent over JSON-RPC ``message/send``.
* ``EvalsClient``: publish signed results, fetch them with proofs, read decisions.
"""

from custodes.connectors.a2a import A2ATarget
from custodes.connectors.node import Decision, EvalsClient, LoggedResult, verify_logged
from custodes.connectors.openai import OpenAIChatTarget, openai_chat

__all__ = [
    "A2ATarget",
    "Decision",
    "EvalsClient",
    "LoggedResult",
    "OpenAIChatTarget",
    "openai_chat",
    "verify_logged",
]
