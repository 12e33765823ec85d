"""The demo's second act: a kill switch that fails closed.

A finance agent homed in GB holds a 60-second lease and trades through the SDK guard.
The GB regulator suspends it; the order is pushed to the agent at once, the guard
refuses the next trade, the operator's safe-state hook runs once, and the halt is
recorded in the log. The regulator lifts the order and the agent, with a fresh lease,
trades again. Every step is a logged, signed entry.
"""

from __future__ import annotations

import base64
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console

from custodes.client import Client
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk import DecisionRecorder, Guard, Halted
from custodes.sdk.bootstrap import Authorities

__all__ = ["KillScenario", "run_kill_scenario"]


@dataclass
class KillScenario:
    trades_before: int = 0
    refused: str = ""
    halt_seconds: float = 0.0
    safe_state_runs: int = 0
    trades_after: int = 0
    halts_logged: int = 0
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.trades_before > 0
            and self.refused == "kill_order"
            and self.safe_state_runs == 1
            and self.trades_after > 0
            and self.halts_logged == 1
        )


def _trade(guard: Guard, scenario: KillScenario, counter: str) -> bool:
    try:
        guard.run(lambda: None, "GB")
    except Halted as halted:
        scenario.refused = halted.reason
        return False
    setattr(scenario, counter, getattr(scenario, counter) + 1)
    return True


def _wait(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def run_kill_scenario(
    url: str, authorities: Authorities, agent_id: str, key: EnvelopeSigner, console: Console
) -> KillScenario:
    scenario = KillScenario()
    info = httpx.get(f"{url}/api/v1/node", timeout=5).json()
    node_key = base64.b64decode(info["node_entry_public_key"])
    runs = threading.Lock()

    def safe_state() -> None:
        with runs:
            scenario.safe_state_runs += 1
        scenario.steps.append("safe-state hook: open orders cancelled, control handed back")

    with tempfile.TemporaryDirectory(prefix="custodes-spool-") as spool:
        recorder = DecisionRecorder(Client(url), agent_id, key, Path(spool))
        guard = Guard(agent_id, key, url, node_key, safe_state=safe_state, recorder=recorder)
        with guard:
            guard.wait_for_lease(10)
            lease = guard.lease
            scenario.steps.append(
                f"lease held until +{lease.exp - time.time():.0f}s "
                f"for {sorted(lease.jurisdictions)}"
                if lease
                else "no lease"
            )
            for _ in range(5):
                _trade(guard, scenario, "trades_before")
            order = authorities.regulator.order(
                "suspend", agent_id, "suspected runaway trading loop"
            )
            sent = time.monotonic()
            scenario.steps.append(f"GB regulator suspends the agent (order {order['order_id']})")
            _wait(lambda: guard.halted() is not None, 5)
            scenario.halt_seconds = time.monotonic() - sent
            _trade(guard, scenario, "trades_before")
            scenario.steps.append(
                f"the guard refuses the next trade ({scenario.refused}), "
                f"{scenario.halt_seconds * 1000:.0f} ms after the order"
            )
            authorities.regulator.order(
                "reinstate", agent_id, "loop fixed and reviewed", lifts=order["order_id"]
            )
            scenario.steps.append("GB regulator lifts the order")
            guard.renew()
            for _ in range(3):
                _trade(guard, scenario, "trades_after")
        recorder.flush(10)
        recorder.close()
    scenario.halts_logged = _halts_in_log(url, agent_id)
    return scenario


def _halts_in_log(url: str, agent_id: str) -> int:
    """How many halt decisions the agent has in the log (every sequenced entry is read)."""
    count, index = 0, 0
    while (response := httpx.get(f"{url}/api/v1/entries/{index}", timeout=5)).status_code == 200:
        index += 1
        entry = response.json()["entry"]
        if entry["payloadType"].endswith("decision+json"):
            payload = base64.b64decode(entry["payload"])
            said_halt = b'"action":"halt"' in payload or b'"kind":"halt"' in payload  # v1, v2
            count += said_halt and agent_id.encode() in payload
    return count
