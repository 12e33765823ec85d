"""The registry over HTTP on SQLite and PostgreSQL: admin, tokens, writes, reads, as_of.

Principals and tokens are made with the admin API, registry changes with the SDK's
custodes.client.Client, and reads are checked as the public and as a token holder would see them.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from custodes.client import Client
from custodes.config import DEV_ADMIN_TOKEN
from custodes.errors import CustodesError
from custodes.ledger import leaf_hash, open_checkpoint, parse_vkey, verify_inclusion
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, parse_envelope, verify_envelope
from custodes.node import Node
from custodes.registry.models import (
    AgentChanges,
    Aliases,
    Interface,
    ModelRecord,
    Skill,
)
from custodes.registry.queries import NODE, PUBLIC_AGENT_FIELDS
from custodes.registry.service import PRINCIPAL_TYPE
from custodes.registry.store import api_tokens
from custodes.store.db import read_tx
from tests.registry.support import (
    CONTACT,
    HOME,
    HOST,
    OTHER,
    agent_record,
    fresh_slug,
    operator_record,
)

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
HIDDEN = {"contact", "aliases", "interfaces", "model"}


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def principal_body(pid: str, role: str, jurisdiction: str, key: EnvelopeSigner) -> dict[str, Any]:
    public_key = base64.b64encode(key.public_key).decode()
    return {
        "id": pid,
        "role": role,
        "jurisdiction": jurisdiction,
        "name": pid,
        "public_key": public_key,
    }


def error_code(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    return str(body["error"]["code"])


def new_token(client: TestClient, pid: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/admin/tokens", json={"principal": pid, **fields}, headers=ADMIN)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


@dataclass(frozen=True)
class Party:
    id: str
    key: EnvelopeSigner
    token: str
    registry: Client


def enrol_party(client: TestClient, pid: str, role: str, jurisdiction: str) -> Party:
    key = EnvelopeSigner.generate()
    body = principal_body(pid, role, jurisdiction, key)
    response = client.post("/api/v1/admin/principals", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    token = new_token(client, pid)["token"]
    return Party(
        pid,
        key,
        token,
        Client(str(client.base_url), principal=pid, token=token, key=key, http=client),
    )


@dataclass(frozen=True)
class Parties:
    home: Party
    host: Party
    acme: Party
    search: Party  # the operator of the agents the search tests look for
    auditor: Party


@pytest.fixture(scope="module")
def parties(app_client: TestClient) -> Parties:
    home = enrol_party(app_client, "regulator:zz", "regulator", HOME)
    found = Parties(
        home,
        enrol_party(app_client, "regulator:fr", "regulator", HOST),
        enrol_party(app_client, "operator:acme", "operator", HOME),
        enrol_party(app_client, "operator:searchco", "operator", HOME),
        enrol_party(app_client, "auditor:audit-co", "auditor", HOME),
    )
    home.registry.register_operator(operator_record("operator:acme"))
    home.registry.register_operator(operator_record("operator:searchco"))
    return found


def _snapshot(client: TestClient) -> tuple[int, list[Any], list[Any]]:
    node = node_of(client)
    with read_tx(node.engine) as conn:
        tokens = [tuple(r) for r in conn.execute(select(api_tokens)).all()]
    return node.store.sequenced_size(), client.get("/api/v1/signers").json(), tokens


# --- admin: principals and tokens ----------------------------------------------------------

ADMIN_CALLS = [
    pytest.param(("POST", "/api/v1/admin/principals"), id="principals"),
    pytest.param(("POST", "/api/v1/admin/tokens"), id="tokens"),
    pytest.param(("DELETE", "/api/v1/admin/tokens/abc123"), id="revoke"),
]
NOT_ADMIN = [
    pytest.param(({}, 401, "missing_token"), id="no-token"),
    pytest.param(({"Authorization": "Bearer not-the-admin-token"}, 403, "bad_token"), id="wrong"),
]


@pytest.mark.parametrize("call", ADMIN_CALLS)
@pytest.mark.parametrize("auth", NOT_ADMIN)
def test_admin_calls_need_the_admin_token(
    app_client: TestClient,
    parties: Parties,
    call: tuple[str, str],
    auth: tuple[dict[str, str], int, str],
) -> None:
    (method, path), (headers, status, code) = call, auth
    body = principal_body("auditor:sneaky", "auditor", HOME, EnvelopeSigner.generate())
    if path.endswith("tokens"):
        body = {"principal": parties.home.id}
    before = _snapshot(app_client)
    response = app_client.request(method, path, json=body, headers=headers)
    assert error_code(response, status) == code
    assert _snapshot(app_client) == before


def test_an_api_token_is_not_an_admin_token(app_client: TestClient, parties: Parties) -> None:
    response = app_client.post(
        "/api/v1/admin/tokens",
        json={"principal": parties.home.id},
        headers=bearer(parties.home.token),
    )
    assert error_code(response, 403) == "bad_token"


def test_a_principal_is_a_logged_entry_signed_by_the_node(
    app_client: TestClient, parties: Parties
) -> None:
    node = node_of(app_client)
    key = EnvelopeSigner.generate()
    body = principal_body("auditor:big-four", "auditor", HOME, key)
    response = app_client.post("/api/v1/admin/principals", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    index = response.json()["index"]
    assert response.json() == {"id": "auditor:big-four", "index": index}
    envelope = parse_envelope(app_client.get(f"/api/v1/entries/{index}").json()["entry"])
    assert envelope.payload_type == PRINCIPAL_TYPE
    assert orjson.loads(envelope.payload) == {"v": 1, **body}
    node_key = {node.entry_signer.keyid: node.entry_signer.public_key}
    assert verify_envelope(envelope, node_key.get) == [node.entry_signer.keyid]
    signers = {s["keyid"]: s for s in app_client.get("/api/v1/signers").json()}
    assert signers[key.keyid]["name"] == "auditor:big-four"
    before = _snapshot(app_client)
    again = app_client.post("/api/v1/admin/principals", json=body, headers=ADMIN)
    assert error_code(again, 409) == "principal_exists"
    bad = app_client.post("/api/v1/admin/principals", json=body | {"role": "agent"}, headers=ADMIN)
    assert error_code(bad, 422) == "invalid_request"
    assert _snapshot(app_client) == before


def test_a_token_is_shown_once_and_stored_only_as_a_hash(
    app_client: TestClient, parties: Parties
) -> None:
    issued = new_token(app_client, parties.acme.id)
    assert set(issued) == {"token", "token_id", "principal", "scopes", "expires_at"}
    assert issued["principal"] == parties.acme.id
    assert issued["scopes"] == ["orders:write", "read:private", "registry:write"]
    assert issued["expires_at"] == pytest.approx(time.time() + 86_400, abs=60)
    match = re.fullmatch(r"cst_([0-9a-f]+)_(.+)", issued["token"])
    assert match is not None
    assert match.group(1) == issued["token_id"]
    secret = match.group(2)
    with read_tx(node_of(app_client).engine) as conn:
        row = conn.execute(
            select(api_tokens).where(api_tokens.c.token_id == issued["token_id"])
        ).one()
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(value) for value in row)
    again = new_token(app_client, parties.acme.id, scopes=["read:private"])
    assert again["token"] != issued["token"]
    assert again["scopes"] == ["read:private"]
    for token in (issued["token"], again["token"]):
        assert (
            app_client.get("/api/v1/registry/operators", headers=bearer(token)).status_code == 200
        )
    unknown = app_client.post(
        "/api/v1/admin/tokens", json={"principal": "operator:nobody"}, headers=ADMIN
    )
    assert error_code(unknown, 404) == "unknown_principal"


def test_a_revoked_token_is_refused(app_client: TestClient, parties: Parties) -> None:
    issued = new_token(app_client, parties.acme.id)
    revoked = app_client.delete(f"/api/v1/admin/tokens/{issued['token_id']}", headers=ADMIN)
    assert revoked.status_code == 204
    response = app_client.get("/api/v1/registry/operators", headers=bearer(issued["token"]))
    assert error_code(response, 401) == "token_revoked"
    unknown = app_client.delete("/api/v1/admin/tokens/ffffffffffff", headers=ADMIN)
    assert error_code(unknown, 404) == "unknown_token"


def test_an_expired_token_is_refused(
    app_client: TestClient, parties: Parties, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = new_token(app_client, parties.acme.id, ttl_seconds=60)
    headers = bearer(issued["token"])
    assert app_client.get("/api/v1/registry/operators", headers=headers).status_code == 200
    monkeypatch.setattr(node_of(app_client).tokens, "_clock", lambda: time.time() + 61)
    response = app_client.get("/api/v1/registry/operators", headers=headers)
    assert error_code(response, 401) == "token_expired"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("garbage", id="not-a-custodes-token"),
        pytest.param("cst_000000000000_wrong", id="unknown-id"),
        pytest.param("cst__", id="empty-parts"),
    ],
)
def test_bad_tokens_are_refused_even_on_public_reads(app_client: TestClient, token: str) -> None:
    response = app_client.get("/api/v1/registry/agents", headers=bearer(token))
    assert error_code(response, 401) == "bad_token"


def test_a_forged_secret_is_refused(app_client: TestClient, parties: Parties) -> None:
    issued = new_token(app_client, parties.acme.id)
    forged = f"cst_{issued['token_id']}_{'x' * 43}"
    response = app_client.get("/api/v1/registry/operators", headers=bearer(forged))
    assert error_code(response, 401) == "bad_token"


# --- registry writes through the SDK --------------------------------------------------------


def test_writes_need_a_token(app_client: TestClient, parties: Parties) -> None:
    before = _snapshot(app_client)
    response = app_client.post("/api/v1/registry/entries", content=b"{}")
    assert error_code(response, 401) == "missing_token"
    response = app_client.post("/api/v1/kill-orders", content=b"{}")
    assert error_code(response, 401) == "missing_token"
    assert _snapshot(app_client) == before


def test_the_sdk_writes_the_registry_under_the_rules(
    app_client: TestClient, parties: Parties
) -> None:
    node = node_of(app_client)
    key, new_key = EnvelopeSigner.generate(), EnvelopeSigner.generate()
    record = agent_record(fresh_slug())
    registered = parties.acme.registry.register_agent(record, [key.public_key])
    updated = parties.acme.registry.update_agent(record.id, AgentChanges(version="1.1"))
    rotated = parties.acme.registry.rotate_key(
        record.id, add=[new_key.public_key], retire=[key.keyid]
    )
    model = ModelRecord(
        id=f"model:{fresh_slug('m')}",
        provider="Example Labs",
        name="Example",
        version="1",
        digest="sha256:" + "cd" * 32,
        training_compute_flop=3e23,
    )
    modelled = parties.home.registry.register_model(model)
    assert registered < updated < rotated < modelled < node.store.sequenced_size()
    answer = parties.home.registry.agent(record.id)
    assert answer["record"]["version"] == "1.1"
    assert {k["keyid"]: k["status"] for k in answer["keys"]} == {
        key.keyid: "retired",
        new_key.keyid: "active",
    }
    listed = app_client.get("/api/v1/registry/models").json()
    assert {
        "record": model.model_dump(mode="json", exclude_none=True),
        "entry_index": modelled,
        "holder": parties.home.id,
        "status": "active",
    } in listed
    before = _snapshot(app_client)
    with pytest.raises(CustodesError) as caught:
        parties.host.registry.update_agent(record.id, AgentChanges(version="6.6.6"))
    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    assert _snapshot(app_client) == before


# --- search and pagination ------------------------------------------------------------------


@pytest.fixture(scope="module")
def population(parties: Parties) -> dict[str, str]:
    """searchco's agents by nickname: two active, one suspended, one revoked."""
    specs = {
        "trader": {"sector": "finance", "operating_jurisdictions": (HOST,), "skills": ("trading",)},
        "grid": {"sector": "energy", "skills": ("grid-balancing",)},
        "triage": {
            "sector": "health",
            "operating_jurisdictions": (OTHER, HOST),
            "skills": ("triage", "trading"),
        },
        "meter": {"sector": "energy", "operating_jurisdictions": (OTHER,)},
    }
    ids = {}
    for nickname, spec in specs.items():
        skills = tuple(Skill(id=s, name=s.title()) for s in spec.pop("skills", ()))
        record = agent_record(fresh_slug(nickname), "operator:searchco", skills=skills, **spec)
        parties.search.registry.register_agent(record, [EnvelopeSigner.generate().public_key])
        ids[nickname] = record.id
    parties.home.registry.order("suspend", ids["triage"], "under review")
    parties.home.registry.order("revoke", ids["meter"], "decommissioned")
    return ids


