"""The demo's federation act: the alliance working as one system.

1. The FR regulator, at the FR node, suspends a GB finance agent in France only. The FR
   node forwards the signed order to the agent's home (GB), which applies the authority
   rules, logs it and pushes it; the agent's guard (which checks the issuer's signature
   against the roster) refuses in France and still acts in the UK.
2. The DE node proves the GB agent's status by look-up: from its verified mirror of GB's
   log, with the record's inclusion proof and a checkpoint cosigned by a quorum.
3. The GB regulator erases one decision's clear text on a legal request: readers are
   told "erased at index N by ...", the commitment and every proof stay (the logs are
   verified afterwards, by the main demo).
4. ``fork_act`` (played after the logs are verified): a dishonest operator holding CA's
   log key shows FR's and DE's witnesses two different histories; their gossip proves the
   split view, logs the evidence and refuses CA's log; an outsider checks the evidence
   offline.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from custodes.client import Client, verified_lookup
from custodes.errors import CustodesError
from custodes.federation.lookup import VerifiedLookup
from custodes.federation.roster import Party, SignedRoster
from custodes.ledger.checkpoint import Checkpoint, sign_checkpoint
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.merkle import consistency_proof, leaf_hash, root_of
from custodes.ledger.note import parse_private_key
from custodes.ledger.witness import format_add_checkpoint
from custodes.sdk import Guard, Halted, IssuerKeys, registry_lookup
from custodes.sdk.bootstrap import Authorities
from custodes.sdk.decisions import sign_committed_decision

__all__ = ["FederationScenario", "ForkScenario", "fork_act", "play_federation"]

_WAIT_S = 30.0


@dataclass
class FederationScenario:
    forwarded_index: int | None = None
    halted_in: str = ""
    acts_at_home: bool = False
    halt_ms: float = 0.0
    lookup: VerifiedLookup | None = None
    erased: str = ""
    public_after_erasure: str = ""
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.forwarded_index is not None
            and self.halted_in == "FR"
            and self.acts_at_home
            and self.lookup is not None
            and "FR" in self.lookup.suspended_in
            and self.lookup.finality.final
            and "erased at index" in self.erased
            and self.public_after_erasure == "commitment"
        )


@dataclass
class ForkScenario:
    caught_by: dict[str, int] = field(default_factory=dict)  # member -> evidence index
    refused_by: list[str] = field(default_factory=list)
    offline_check: str = ""
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            len(self.caught_by) == 2
            and len(self.refused_by) == 2
            and self.offline_check.startswith("OK")
        )


def _wait(condition: Callable[[], Any], timeout: float = _WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return None


def _allowed(guard: Guard, territory: str) -> bool:
    try:
        guard.check(territory)
    except Halted:
        return False
    return True


def _territorial(
    scenario: FederationScenario,
    *,
    gb_url: str,
    fr: Authorities,
    roster: SignedRoster,
    agent: tuple[str, EnvelopeSigner],
) -> None:
    agent_id, key = agent
    node_key = base64.b64decode(
        httpx.get(f"{gb_url}/api/v1/node", timeout=5).json()["node_entry_public_key"]
    )
    with Client(gb_url) as reader:
        issuers = IssuerKeys(roster, registry_lookup(reader.signers))
        guard = Guard(
            agent_id,
            key,
            gb_url,
            node_key,
            safe_state=lambda: None,
            recorder=None,
            issuers=issuers,
        )
        with guard:
            guard.wait_for_lease(10)
            _wait(lambda: guard.stream_connected)
            sent = time.monotonic()
            answer = fr.regulator.order(
                "suspend", agent_id, "unlicensed trading on Euronext Paris", territory="FR"
            )
            scenario.forwarded_index = answer.get("index")
            scenario.steps.append(
                f"FR regulator, at the FR node, suspends {agent_id} in France; the FR node "
                f"forwards the signed order to GB, which logs it at index "
                f"{scenario.forwarded_index}"
            )
            if _wait(lambda: not _allowed(guard, "FR")):
                scenario.halt_ms = (time.monotonic() - sent) * 1000
                scenario.halted_in = "FR"
            scenario.acts_at_home = _allowed(guard, "GB")
            scenario.steps.append(
                f"the agent's guard (issuer checked against the roster) refuses in France "
                f"{scenario.halt_ms:.0f} ms after the order, and "
                f"{'still acts' if scenario.acts_at_home else 'does NOT act'} in the UK"
            )


def _lookup(scenario: FederationScenario, de_url: str, agent_id: str, roster: SignedRoster) -> None:
    def suspended_in_fr() -> VerifiedLookup | None:
        try:
            found = verified_lookup(de_url, agent_id, roster)
        except (CustodesError, httpx.HTTPError):
            return None
        return found if "FR" in found.suspended_in and found.finality.final else None

    scenario.lookup = _wait(suspended_in_fr)
    if scenario.lookup is None:
        scenario.steps.append("the DE node could not prove the GB agent's status in time")
        return
    found = scenario.lookup
    scenario.steps.append(
        f"the DE node proves it: {found.status}, suspended in "
        f"{', '.join(found.suspended_in)}; record at GB index {found.entry_index}, included "
        f"under GB's checkpoint of size {found.checkpoint.size}, cosigned by "
        f"{', '.join(found.finality.cosigners)} (final: quorum {found.finality.needed}); "
        f"data {found.age_s:.1f} s old"
    )


def _erase(scenario: FederationScenario, gb: Authorities, gb_url: str, index: int) -> None:
    regulator = gb.regulator
    record = regulator.decision(index)
    commitment = record.get("commitment") or _commitment_of(gb_url, index)
    done = regulator.erase_decision(index, commitment, "GDPR art. 17 request, case GB-2026-118")
    scenario.steps.append(
        f"the GB regulator erases the clear text of decision {index} "
        f"(erasure logged at index {done.get('erased_index')})"
    )
    try:
        regulator.decision_clear(index)
    except CustodesError as exc:
        scenario.erased = exc.message
    public = httpx.get(f"{gb_url}/api/v1/decisions/{index}", timeout=5).json()
    scenario.public_after_erasure = "commitment" if "clear" not in public else "clear text"
    scenario.steps.append(f"a regulator reading it now is told: {scenario.erased}")
    scenario.steps.append(
        "the public still reads its commitment and inclusion proof; the logs are verified below"
    )


def _commitment_of(url: str, index: int) -> str:
    entry = httpx.get(f"{url}/api/v1/entries/{index}", timeout=5).json()["entry"]
    payload = orjson.loads(base64.b64decode(entry["payload"]))
    return str(payload["commitment"])


def _committed_decisions(
    scenario: FederationScenario, url: str, agent: tuple[str, EnvelopeSigner]
) -> int:
    """The agent records decisions through the SDK: commitments in the public log, the
    clear record and salt kept at its home node. Returns the first one's index."""
    agent_id, key = agent
    trades = [
        (
            "sell 2,000 EUR/GBP forwards",
            "client mandate rebalancing",
            "mistral-broker",
            "fr",
        ),
        (
            "buy 40 MWh baseload futures",
            "hedge flagged by the risk model",
            "rhein-settle",
            "de",
        ),
    ]
    with Client(url) as client:
        indices = client.append(
            [
                sign_committed_decision(
                    key,
                    agent_id,
                    action,
                    why,
                    [f"urn:custodes:{home}:agent:{peer}"],
                    jurisdiction=home.upper(),
                )
                for action, why, peer, home in trades
            ]
        )
    scenario.steps.append(
        f"{agent_id} records {len(indices)} decisions through the SDK: the public log holds "
        f"salted commitments (indices {min(indices)}-{max(indices)}), the clear text stays at GB"
    )
    return min(indices)


