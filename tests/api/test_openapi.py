"""The OpenAPI document is a contract a person can work from: valid, every operation
described, security that tells the truth, the real error body for every 4xx, and record
schemas that accept what the node accepts (and what the SDK really sends)."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from typing import Any

import jsonschema
import orjson
import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from pydantic import TypeAdapter
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from custodes.api import create_app
from custodes.api.openapi_records import EXAMPLE_MODELS, EXAMPLES, PAYLOAD_TYPES
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.decisions import sign_decision
from custodes.sdk.leases import lease_request
from tests.databases import node_settings
from tests.enrol import enrol

METHODS = ("get", "put", "post", "delete", "patch")
ERROR_REF = "#/components/schemas/ErrorBody"
_DOC = "urn:custodes:openapi"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    base = tmp_path_factory.mktemp("openapi")
    with TestClient(create_app(node_settings(base, f"sqlite:///{base / 'c.db'}"))) as running:
        yield running


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    served: dict[str, Any] = answer.json()
    return served


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def _validator(document: dict[str, Any], *pointer: str) -> jsonschema.Validator:
    """A JSON Schema 2020-12 validator for the schema at ``pointer`` in the document (its
    $refs resolve within the document)."""
    registry = Registry().with_resource(_DOC, DRAFT202012.create_resource(document))
    where = "/".join(part.replace("~", "~0").replace("/", "~1") for part in pointer)
    return jsonschema.Draft202012Validator({"$ref": f"{_DOC}#/{where}"}, registry=registry)


def _component(document: dict[str, Any], name: str) -> jsonschema.Validator:
    return _validator(document, "components", "schemas", name)


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)  # raises on any violation of OpenAPI 3.1, dangling $refs included


def test_every_operation_says_what_it_does(document: dict[str, Any]) -> None:
    undescribed = [
        f"{method.upper()} {path}"
        for method, path, op in _operations(document)
        if len(op.get("description", "")) < 20 or not op.get("summary")
    ]
    assert undescribed == [], "give these routes a summary and a docstring"


def test_every_error_answer_is_the_one_error_body(document: dict[str, Any]) -> None:
    wrong = []
    for method, path, op in _operations(document):
        for status, answer in op["responses"].items():
            content = answer.get("content", {})
            if status.startswith(("4", "5")) and "text/x.tlog.size" not in content:
                schema = content.get("application/json", {}).get("schema", {})
                if schema.get("$ref") != ERROR_REF or len(content) != 1:
                    wrong.append(f"{method.upper()} {path} {status}")
    assert wrong == []
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_both_tokens_are_schemes_the_docs_page_can_authorise_with(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]
    assert {name: (s["type"], s["scheme"]) for name, s in schemes.items()} == {
        "bearer": ("http", "bearer"),
        "adminToken": ("http", "bearer"),
    }
    admin_ops = {p for _, p, op in _operations(document) if {"adminToken": []} in op["security"]}
    assert admin_ops == {p for p in document["paths"] if p.startswith("/api/v1/admin/")}


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "0", path)


def _protected(op: dict[str, Any]) -> bool:
    return bool(op["security"]) and {} not in op["security"]


@pytest.mark.parametrize("protected", [True, False], ids=["protected", "public"])
def test_security_says_which_operations_answer_without_credentials(
    client: TestClient, document: dict[str, Any], protected: bool
) -> None:
    """Without credentials, every operation declaring a token is refused with 401, and no
    operation declared public (or token-optional) is."""
    answers = {}
    for method, path, op in _operations(document):
        if _protected(op) != protected or path.endswith("/stream"):
            continue  # the order stream never ends; it is public and tested elsewhere
        response = client.request(method, _fill(path), content=b"{}")
        answers[f"{method.upper()} {path}"] = response.status_code
    assert answers, "no operation checked"
    if protected:
        assert set(answers.values()) == {401}, answers
    else:
        assert 401 not in answers.values(), answers


def test_every_signed_payload_type_has_its_record_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    declared = schemas["DsseEnvelope"]["x-custodes-payload-types"]
    assert set(declared) == set(PAYLOAD_TYPES)
    for ref in declared.values():
        assert ref["$ref"].rsplit("/", 1)[1] in schemas


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_record_is_valid_for_its_schema_and_the_node(
    document: dict[str, Any], name: str
) -> None:
    (example,) = document["components"]["schemas"][name]["examples"]
    assert [example] == EXAMPLES[name]
    _component(document, name).validate(example)
    TypeAdapter(EXAMPLE_MODELS[name]).validate_python(example)  # what the node accepts


def test_a_record_the_node_refuses_is_refused_by_the_schema_too(document: dict[str, Any]) -> None:
    order = {**EXAMPLES["KillOrder"][0], "op": "pause"}
    with pytest.raises(jsonschema.ValidationError, match="pause"):
        _component(document, "KillOrder").validate(order)


def _body_schema(document: dict[str, Any], method: str, path: str) -> jsonschema.Validator:
    return _validator(
        document, "paths", path, method, "requestBody", "content", "application/json", "schema"
    )


def _payload(envelope: dict[str, Any]) -> Any:
    return orjson.loads(base64.b64decode(envelope["payload"]))


def test_what_the_sdk_sends_matches_the_documented_bodies(document: dict[str, Any]) -> None:
    agent = EnvelopeSigner.from_seed(b"a" * 32)
    agent_id = "urn:custodes:gb:agent:atlas-trader"
    decision = sign_decision(agent, agent_id, "buy", "hedge", [], jurisdiction="GB").to_json()
    lease = lease_request(agent, agent_id, time.time()).to_json()
    _body_schema(document, "post", "/api/v1/entries").validate(decision)
    _body_schema(document, "post", "/api/v1/entries").validate({"entries": [decision]})
    _body_schema(document, "post", "/api/v1/leases").validate(lease)
    _component(document, "DecisionRecord").validate(_payload(decision))
    _component(document, "LeaseRequest").validate(_payload(lease))
    with pytest.raises(jsonschema.ValidationError):  # a decision is not a lease request
        _body_schema(document, "post", "/api/v1/leases").validate(decision)


def test_a_real_lease_matches_the_documented_answer(
    client: TestClient, document: dict[str, Any]
) -> None:
    agent = EnvelopeSigner.from_seed(b"l" * 32)
    agent_id = enrol(client.app.state.node, agent, "lease-reader")  # type: ignore[attr-defined]
    response = client.post(
        "/api/v1/leases", json=lease_request(agent, agent_id, time.time()).to_json()
    )
    assert response.status_code == 201
    answer = ("paths", "/api/v1/leases", "post", "responses", "201", "content")
    _validator(document, *answer, "application/json", "schema").validate(response.json())
    _component(document, "LeasePayload").validate(_payload(response.json()))
    with pytest.raises(jsonschema.ValidationError):  # the answer is not the request
        _body_schema(document, "post", "/api/v1/leases").validate(response.json())