def _search(client: TestClient, headers: dict[str, str] | None = None, **params: Any) -> Any:
    response = client.get("/api/v1/registry/agents", params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({}, ["trader", "grid", "triage", "meter"], id="all-of-the-operator"),
        pytest.param({"jurisdiction": HOME}, ["trader", "grid", "triage", "meter"], id="home"),
        pytest.param({"jurisdiction": HOST}, ["trader", "triage"], id="operating-FR"),
        pytest.param({"jurisdiction": OTHER}, ["triage", "meter"], id="operating-DE"),
        pytest.param({"jurisdiction": "US"}, [], id="nowhere"),
        pytest.param({"sector": "energy"}, ["grid", "meter"], id="sector"),
        pytest.param({"status": "active"}, ["trader", "grid"], id="active"),
        pytest.param({"status": "suspended"}, ["triage"], id="suspended"),
        pytest.param({"status": "revoked"}, ["meter"], id="revoked"),
        pytest.param({"skill": "trading"}, ["trader", "triage"], id="skill"),
        pytest.param({"jurisdiction": HOST, "status": "active"}, ["trader"], id="combined"),
    ],
)
def test_search_filters(
    app_client: TestClient, population: dict[str, str], params: dict[str, Any], expected: list[str]
) -> None:
    found = _search(app_client, operator="operator:searchco", **params)
    assert sorted(item["record"]["id"] for item in found["items"]) == sorted(
        population[n] for n in expected
    )
    statuses = {item["record"]["id"]: item["status"] for item in found["items"]}
    status_of = {"triage": "suspended", "meter": "revoked"}
    assert statuses == {population[n]: status_of.get(n, "active") for n in expected}


