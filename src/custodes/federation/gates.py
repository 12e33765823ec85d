"""The deployment gate wired to the alliance's recognitions (docs/design/0028).

``DeploymentGate`` is the lease issuer's ``gate`` (custodes.killswitch.leases): for a
critical agent homed here, its current model and card digests (this node's registry: the
home is the lease issuer) and, per jurisdiction, the recognition in force there: this
node's own table for its own jurisdiction, the peer's verified mirror for the others
(custodes.federation.recognitions). A jurisdiction whose mirror is missing recognises
nothing (fail closed). ``custodes.audits.gates.evaluate_gate`` decides.

The gate holds an agent to the alliance's common scheme: it applies once the members
have put a scheme in force on this node (``scheme``) and that scheme has a requirement
for the agent's sector and risk tier. Before that no attestation can be recognised at
all, so gating would halt every critical agent of a node the day it is upgraded; the
node says so at start and in the lease (``gated`` is absent).

Cost: one indexed query for the digests and one per jurisdiction, each on a local
database (measured in benchmarks/bench_gates.py). A result is kept for ``ttl`` seconds
(default 1 s) per (agent, model id, jurisdictions), and never past the earliest
recognition it rests on: an agent moved to another model misses the cache at once; a
recognition withdrawn, or a model record corrected in place, is seen within ``ttl``.
``forget`` drops an agent's answers at once (for a caller that learns of a change).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from custodes.audits.gates import GateResult, evaluate_gate
from custodes.audits.scheme import SignedScheme
from custodes.audits.store import InForce, agent_digests, recognitions_of
from custodes.federation.recognitions import AllianceRecognitions
from custodes.registry.models import AgentRecord
from custodes.store.db import read_tx

__all__ = ["DeploymentGate"]

_Key = tuple[str, str | None, frozenset[str]]


class DeploymentGate:
    def __init__(
        self,
        recognitions: AllianceRecognitions,
        *,
        scheme: Callable[[], SignedScheme | None] = lambda: None,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._recognitions, self._ttl, self._clock = recognitions, ttl, clock
        self._scheme = scheme
        self._cache: dict[_Key, tuple[float, GateResult]] = {}
        self._lock = threading.Lock()

    def __call__(self, agent: AgentRecord, places: set[str]) -> GateResult:
        scheme = self._scheme()
        if scheme is None or scheme.body.requirement(agent.sector, agent.risk_tier) is None:
            return GateResult(frozenset(places))  # no common requirement for it (yet)
        now = self._clock()
        key = (agent.id, agent.model, frozenset(places))  # a new model: a new key
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now < hit[0]:
            return hit[1]
        digests = self._digests(agent.id)
        result = evaluate_gate(
            agent,
            places,
            digests,
            lambda code: self._in_force(agent.id, code, digests, now),
            decisions=lambda code: self._decisions(agent.id, code),
            now=now,
        )
        until = min([now + self._ttl, *(r.valid_until for r in result.recognitions.values())])
        with self._lock:
            self._cache[key] = (until, result)
        return result

    def forget(self, agent_id: str | None = None) -> None:
        """Drop the kept answers for ``agent_id`` (all of them with None)."""
        with self._lock:
            for key in [k for k in self._cache if agent_id is None or k[0] == agent_id]:
                del self._cache[key]

    def _digests(self, agent_id: str) -> tuple[str | None, str | None]:
        engine = self._recognitions.engine_of(self._recognitions.federation.jurisdiction)
        assert engine is not None  # this node's own database
        with read_tx(engine) as conn:
            return agent_digests(conn, agent_id)

    def _in_force(
        self, agent_id: str, code: str, digests: tuple[str | None, str | None], now: float
    ) -> InForce | None:
        model, card = digests
        return self._recognitions.in_force(
            agent_id, code, model_digest=model, card_digest=card, now=now
        )

    def _decisions(self, agent_id: str, code: str) -> Sequence[Mapping[str, Any]]:
        engine = self._recognitions.engine_of(code)
        if engine is None:
            return ()
        with read_tx(engine) as conn:
            return [r for r in recognitions_of(conn, agent_id) if r["jurisdiction"] == code]
