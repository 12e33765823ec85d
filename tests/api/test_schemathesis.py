"""Schemathesis over the node's OpenAPI document: no request makes a 5xx, and every answer
is one the document declares (status, media type, body schema).

In-process (ASGI) against a node on SQLite with an agent enrolled, so reads find real
entries. Bounded and derandomized: the same few cases per operation on every run, well
under a minute. The kill-order stream is left out: an answer that never ends is not a
case here (its refusals are tested in tests/registry).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import get_client, shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from custodes.api import create_app
from custodes.ledger.dsse import EnvelopeSigner
from tests.api.support import ADMIN
from tests.databases import node_settings
from tests.enrol import enrol

MAX_EXAMPLES = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# The app is built at import (schemathesis parametrizes from its document); its node
# opens only when the module's first case runs, in a directory removed afterwards.
_DATA = Path(tempfile.mkdtemp(prefix="custodes-schemathesis-"))
APP = create_app(node_settings(_DATA, f"sqlite:///{_DATA / 'custodes.db'}"))
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)
schema = schema.exclude(path="/api/v1/kill-orders/stream")


@pytest.fixture(scope="module", autouse=True)
def running_node() -> Iterator[None]:
    """Start the app (its lifespan opens the node) and enrol an agent, so reads find data."""
    with get_client(APP):
        enrol(APP.state.node, EnvelopeSigner.from_seed(bytes(range(32))))
    try:
        yield
    finally:
        shutdown_lifespans()
        shutil.rmtree(_DATA, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_declared_and_none_is_a_server_error(case: schemathesis.Case) -> None:
    # Admin operations get the admin token, so their bodies are checked, not just refused.
    headers = ADMIN if case.path.startswith("/api/v1/admin/") else None
    case.call_and_validate(headers=headers, checks=CHECKS)


class NodeWorkflow(schema.as_state_machine()):  # type: ignore[misc]
    """Chains along the document's links: a new principal's entry is read and a token
    issued to it and revoked; an appended entry is read back."""

    def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
        return {"headers": ADMIN} if case.path.startswith("/api/v1/admin/") else {}

    def validate_response(
        self, response: object, case: schemathesis.Case, **kwargs: object
    ) -> None:
        case.validate_response(response, checks=CHECKS)  # type: ignore[arg-type]


TestNodeWorkflow = NodeWorkflow.TestCase
TestNodeWorkflow.settings = settings(
    max_examples=MAX_EXAMPLES,
    stateful_step_count=4,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