def test_search_by_operator_finds_only_its_agents(
    app_client: TestClient, population: dict[str, str]
) -> None:
    acme = _search(app_client, operator="operator:acme", limit=200)["items"]
    assert not {item["record"]["id"] for item in acme} & set(population.values())
    assert {item["record"]["operator"] for item in acme} <= {"operator:acme"}


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"status": "deleted"}, id="unknown-status"),
        pytest.param({"jurisdiction": "fr"}, id="lowercase-jurisdiction"),
        pytest.param({"limit": 0}, id="limit-0"),
        pytest.param({"limit": 201}, id="limit-201"),
    ],
)
def test_bad_search_parameters_are_422(app_client: TestClient, params: dict[str, Any]) -> None:
    response = app_client.get("/api/v1/registry/agents", params=params)
    assert error_code(response, 422) == "invalid_request"


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5])
def test_pagination_walks_every_agent_once_in_id_order(
    app_client: TestClient, population: dict[str, str], limit: int
) -> None:
    seen: list[str] = []
    pages = 0
    params: dict[str, Any] = {"operator": "operator:searchco", "limit": limit}
    while True:
        page = _search(app_client, **params)
        pages += 1
        ids = [item["record"]["id"] for item in page["items"]]
        assert len(ids) == min(limit, 4 - len(seen))
        seen += ids
        if page["next"] is None:
            break
        assert page["next"] == ids[-1]
        params["after"] = page["next"]
    assert seen == sorted(population.values())
    assert pages == max(1, -(-4 // limit))


# --- public and private views -----------------------------------------------------------


@pytest.fixture(scope="module")
def detailed(parties: Parties) -> str:
    """An agent with everything the public must not see."""
    record = agent_record(
        fresh_slug("detailed"),
        operating_jurisdictions=(HOST,),
        contact=CONTACT,
        aliases=Aliases(mcp_name="acme-trader", spiffe_id="spiffe://acme.example/trader"),
        interfaces=(Interface(url="https://agents.acme.example/a2a", binding="JSONRPC"),),
        model="model:example-3",
    )
    parties.acme.registry.register_agent(record, [EnvelopeSigner.generate().public_key])
    return record.id


def test_the_public_sees_no_contacts_aliases_interfaces_model_or_keys(
    app_client: TestClient, detailed: str
) -> None:
    answer = app_client.get(f"/api/v1/registry/agents/{detailed}").json()
    assert set(answer["record"]) <= PUBLIC_AGENT_FIELDS
    assert not HIDDEN & set(answer["record"])
    assert answer["keys"] == []
    assert "orders" not in answer
    assert answer["status"] == "active"
    listed = _search(app_client, operator="operator:acme", limit=200)["items"]
    mine = next(item for item in listed if item["record"]["id"] == detailed)
    assert not HIDDEN & set(mine["record"])
    operator = app_client.get("/api/v1/registry/operators/operator:acme").json()["record"]
    assert set(operator) == {"id", "legal_name", "kind", "jurisdiction"}
    assert error_code(app_client.get("/api/v1/registry/operators"), 401) == "missing_token"


# Who sees what of an agent operating in FR (authority.py's read columns, by hand):
# (full logged record and keys, its private contact, its operator's private fields)
READS = {
    "home": (True, True, True),
    "host": (True, True, False),  # FR: the agent operates in its territory
    "other_host": (True, False, False),  # DE: it does not
    "acme": (True, True, True),  # its operator
    "search": (False, False, False),  # another operator
    "auditor": (True, False, False),
    "public": (False, False, False),
}


@pytest.fixture(scope="module")
def other_host(app_client: TestClient) -> Party:
    return enrol_party(app_client, "regulator:de", "regulator", OTHER)


def _reader(parties: Parties, other_host: Party, who: str) -> dict[str, str]:
    if who == "public":
        return {}
    party = other_host if who == "other_host" else getattr(parties, who)
    return bearer(party.token)


@pytest.mark.parametrize("who", list(READS))
def test_each_principal_reads_only_what_it_is_entitled_to(
    app_client: TestClient, parties: Parties, other_host: Party, detailed: str, who: str
) -> None:
    full, private, operator_private = READS[who]
    headers = _reader(parties, other_host, who)
    answer = app_client.get(f"/api/v1/registry/agents/{detailed}", headers=headers).json()
    assert (set(answer["record"]) >= HIDDEN - {"contact"}) is full
    assert ("contact" in answer["record"]) is private
    if private:
        assert answer["record"]["contact"] == CONTACT.model_dump()
    assert (answer["record"].get("model") == "model:example-3") is full
    assert len(answer["keys"]) == (1 if full else 0)
    assert ("orders" in answer) is full
    listed = _search(app_client, headers, operator="operator:acme", limit=200)["items"]
    mine = next(item for item in listed if item["record"]["id"] == detailed)
    assert (set(mine["record"]) >= HIDDEN - {"contact"}) is full
    assert "contact" not in mine["record"]  # private fields are served one record at a time
    operator = app_client.get("/api/v1/registry/operators/operator:acme", headers=headers).json()
    assert ("contact" in operator["record"]) is operator_private
    assert ("address" in operator["record"]) is operator_private


def test_a_token_without_read_private_gets_the_public_view(
    app_client: TestClient, parties: Parties, detailed: str
) -> None:
    narrow = new_token(app_client, parties.acme.id, scopes=["registry:write"])["token"]
    answer = app_client.get(f"/api/v1/registry/agents/{detailed}", headers=bearer(narrow)).json()
    assert not HIDDEN & set(answer["record"])
    assert answer["keys"] == []


# --- as_of, with proof ---------------------------------------------------------------------


def _verified(client: TestClient, answer: dict[str, Any]) -> None:
    """The answer's proof shows the entry that set the record under a signed checkpoint."""
    node = node_of(client)
    proof = answer["proof"]
    index = answer["entry_index"]
    entry = client.get(f"/api/v1/entries/{index}").json()["entry"]
    leaf = leaf_hash(canonical_dumps(entry))
    assert (proof["index"], proof["leaf_hash"]) == (index, base64.b64encode(leaf).decode())
    checkpoint, _, _ = open_checkpoint(
        proof["checkpoint"].encode(), [parse_vkey(node.log_signer.vkey())]
    )
    assert checkpoint.size == proof["tree_size"]
    hashes = [base64.b64decode(h) for h in proof["proof"]]
    verify_inclusion(leaf, index, checkpoint.size, hashes, checkpoint.root_hash)


def test_an_agent_as_of_an_index_is_the_record_and_status_then_with_proof(
    app_client: TestClient, parties: Parties
) -> None:
    node = node_of(app_client)
    record = agent_record(fresh_slug("history"))
    registered = parties.acme.registry.register_agent(
        record, [EnvelopeSigner.generate().public_key]
    )
    updated = parties.acme.registry.update_agent(record.id, AgentChanges(version="2.0"))
    suspension = parties.home.registry.order("suspend", record.id, "review")
    lifted = parties.home.registry.order("reinstate", record.id, "ok", lifts=suspension["order_id"])
    assert node.log.wait_for_checkpoint(node.store.sequenced_size(), timeout=20)

    def at(index: int) -> dict[str, Any]:
        response = app_client.get(
            f"/api/v1/registry/agents/{record.id}",
            params={"as_of": index},
            headers=bearer(parties.home.token),
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        assert answer["as_of"] == index
        _verified(app_client, answer)
        return answer

    history = [
        (registered, "1.0", "active", registered),
        (updated - 1, "1.0", "active", registered),
        (updated, "2.0", "active", updated),
        (suspension["index"], "2.0", "suspended", updated),
        (lifted["index"] - 1, "2.0", "suspended", updated),
        (lifted["index"], "2.0", "active", updated),
    ]
    for index, version, status, set_by in history:
        answer = at(index)
        assert (answer["record"]["version"], answer["status"], answer["entry_index"]) == (
            version,
            status,
            set_by,
        ), index
    assert [o["order_id"] for o in at(suspension["index"])["orders"]] == [suspension["order_id"]]
    assert at(lifted["index"])["orders"] == []
    before = app_client.get(
        f"/api/v1/registry/agents/{record.id}", params={"as_of": registered - 1}
    )
    assert error_code(before, 404) == "unknown_agent"
    public = app_client.get(
        f"/api/v1/registry/agents/{record.id}", params={"as_of": suspension["index"]}
    ).json()
    assert public["status"] == "suspended"
    _verified(app_client, public)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/registry/agents/urn:custodes:zz:agent:nobody",
        "/api/v1/registry/operators/operator:acme",
        "/api/v1/registry/models/model:nothing",
    ],
)
@pytest.mark.parametrize("as_of", [2**63, 2**64 - 1, 10**30, -1])
def test_an_as_of_beyond_any_log_index_is_a_4xx_in_the_error_shape(
    app_client: TestClient, parties: Parties, path: str, as_of: int
) -> None:
    response = app_client.get(path, params={"as_of": as_of}, headers=bearer(parties.home.token))
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) == {"error"}
    assert response.json()["error"]["message"]


def test_the_largest_as_of_is_beyond_the_log(app_client: TestClient, parties: Parties) -> None:
    """An index the log has not reached has no state to answer (it used to answer the
    current one); the refusal says how far the log goes."""
    response = app_client.get(
        "/api/v1/registry/operators/operator:acme", params={"as_of": 2**63 - 1}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "as_of_beyond_log"
    assert error["message"].startswith(f"as-of {2**63 - 1} is beyond the log's size ")


def test_queries_refuse_an_as_of_past_the_databases_integers(
    app_client: TestClient, parties: Parties
) -> None:
    node = node_of(app_client)
    with pytest.raises(CustodesError) as caught:
        node.queries.agent("urn:custodes:zz:agent:nobody", as_of=2**63, reader=NODE)
    assert (caught.value.status, caught.value.code) == (422, "bad_as_of")