def play_federation(
    *,
    urls: dict[str, str],
    authorities: dict[str, Authorities],
    roster: SignedRoster,
    agent: tuple[str, EnvelopeSigner],
) -> FederationScenario:
    scenario = FederationScenario()
    first = _committed_decisions(scenario, urls["GB"], agent)
    _territorial(scenario, gb_url=urls["GB"], fr=authorities["FR"], roster=roster, agent=agent)
    _lookup(scenario, urls["DE"], agent[0], roster)
    _erase(scenario, authorities["GB"], urls["GB"], first)
    return scenario


# -- the fork ----------------------------------------------------------------------


def _leaves(url: str, size: int) -> list[bytes]:
    with httpx.Client(base_url=url, timeout=5) as http:
        return [
            base64.b64decode(http.get(f"/api/v1/entries/{i}").json()["leaf_hash"])
            for i in range(size)
        ]


def _witness_size(witness_url: str, note: bytes) -> int:
    """The size the witness holds for the log (it answers 409 with it to ``old 0``)."""
    response = httpx.post(
        f"{witness_url}/witness/add-checkpoint",
        content=format_add_checkpoint(0, [], note),
        timeout=5,
    )
    return int(response.text) if response.status_code == 409 else 0


def _show(witness_url: str, leaves: list[bytes], held: int, note: bytes) -> bool:
    def reader(level: int, index: int) -> bytes:
        return root_of(leaves[index << level : (index + 1) << level])

    proof = consistency_proof(held, len(leaves), reader) if 0 < held < len(leaves) else []
    response = httpx.post(
        f"{witness_url}/witness/add-checkpoint",
        content=format_add_checkpoint(held, proof, note),
        timeout=5,
    )
    return response.status_code == 200


