"""Agents with real guards against a real node process, for the kill-switch tests.

``GuardedAgent`` is one enrolled agent: its key, a ``Guard`` talking to the node over
HTTP (leases and the kill-order stream) and a ``DecisionRecorder`` spooling to its own
directory. ``KeyedRecorder`` remembers every idempotency key it hands out, the guard's
halt records included, so a test can count what reached the log. The log readers go
through the public API only (``GET /api/v1/entries/{index}``), as an auditor would.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from custodes.client import Client
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.payloads import DECISION_TYPE
from custodes.sdk.guard import Guard, Halted
from custodes.sdk.recorder import DecisionRecorder
from tests.integration.procs import NodeProcess, node_env

__all__ = [
    "GuardedAgent",
    "KeyedRecorder",
    "assert_error",
    "close_all",
    "decisions_by",
    "entry_payloads",
    "gb_node",
    "node_public_key",
    "sequenced_size",
]

_PROBE_TIMEOUT_S = 5.0


def gb_node(
    data_dir: Path, log_path: Path, *, port: int = 0, settings: Mapping[str, str] | None = None
) -> NodeProcess:
    """A GB node (not started): fast checkpoints, plus ``CUSTODES_<NAME>`` ``settings``."""
    env = node_env(data_dir, "gb.killswitch.test/log", jurisdiction="GB")
    env.update({f"CUSTODES_{name.upper()}": v for name, v in (settings or {}).items()})
    return NodeProcess(env, log_path, port=port)


def node_public_key(url: str) -> bytes:
    """The node's entry key: the signer its first entry registered (named ``node:...``)."""
    response = httpx.get(f"{url}/api/v1/signers", timeout=_PROBE_TIMEOUT_S)
    response.raise_for_status()
    first = response.json()[0]
    assert first["name"].startswith("node:"), first
    return base64.b64decode(first["public_key"])


def _has_entry(http: httpx.Client, index: int) -> bool:
    status = http.get(f"/api/v1/entries/{index}").status_code
    assert status in (200, 404), f"GET /api/v1/entries/{index} answered {status}"
    return status == 200


def sequenced_size(url: str) -> int:
    """How many entries the node has sequenced (integrated or not), found by probing."""
    with httpx.Client(base_url=url, timeout=_PROBE_TIMEOUT_S) as http:
        high = 1
        while _has_entry(http, high - 1):
            high *= 2
        low = high // 2  # entries [0, low) exist; entry high-1 does not
        while low < high:
            middle = (low + high) // 2
            if _has_entry(http, middle):
                low = middle + 1
            else:
                high = middle
        return low


def entry_payloads(url: str, start: int = 0) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(index, payloadType, decoded payload) of every sequenced entry from ``start``."""
    with httpx.Client(base_url=url, timeout=_PROBE_TIMEOUT_S) as http:
        index = start
        while True:
            response = http.get(f"/api/v1/entries/{index}")
            if response.status_code == 404:
                return
            response.raise_for_status()
            envelope = response.json()["entry"]
            payload = orjson.loads(base64.b64decode(envelope["payload"]))
            yield index, envelope["payloadType"], payload
            index += 1


def decisions_by(url: str, agent_id: str, start: int = 0) -> list[dict[str, Any]]:
    """The decision records ``agent_id`` has in the log, in log order."""
    return [
        payload
        for _index, kind, payload in entry_payloads(url, start)
        if kind == DECISION_TYPE and payload.get("agent") == agent_id
    ]


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    """The node's one JSON error shape: {"error": {"code", "message", "detail"}}."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "detail"}, error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    if code is not None:
        assert error["code"] == code, error


class KeyedRecorder(DecisionRecorder):
    """A DecisionRecorder that remembers each decision's idempotency key and action."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.recorded: dict[str, str] = {}
        self._keys_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def record(self, action: str, rationale: str, *args: Any, **kwargs: Any) -> str:
        key = super().record(action, rationale, *args, **kwargs)
        with self._keys_lock:
            self.recorded[key] = action
        return key

    def keys_for(self, action: str) -> set[str]:
        with self._keys_lock:
            return {k for k, a in self.recorded.items() if a == action}


@dataclass
class GuardedAgent:
    """One enrolled agent with a running guard and recorder; ``close`` stops both."""

    agent_id: str
    signer: EnvelopeSigner
    guard: Guard
    recorder: KeyedRecorder
    client: Client
    safe_states: list[float] = field(default_factory=list)
    territorial: list[tuple[str, float]] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        url: str,
        node_key: bytes,
        agent_id: str,
        signer: EnvelopeSigner,
        spool: Path,
        **guard_options: Any,
    ) -> GuardedAgent:
        client = Client(url, timeout=5.0)
        recorder = KeyedRecorder(
            client, agent_id, signer, spool, batch_size=20, flush_interval=0.05, retry_max=0.5
        )
        holder: list[GuardedAgent] = []
        options: Mapping[str, Any] = {
            "retry_initial": 0.2,
            "retry_max": 0.5,
            "poll": 0.05,
            **guard_options,
        }
        guard = Guard(
            agent_id,
            signer,
            url,
            node_key,
            safe_state=lambda: holder[0].safe_states.append(time.time()),
            on_territorial_halt=lambda t: holder[0].territorial.append((t, time.time())),
            recorder=recorder,
            **options,
        )
        agent = cls(agent_id, signer, guard, recorder, client)
        holder.append(agent)
        guard.start()
        return agent

    def allowed(self, territory: str) -> bool:
        """Whether the guard lets an action in ``territory`` through now."""
        try:
            self.guard.check(territory)
        except Halted:
            return False
        return True

    def close(self, stop_timeout: float = 0.5) -> None:
        """Stop the guard and the recorder (what is unsent stays in the spool)."""
        with contextlib.suppress(Exception):
            self.guard.stop(timeout=stop_timeout)
        with contextlib.suppress(Exception):
            self.recorder.close(timeout=2.0)
        with contextlib.suppress(Exception):
            self.client.close()


def close_all(agents: Sequence[GuardedAgent]) -> None:
    """Close every agent, in parallel (each guard's stop may wait its whole timeout)."""
    if agents:
        with ThreadPoolExecutor(len(agents)) as pool:
            list(pool.map(GuardedAgent.close, agents))
