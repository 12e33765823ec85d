"""``custodes demo`` in a terminal: leave the alliance running and show how to explore it.

After the scripted acts the nodes stay up. A regulator the user can act as is
registered at the GB node (its key written to the demo's directory, its token in
``explore.env``), and a guide is printed: each node's URL and API docs, where the admin
token is, and commands that work as printed, with the demo's real agent ids and keys.
Ctrl-C (or SIGTERM) stops every node; a node that dies on its own ends the wait too.
"""

from __future__ import annotations

import shlex
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from custodes.client import Client
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.keys import entry_key_string, write_secret
from custodes.sdk.bootstrap import register_principal

__all__ = ["Explorer", "NodeView", "guide", "register_explorer", "wait_for_stop"]

_POLL_S = 0.5  # how often the wait looks for a node that died


@dataclass(frozen=True)
class NodeView:
    """What the guide says about one member node."""

    code: str
    name: str
    url: str
    origin: str
    data_dir: Path
    log_key: str
    witness_key: str
    agents: tuple[str, ...]


@dataclass(frozen=True)
class Explorer:
    """A regulator the user can act as, and the file of settings to source."""

    principal: str
    token: str
    key_file: Path
    env_file: Path


def register_explorer(node: NodeView, admin_token: str, workdir: Path) -> Explorer:
    """Register ``regulator:<code>-explorer`` at ``node``; write its key and env file."""
    key = EnvelopeSigner.generate()
    principal = f"regulator:{node.code.lower()}-explorer"
    with Client(node.url) as client:
        token = register_principal(
            client, admin_token, principal, role="regulator", jurisdiction=node.code, key=key
        )
    key_file = workdir / "explorer" / "regulator.key"
    write_secret(key_file, entry_key_string(principal, key))
    env_file = workdir / "explore.env"
    settings = {
        "CUSTODES_NODE_URL": node.url,
        "CUSTODES_PRINCIPAL": principal,
        "CUSTODES_TOKEN": token,
        "CUSTODES_KEY_FILE": str(key_file),
        "CUSTODES_ADMIN_TOKEN": admin_token,
    }
    write_secret(env_file, "".join(f"export {k}={shlex.quote(v)}\n" for k, v in settings.items()))
    return Explorer(principal, token, key_file, env_file)


def _command(*args: str) -> str:
    return "custodes " + shlex.join(args)


def _nodes(nodes: Sequence[NodeView]) -> list[str]:
    lines = ["Member nodes (each with its own database and keys):"]
    for n in nodes:
        lines.append(f"  {n.code} {n.name}: {n.url}  (API docs {n.url}/docs)")
        lines.append(f"     origin {n.origin}, data in {n.data_dir}")
    return lines


def _credentials(admin_token: str, explorer: Explorer) -> list[str]:
    return [
        f"Admin token (every node; development token, loopback only): {admin_token}",
        "  it is CUSTODES_ADMIN_TOKEN in each node's environment; in /docs use Authorize,",
        "  adminToken for /api/v1/admin/*, bearer for a principal's API token",
        f"You can act as {explorer.principal}: key {explorer.key_file}",
        f"  its token and the rest: source {explorer.env_file}",
    ]


def _examples(home: NodeView, peers: Sequence[NodeView], explorer: Explorer) -> list[str]:
    agent, url = home.agents[0], home.url
    witnesses = [arg for p in peers for arg in ("--witness-key", p.witness_key)]
    acting = ["--as", explorer.principal, "--token", explorer.token]
    acting += ["--key", str(explorer.key_file)]
    return [
        "Try:",
        f"  curl {url}/api/v1/registry/agents/{agent}",
        "  " + _command("registry", "agent", "list", "--node", url),
        "  " + _command("registry", "agent", "show", agent, "--node", url),
        "  " + _command("kill", "list", "--node", url),
        "  " + _command("log", "verify", url, "--key", home.log_key, "--quorum", "3", *witnesses),
        "  " + _command("kill", "suspend", agent, "--reason", "exploring", "--node", url, *acting),
        f"Agents at {home.code}: {', '.join(home.agents)}",
    ]


def guide(
    nodes: Sequence[NodeView], admin_token: str, explorer: Explorer, *, dashboard: str
) -> list[str]:
    """The lines printed once the alliance is left running (the first node is home)."""
    home, peers = nodes[0], nodes[1:]
    return [
        "The alliance is running. Explore it; Ctrl-C stops every node.",
        "",
        f"Dashboard: {dashboard}",
        f"  sign in as {explorer.principal} with the token {explorer.token}",
        "  (every node serves its own dashboard at <node URL>/ui/)",
        "",
        *_nodes(nodes),
        "",
        *_credentials(admin_token, explorer),
        "",
        *_examples(home, peers, explorer),
    ]


def wait_for_stop(running: Callable[[], bool]) -> None:
    """Return on Ctrl-C or SIGTERM, or as soon as ``running()`` says a node has died."""
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(_POLL_S) and running():
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
