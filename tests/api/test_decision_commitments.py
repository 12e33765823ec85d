"""Decision records as commitments: the append with its opening, entitled reads (each
logged), and erasure by the home regulator, over HTTP on SQLite and PostgreSQL.

Every refusal is checked for the one error shape and for writing nothing (the log's
sequenced size and the openings table are unchanged).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from custodes.api import create_app
from custodes.config import Settings
from custodes.ledger import leaf_hash, open_checkpoint, parse_vkey, verify_inclusion
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.commitments import OpenedEntry, open_decision, parse_opening
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.openings import decision_openings
from custodes.ledger.payloads import (
    ACCESS_TYPE,
    DECISION_TYPE,
    ERASURE_TYPE,
    CommittedDecision,
    ErasureRecord,
)
from custodes.ledger.store import entries
from custodes.node import Node
from custodes.registry.models import PrincipalRecord
from custodes.sdk.decisions import sign_committed_decision, sign_decision
from custodes.store.db import read_tx
from tests.api.support import AGENT, assert_error, enrol_agent, node_of, post_entries
from tests.enrol import OPERATOR_KEY, REGULATOR_KEY

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOST_KEY = EnvelopeSigner.from_seed(b"h" * 32)
OTHER_HOST_KEY = EnvelopeSigner.from_seed(b"d" * 32)
OTHER_OPERATOR_KEY = EnvelopeSigner.from_seed(b"x" * 32)
AUDITOR_KEY = EnvelopeSigner.from_seed(b"a" * 32)


def committed(key: EnvelopeSigner, n: int, **fields: Any) -> OpenedEntry:
    fields.setdefault("jurisdiction", "FR")
    return sign_committed_decision(
        key,
        AGENT,
        f"trade #{n}",
        "within the mandate",
        decided_at=AT,
        idempotency_key=f"c{n}",
        **fields,
    )


@dataclass
class World:
    client: TestClient
    agent: EnvelopeSigner
    tokens: dict[str, str]

    @property
    def node(self) -> Node:
        return node_of(self.client)

    def auth(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}

    def append(self, items: list[Any]) -> list[int]:
        response = post_entries(self.client, {"entries": [i.to_json() for i in items]})
        assert response.status_code == 200, response.text
        indices: list[int] = response.json()["indices"]
        assert self.node.log.wait_for_checkpoint(indices[-1] + 1, timeout=20)
        return indices

    def written(self) -> tuple[int, int]:
        with read_tx(self.node.engine) as conn:
            openings = conn.execute(select(func.count()).select_from(decision_openings)).scalar()
        return self.node.store.sequenced_size(), int(openings or 0)

    def accesses(self) -> list[dict[str, Any]]:
        with read_tx(self.node.engine) as conn:
            rows = conn.execute(
                select(entries.c.data)
                .where(entries.c.payload_type == ACCESS_TYPE)
                .order_by(entries.c.idx)
            ).scalars()
            return [orjson.loads(base64.b64decode(orjson.loads(bytes(r))["payload"])) for r in rows]


def _register(node: Node, pid: str, role: str, jurisdiction: str, key: EnvelopeSigner) -> None:
    record = PrincipalRecord(
        id=pid,
        role=role,  # type: ignore[arg-type]
        jurisdiction=jurisdiction,
        name=pid,
        public_key=base64.b64encode(key.public_key).decode(),
    )
    node.registry.register_principal(record)


@pytest.fixture(scope="module")
def world(shared_client: TestClient, shared_agent: EnvelopeSigner) -> Iterator[World]:
    node = node_of(shared_client)
    _register(node, "regulator:fr", "regulator", "FR", HOST_KEY)
    _register(node, "regulator:de", "regulator", "DE", OTHER_HOST_KEY)
    _register(node, "operator:other", "operator", "ZZ", OTHER_OPERATOR_KEY)
    _register(node, "auditor:zz", "auditor", "ZZ", AUDITOR_KEY)
    names = ["regulator:zz", "regulator:fr", "regulator:de", "operator:acme", "operator:other"]
    tokens = {pid: str(node.tokens.issue(pid, None, 3600)["token"]) for pid in names}
    tokens["auditor:zz"] = str(node.tokens.issue("auditor:zz", ["read:private"], 3600)["token"])
    return World(shared_client, shared_agent, tokens)


# --- the append ---------------------------------------------------------------------


def test_a_committed_decision_is_logged_without_its_clear_text(world: World) -> None:
    sent = committed(world.agent, 1, counterparties=["supplier-42"])
    plain = sign_decision(world.agent, AGENT, "plain #1", "old SDK", decided_at=AT)
    index, plain_index = world.append([sent, plain])
    logged = world.client.get(f"/api/v1/entries/{index}").json()["entry"]
    payload = orjson.loads(base64.b64decode(logged["payload"]))
    assert payload == orjson.loads(sent.envelope.payload)
    assert "trade" not in str(payload)
    assert "supplier-42" not in str(payload)
    with read_tx(world.node.engine) as conn:
        row = conn.execute(select(decision_openings).where(decision_openings.c.idx == index)).one()
    assert row.commitment == payload["commitment"]
    assert row.salt == sent.opening.salt
    assert orjson.loads(row.record) == sent.opening.record
    plain_view = world.client.get(f"/api/v1/decisions/{plain_index}").json()
    assert plain_view["decision"]["rationale"] == "old SDK"  # version 1 stays readable


def _opening(salt: str, record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    digest = hashlib.sha256(canonical_dumps(["custodes.decision.v1", salt, record])).hexdigest()
    return f"sha256:{digest}", {"salt": salt, "record": record}


def _signed_v2(key: EnvelopeSigner, commitment: str, **meta: Any) -> dict[str, Any]:
    fields = {"v": 2, "agent": AGENT, "kind": "decision", "decided_at": "2026-03-01T12:00:00Z"}
    fields |= {"idempotency_key": "bad", "commitment": commitment} | meta
    return sign_envelope(DECISION_TYPE, canonical_dumps(fields), [key]).to_json()


def _record(**changes: Any) -> dict[str, Any]:
    base = {"agent": AGENT, "action": "x", "rationale": "y", "decided_at": "2026-03-01T12:00:00Z"}
    return base | {"idempotency_key": "bad"} | changes


def _bad_items(key: EnvelopeSigner) -> dict[str, tuple[Any, int, str]]:
    good = committed(key, 900)
    tampered = {**good.opening.record, "rationale": "something else"}
    short_commitment, short = _opening("c2hvcnQ", _record())
    other_commitment, other = _opening(good.opening.salt, _record(agent="urn:custodes:zz:agent:x"))
    return {
        "mismatch": (
            {
                "envelope": good.envelope.to_json(),
                "opening": {"salt": good.opening.salt, "record": tampered},
            },
            400,
            "commitment_mismatch",
        ),
        "short salt": (
            {"envelope": _signed_v2(key, short_commitment), "opening": short},
            400,
            "bad_salt",
        ),
        "wrong agent": (
            {"envelope": _signed_v2(key, other_commitment), "opening": other},
            400,
            "opening_mismatch",
        ),
        "no opening": (good.envelope.to_json(), 422, "opening_missing"),
        "opening on a plain record": (
            {
                "envelope": sign_decision(key, AGENT, "p", "q", decided_at=AT).to_json(),
                "opening": good.opening.model_dump(),
            },
            400,
            "unexpected_opening",
        ),
    }


@pytest.mark.parametrize(
    "case", ["mismatch", "short salt", "wrong agent", "no opening", "opening on a plain record"]
)
def test_a_bad_opening_is_refused_and_nothing_is_written(world: World, case: str) -> None:
    item, status, code = _bad_items(world.agent)[case]
    before = world.written()
    for body in (item, {"entries": [committed(world.agent, 901).to_json(), item]}):
        detail = assert_error(post_entries(world.client, body), status, code)
        if "entries" in body:
            assert detail["entry"] == 1  # the batch names the bad entry
    assert world.written() == before


# --- reads --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def logged(world: World) -> list[int]:
    return world.append([committed(world.agent, n) for n in range(10, 14)])


# Who sees decision records naming FR (the record's jurisdiction) in clear.
READERS = {
    None: False,
    "regulator:zz": True,  # home
    "regulator:fr": True,  # host, named by the record
    "regulator:de": False,  # host, not named
    "operator:acme": True,  # the agent's own operator
    "operator:other": False,
    "auditor:zz": False,
}


@pytest.mark.parametrize(("reader", "clear"), list(READERS.items()))
def test_each_reader_sees_clear_text_only_where_entitled(
    world: World, logged: list[int], reader: str | None, clear: bool
) -> None:
    index = logged[0]
    before = len(world.accesses())
    response = world.client.get(f"/api/v1/decisions/{index}", headers=world.auth(reader))
    assert response.status_code == 200, response.text
    item = response.json()
    _check_proof(world, item)
    assert ("clear" in item) is clear
    if clear:
        opened = open_decision(
            CommittedDecision.model_validate(item["decision"]), parse_opening(item["clear"])
        )
        assert opened.action == "trade #10"
        assert world.accesses()[before:] == [_access(reader, [index], world.accesses()[-1])]
    else:
        assert len(world.accesses()) == before  # nothing shown, nothing logged
        direct = world.client.get(f"/api/v1/decisions/{index}/clear", headers=world.auth(reader))
        if reader is None:
            assert_error(direct, 401, "missing_token")
        else:
            assert_error(direct, 403, "not_entitled")


def _access(reader: str | None, indices: list[int], last: dict[str, Any]) -> dict[str, Any]:
    return {"v": 1, "reader": reader, "indices": indices, "read_at": last["read_at"]}


def _check_proof(world: World, item: dict[str, Any]) -> None:
    vkey = world.client.get("/api/v1/node").json()["log_vkey"]
    checkpoint = open_checkpoint(item["checkpoint"].encode(), [parse_vkey(vkey)])[0]
    leaf = leaf_hash(canonical_dumps(item["entry"]))
    proof = [base64.b64decode(h) for h in item["proof"]["proof"]]
    verify_inclusion(leaf, item["index"], checkpoint.size, proof, checkpoint.root_hash)


def test_a_page_of_decisions_is_opened_for_its_home_regulator_with_one_access_entry(
    world: World, logged: list[int]
) -> None:
    before = len(world.accesses())
    path = f"/api/v1/registry/agents/{AGENT}/decisions"
    page = world.client.get(path, params={"limit": 1000}, headers=world.auth("regulator:zz")).json()
    shown = [i["index"] for i in page["items"] if "clear" in i]
    assert set(logged) <= set(shown)
    after = world.accesses()[before:]
    assert len(after) == 1
    assert after[0]["indices"] == shown
    public = world.client.get(path, params={"limit": 1000}).json()
    assert not any("clear" in i for i in public["items"])


# --- erasure ------------------------------------------------------------------------


def _erasure(world: World, index: int, who: str, key: EnvelopeSigner, **changes: Any) -> Any:
    shown = world.client.get(f"/api/v1/decisions/{index}").json().get("decision", {})
    commitment = shown.get("commitment")
    fields = {"index": index, "commitment": commitment or "sha256:" + "0" * 64} | changes
    record = ErasureRecord(legal_basis="court order 2026/17", actor=who, **fields)
    envelope = sign_envelope(ERASURE_TYPE, record.model_dump_json().encode(), [key])
    return world.client.post(
        f"/api/v1/decisions/{index}/erasure",
        content=canonical_dumps(envelope.to_json()),
        headers=world.auth(who),
    )


def test_only_the_home_regulator_may_erase(world: World, logged: list[int]) -> None:
    before = world.written()
    refusals = [
        (_erasure(world, logged[1], "regulator:fr", HOST_KEY), 403, "not_home_regulator"),
        (_erasure(world, logged[1], "operator:acme", OPERATOR_KEY), 403, "not_home_regulator"),
        (_erasure(world, logged[1], "regulator:zz", HOST_KEY), 403, "signer_mismatch"),
        (_erasure(world, 0, "regulator:zz", REGULATOR_KEY), 404, "decision_not_found"),
        (_erasure(world, 10**9, "regulator:zz", REGULATOR_KEY), 404, "decision_not_found"),
        (
            _erasure(
                world, logged[1], "regulator:zz", REGULATOR_KEY, commitment="sha256:" + "1" * 64
            ),
            400,
            "commitment_mismatch",
        ),
    ]
    for response, status, code in refusals:
        assert_error(response, status, code)
    assert world.written() == before


def test_a_plain_record_cannot_be_erased(world: World) -> None:
    (index,) = world.append([sign_decision(world.agent, AGENT, "plain", "r", decided_at=AT)])
    before = world.written()
    assert_error(_erasure(world, index, "regulator:zz", REGULATOR_KEY), 409, "plain_record")
    assert world.written() == before


def test_erasure_destroys_the_clear_text_and_every_proof_stays_valid(
    world: World, logged: list[int]
) -> None:
    index = logged[2]
    response = _erasure(world, index, "regulator:zz", REGULATOR_KEY)
    assert response.status_code == 200, response.text
    erased_at = response.json()["erased_index"]
    with read_tx(world.node.engine) as conn:
        row = conn.execute(select(decision_openings).where(decision_openings.c.idx == index)).one()
    assert (row.salt, row.record, row.erased_index, row.erased_by) == (
        None,
        None,
        erased_at,
        "regulator:zz",
    )
    for who in ("regulator:zz", "operator:acme"):
        gone = world.client.get(f"/api/v1/decisions/{index}/clear", headers=world.auth(who))
        assert_error(gone, 410, "erased")
        assert f"erased at index {erased_at} by regulator:zz" in gone.json()["error"]["message"]
        assert_error(
            world.client.get(f"/api/v1/decisions/{index}", headers=world.auth(who)), 410, "erased"
        )
    public = world.client.get(f"/api/v1/decisions/{index}").json()
    assert public["erased"] == {"index": erased_at, "by": "regulator:zz"}
    assert "clear" not in public
    assert world.node.log.wait_for_checkpoint(erased_at + 1, timeout=20)
    _check_proof(world, world.client.get(f"/api/v1/decisions/{index}").json())
    assert world.node.audit().audited >= erased_at + 1  # signatures, leaves, every root
    before = world.written()
    assert_error(_erasure(world, index, "regulator:zz", REGULATOR_KEY), 410, "erased")
    assert world.written() == before


def test_a_node_set_to_take_commitments_only_refuses_plain_records(
    settings: Settings, agent: EnvelopeSigner
) -> None:
    strict = settings.model_copy(update={"accept_plain_decisions": False})
    with TestClient(create_app(strict)) as client:
        enrol_agent(client, agent)
        before = node_of(client).store.sequenced_size()
        plain = sign_decision(agent, AGENT, "p", "q", decided_at=AT).to_json()
        assert_error(post_entries(client, plain), 422, "plain_decision_refused")
        assert node_of(client).store.sequenced_size() == before
        accepted = post_entries(client, committed(agent, 1).to_json())
        assert accepted.status_code == 200, accepted.text


def test_a_committed_batch_not_in_canonical_form_is_refused(world: World) -> None:
    before = world.written()
    body = {"entries": [committed(world.agent, 950).to_json()]}
    spaced = orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    assert_error(post_entries(world.client, spaced), 422, "non_canonical_json")
    commitment, opening = _opening(
        "c2FsdC1vZi0xMjgtYml0cy1sb25n", _record(v=1.0, idempotency_key="f1")
    )
    envelope = _signed_v2(world.agent, commitment, idempotency_key="f1")
    raw = orjson.dumps(
        {"entries": [{"envelope": envelope, "opening": opening}]}, option=orjson.OPT_SORT_KEYS
    )
    assert_error(post_entries(world.client, raw), 422, "invalid_opening")
    assert world.written() == before