def _alert(url: str, origin: str) -> dict[str, Any] | None:
    alerts = httpx.get(f"{url}/api/v1/federation/alerts", timeout=5).json().get("alerts", [])
    return next((a for a in alerts if a["origin"] == origin), None)


def fork_act(
    accused: Party, accused_dir: Path, witnesses: dict[str, str], workdir: Path
) -> ForkScenario:
    """Show each of ``witnesses`` ({code: url}) a different history of ``accused``'s log."""
    scenario = ForkScenario()
    key = parse_private_key((accused_dir / "log.key").read_text().strip())
    size = int(httpx.get(f"{accused.url}/log/checkpoint", timeout=5).text.split("\n")[1])
    real = _leaves(accused.url, size)
    scenario.steps.append(
        f"a dishonest operator holding {accused.code}'s log key signs two histories of "
        f"size {size + 1}, one for each of {' and '.join(witnesses)}"
    )
    for n, (code, url) in enumerate(witnesses.items()):
        forked = [*real, leaf_hash(f"rewritten history #{n}".encode())]
        note = sign_checkpoint(Checkpoint(accused.origin, len(forked), root_of(forked)), key)
        if _show(url, forked, _witness_size(url, note), note):
            scenario.steps.append(f"{code}'s witness cosigns the history shown to it")
    for code, url in witnesses.items():
        alert = _wait(lambda url=url: _alert(url, accused.origin), 60)  # type: ignore[misc]
        if alert is None:
            scenario.steps.append(f"{code} did not catch the split view in time")
            continue
        scenario.caught_by[code] = int(alert.get("entry_index", -1))
        bundle = workdir / f"evidence-{code.lower()}.json"
        bundle.write_bytes(orjson.dumps(alert["evidence"]))
        honest = sign_checkpoint(Checkpoint(accused.origin, size, root_of(real)), key)
        refused = httpx.post(
            f"{url}/witness/add-checkpoint",
            content=format_add_checkpoint(0, [], honest),
            timeout=5,
        )
        if refused.status_code == 403:
            scenario.refused_by.append(code)
        check = subprocess.run(  # an outsider's check, offline, with only the log's key
            [
                sys.executable,
                "-m",
                "custodes",
                "federation",
                "evidence",
                "verify",
                str(bundle),
                "--key",
                accused.log_vkey,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = (check.stdout or check.stderr).strip().splitlines()
        scenario.offline_check = lines[-1] if lines else f"exit {check.returncode}"
        scenario.steps.append(
            f"{code} proves the split view ({alert['evidence'].get('case')}), logs the "
            f"evidence at its index {scenario.caught_by[code]}, and refuses "
            f"{accused.code}'s log until the members decide"
        )
    return scenario
