"""Answering a cross-border look-up on this node: own registry, a peer's mirror, or its home.

The node's own agents come from its own registry and log. Any other party's agents come
from that party's mirror (``Mirrors``) while it is younger than the bound; past it, the
home node is asked directly and its answer is verified against its checkpoint (signed
by the log key the roster names) before it is passed on. When the home cannot be
reached (or its answer does not verify), the mirror answers with ``stale: true`` and its
age: never "active" from old data without saying so.

Public answers from a mirror are kept per (agent, mirrored checkpoint): a look-up costs a
dictionary read until the mirror advances (docs/design/0025).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from custodes.errors import CustodesError, NotFound, StoreError
from custodes.federation.lookup import (
    Finality,
    LookupUnverified,
    finality,
    home_party,
    verify_lookup,
)
from custodes.federation.mirror import MirrorState, PeerMirror
from custodes.federation.mirrors import Mirrors
from custodes.federation.roster import Party
from custodes.ledger.checkpoint import Checkpoint
from custodes.ledger.merkle import verify_consistency
from custodes.ledger.note import parse_note
from custodes.registry.principals import Principal
from custodes.registry.queries import status_at
from custodes.store.db import read_tx

if TYPE_CHECKING:
    from custodes.node import Node

__all__ = ["AllianceLookups", "open_lookups"]

_CACHED = 65_536
log = logging.getLogger("custodes.federation.lookup")


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _orders(engine: Any, agent_id: str) -> list[dict[str, Any]]:
    with read_tx(engine) as conn:
        return list(status_at(conn, agent_id, None)["orders"])


class AllianceLookups:
    """``agent(id, reader)``: the look-up answer, with proof, checkpoint and age."""

    def __init__(
        self,
        node: Node,
        mirrors: Mirrors,
        clock: Callable[[], float] = time.time,
        *,
        http: httpx.Client | None = None,
    ) -> None:
        self.node, self.mirrors, self.clock = node, mirrors, clock
        self.bound = node.settings.lookup_stale_after
        self._http = http or httpx.Client(timeout=node.settings.mirror_timeout)
        self._answers: OrderedDict[tuple[str, str, bytes], dict[str, Any]] = OrderedDict()
        self._final: dict[bytes, Finality] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop following the peers and close the connections to their nodes."""
        self.mirrors.stop()
        self._http.close()

    def mirror_states(self) -> list[dict[str, Any]]:
        """Each peer's mirror: size, age, alarm, the last error reaching it."""
        now, states = self.clock(), []
        for code in self.mirrors.codes():
            mirror = self.mirrors.get(code)
            if mirror is None:
                continue
            state = mirror.state
            age = state.age(now)
            states.append(
                {
                    "party": code,
                    "size": state.size,
                    "age_s": None if age is None else round(age, 3),
                    "stale": age is None or age > self.bound,
                    "alarm": state.alarm,
                    "error": self.mirrors.error(code),
                }
            )
        return states

    def _trusted(self, mirror: PeerMirror | None) -> bool:
        """Whether ``mirror`` may answer as it is: fresh, or halted on its alarm."""
        if mirror is None:
            return False
        state = mirror.state
        age = state.age(self.clock())
        return (age is not None and age <= self.bound) or state.alarm is not None

    def cached(self, agent_id: str) -> dict[str, Any] | None:
        """The public answer for ``agent_id`` if a trusted mirror already gave it (memory
        only: the API answers this on its event loop, without a worker thread)."""
        federation = self.node.federation
        party = home_party(federation.roster, agent_id)
        mirror = self.mirrors.get(party.code)
        if party.code == federation.jurisdiction or mirror is None or not self._trusted(mirror):
            return None
        state = mirror.state
        base = self._answers.get((party.code, agent_id, state.note or b""))
        return None if base is None else self._stamped(base, state)

    def agent(self, agent_id: str, reader: Principal | None) -> dict[str, Any]:
        federation = self.node.federation
        party = home_party(federation.roster, agent_id)
        if party.code == federation.jurisdiction:
            return self._own(agent_id, reader)
        mirror = self.mirrors.get(party.code)
        state = None if mirror is None else mirror.state
        if mirror is not None and self._trusted(mirror):
            try:
                return self._from_mirror(mirror, agent_id, reader)
            except NotFound:
                if state is not None and state.alarm is not None:
                    raise
                # registered since the mirrored checkpoint, perhaps: its home knows
        try:
            return self._from_home(party, agent_id, mirror)
        except NotFound:
            raise
        except CustodesError:
            if mirror is None or mirror.state.note is None:
                raise StoreError(
                    f"{party.code}'s node cannot be reached and this node holds no mirror of "
                    "it yet; try again shortly",
                    code="home_unreachable",
                ) from None
            return self._from_mirror(mirror, agent_id, reader)

    # -- finality -------------------------------------------------------------------
    def _finality(self, note: bytes) -> Finality:
        found = self._final.get(note)
        roster = self.node.federation.roster
        if found is None and roster is not None:
            found = finality(parse_note(note), roster)
            if len(self._final) > 1024:
                self._final.clear()
            self._final[note] = found
        return found or Finality((), 1)

    def _stamp(self, base: dict[str, Any], age: float) -> dict[str, Any]:
        found = self._finality(base["checkpoint"].encode())
        return {
            **base,
            "cosigners": list(found.cosigners),
            "quorum": found.needed,
            "final": found.final,
            "age_s": round(age, 3),
            "stale": age > self.bound,
            "bound_s": self.bound,
        }

    # -- the three sources ----------------------------------------------------------
    def _own(self, agent_id: str, reader: Principal | None) -> dict[str, Any]:
        node = self.node
        answer = node.queries.agent(agent_id, reader=reader)
        size, _ = node.store.tree_size()
        index = answer["entry_index"]
        stored = node.store.checkpoint(size)
        if index >= size or stored is None:
            raise NotFound(
                f"{agent_id} is registered but not yet under a checkpoint; ask again shortly",
                code="not_yet_integrated",
            )
        proof = node.record_proofs.inclusion(index, size)
        with read_tx(node.engine) as conn:
            entry = node.store.entry_data(conn, index, index + 1)[0]
        note = stored.note + "".join(node.store.cosignature_lines(size)).encode()
        base = self._base(agent_id, "self", answer, proof["leaf_hash"], entry)
        base |= {"proof": _proof(index, size, proof["proof"]), "checkpoint": note.decode()}
        base["orders"] = _orders(node.engine, agent_id)
        return self._stamp(base, 0.0)

    def _base(
        self, agent_id: str, source: str, answer: dict[str, Any], leaf: bytes, entry: bytes | None
    ) -> dict[str, Any]:
        return {
            "agent_id": agent_id,
            "home": agent_id.split(":")[2].upper(),
            "source": source,
            "record": answer["record"],
            "status": answer["status"],
            "suspended_in": answer["suspended_in"],
            "keys": answer.get("keys", []),
            "entry_index": answer["entry_index"],
            "leaf_hash": _b64(leaf),
            "entry": None if entry is None else _b64(entry),
        }

    def _from_mirror(
        self, mirror: PeerMirror, agent_id: str, reader: Principal | None
    ) -> dict[str, Any]:
        state = mirror.state
        if state.note is None:
            raise NotFound(f"no agent {agent_id} is mirrored yet", code="unknown_agent")
        key = (mirror.party.code, agent_id, state.note)
        base = self._answers.get(key) if reader is None else None
        if base is None:
            base = self._mirrored(mirror, agent_id, reader, state.size, state.note)
            if reader is None:
                with self._lock:
                    self._answers[key] = base
                    if len(self._answers) > _CACHED:
                        self._answers.popitem(last=False)
        return self._stamped(base, state)

    def _stamped(self, base: dict[str, Any], state: MirrorState) -> dict[str, Any]:
        answer = self._stamp(base, state.age(self.clock()) or 0.0)
        if state.alarm is not None:
            answer |= {"stale": True, "alarm": state.alarm}
        return answer

    def _mirrored(
        self, mirror: PeerMirror, agent_id: str, reader: Principal | None, size: int, note: bytes
    ) -> dict[str, Any]:
        answer = mirror.queries.agent(agent_id, reader=reader)
        index = answer["entry_index"]
        if index >= size:  # the follower committed more since ``size``: prove at its size
            newer = mirror.refresh()
            size, note = newer.size, newer.note or note
        base = self._base(agent_id, "mirror", answer, mirror.leaf(index), mirror.entry(index))
        base |= {
            "proof": _proof(index, size, mirror.inclusion(index, size)),
            "checkpoint": note.decode(),
            "orders": _orders(mirror.engine, agent_id),
        }
        return base

    def _get(self, party: Party, path: str, **params: int) -> httpx.Response:
        try:
            response = self._http.get(f"{party.url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach {party.code}'s node: {exc}") from exc
        if response.status_code not in (200, 404):
            raise StoreError(f"{party.code}'s node answered HTTP {response.status_code}")
        return response

    def _from_home(self, party: Party, agent_id: str, mirror: PeerMirror | None) -> dict[str, Any]:
        response = self._get(party, f"/api/v1/registry/agents/{agent_id}")
        if response.status_code == 404:
            raise NotFound(
                f"{agent_id} is not registered at its home node ({party.code})",
                code="unknown_agent",
            )
        body = response.json()
        proof = body.get("proof") or {}
        base = {
            **self._base(agent_id, "home", body, b"", None),
            "leaf_hash": proof.get("leaf_hash"),
            "proof": {k: proof.get(k) for k in ("index", "tree_size", "proof")},
            "checkpoint": proof.get("checkpoint", ""),
            "orders": body.get("orders", []),
        }
        roster = self.node.federation.roster
        assert roster is not None
        checked = verify_lookup({**base, "entry": None}, roster)
        if mirror is not None:
            self._extends(party, mirror.state, checked.checkpoint)
        return self._stamp(base, 0.0)

    def _extends(self, party: Party, state: MirrorState, checkpoint: Checkpoint) -> None:
        """The home's answer must come from a tree that extends the one mirrored here."""
        if state.size == 0:
            return
        hashes: list[bytes] = []
        if checkpoint.size > state.size:
            answer = self._get(
                party, "/api/v1/proofs/consistency", first=state.size, second=checkpoint.size
            ).json()
            hashes = [base64.b64decode(h) for h in answer.get("proof", [])]
        try:
            verify_consistency(
                state.size, checkpoint.size, hashes, state.root, checkpoint.root_hash
            )
        except CustodesError as exc:
            log.error(
                "%s's node answered a look-up from a tree that does not extend the one "
                "mirrored here (size %d): %s",
                party.code,
                state.size,
                exc.message,
            )
            raise LookupUnverified(
                f"{party.code}'s answer is not consistent with its log as mirrored here"
            ) from exc


def open_lookups(node: Node) -> AllianceLookups:
    """Start following every peer of the roster (``data_dir/mirror``) and answer look-ups."""
    settings = node.settings
    mirrors = Mirrors(
        node.federation,
        settings.data_dir / "mirror",
        is_leader=lambda: node.is_leader,
        interval=settings.mirror_interval,
        timeout=settings.mirror_timeout,
    )
    mirrors.start()
    return AllianceLookups(node, mirrors)


def _proof(index: int, size: int, hashes: list[bytes]) -> dict[str, Any]:
    return {"index": index, "tree_size": size, "proof": [_b64(h) for h in hashes]}
