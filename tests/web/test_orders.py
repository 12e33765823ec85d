"""Kill orders from the dashboard: signed by the principal's own key, confirmed, refused
cleanly.

One in-process node per module (SQLite); each test enrols its own agent and signs in
through the real sign-in form. The browser's WebCrypto signature is produced here with
the Python key (the same Ed25519 over the same PAE bytes); tests/browser runs the real
script. Every refusal is an error page and leaves the log as it was.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.cli.kill import prepared_order
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.node import Node
from custodes.registry.service import ORDER_TYPE
from custodes.web.orders import order_payload
from tests.databases import node_settings
from tests.enrol import OPERATOR_KEY, REGULATOR_KEY, enrol, principal

OTHER_KEY = EnvelopeSigner.from_seed(b"x" * 32)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    base: Path = tmp_path_factory.mktemp("orders")
    settings = node_settings(base, f"sqlite:///{base / 'node.db'}")
    with TestClient(create_app(settings)) as client:
        node = _node(client)
        enrol(node, EnvelopeSigner.generate(), "first")
        principal(node, "operator:other", "operator", OTHER_KEY)
        principal(node, "auditor:zz", "auditor", EnvelopeSigner.from_seed(b"a" * 32))
        yield client


def _node(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def _size(client: TestClient) -> int:
    return _node(client).store.sequenced_size()


def _field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, f"no {name} field"
    return html.unescape(found.group(1))


def _signed_in(web: TestClient, who: str) -> TestClient:
    """A browser of its own (cookies), signed in as ``who`` through the form."""
    token = str(_node(web).tokens.issue(who, None, 3600)["token"])
    browser = TestClient(web.app)
    signin = browser.get("/ui/signin")
    answer = browser.post(
        "/ui/signin",
        data={"csrf": _field(signin.text, "csrf"), "next": "/ui/", "token": token},
    )
    assert answer.status_code == 200
    assert who in answer.text
    return browser


def _agent(web: TestClient, slug: str) -> str:
    return enrol(_node(web), EnvelopeSigner.generate(), slug)


def _new(browser: TestClient, agent: str, op: str = "suspend") -> str:
    page = browser.get(f"/ui/agents/{agent}/orders/new", params={"op": op})
    assert page.status_code == 200, page.text
    return _field(page.text, "csrf")


def _prepare(browser: TestClient, agent: str, **extra: str) -> str:
    csrf = _new(browser, agent, extra.get("op", "suspend"))
    fields = {"csrf": csrf, "op": "suspend", "lifts": "", "reason": "test halt", **extra}
    page = browser.post(f"/ui/agents/{agent}/orders/prepare", data=fields)
    assert page.status_code == 200, page.text
    return page.text


def _browser_sign(sign_page: str, key: EnvelopeSigner) -> dict[str, str]:
    """What sign.js posts: the payload, a signature over the shown PAE, the key id."""
    pae = base64.b64decode(re.search(r'data-pae="([^"]+)"', sign_page).group(1))  # type: ignore[union-attr]
    return {
        "csrf": _field(sign_page, "csrf"),
        "payload_b64": _field(sign_page, "payload_b64"),
        "signature": base64.b64encode(key.sign(pae).sig).decode(),
        "keyid": key.keyid,
        "confirm": _field(sign_page, "confirm"),
    }


def test_a_regulator_suspends_and_lifts_with_the_browser_signature(web: TestClient) -> None:
    agent = _agent(web, "browser-signed")
    regulator = _signed_in(web, "regulator:zz")
    sign_page = _prepare(regulator, agent)
    payload = base64.b64decode(_field(sign_page, "payload_b64"))
    assert '"actor":"regulator:zz"' in payload.decode()
    assert f'data-keyid="{REGULATOR_KEY.keyid}"' in sign_page
    before = _size(web)
    done = regulator.post("/ui/orders/submit", data=_browser_sign(sign_page, REGULATOR_KEY))
    assert done.status_code == 200, done.text
    assert f"logged at index <strong>{before}</strong>" in done.text
    assert _node(web).registry.status(agent) == "suspended"
    order_id = re.search(r"/ui/orders/([0-9a-f]+)/lift", done.text).group(1)  # type: ignore[union-attr]

    lift = regulator.get(f"/ui/orders/{order_id}/lift")
    assert lift.status_code == 200
    fields = {"csrf": _field(lift.text, "csrf"), "op": "reinstate", "lifts": order_id}
    sign_page = regulator.post(
        f"/ui/agents/{agent}/orders/prepare", data=fields | {"reason": "cleared"}
    ).text
    done = regulator.post("/ui/orders/submit", data=_browser_sign(sign_page, REGULATOR_KEY))
    assert done.status_code == 200, done.text
    assert _node(web).registry.status(agent) == "active"


def test_the_cli_envelope_is_reviewed_then_issued(web: TestClient) -> None:
    agent = _agent(web, "cli-signed")
    operator = _signed_in(web, "operator:acme")
    csrf = _new(operator, agent)
    order = prepared_order("suspend", agent, "paged at night", None, None, "operator:acme")
    envelope = sign_envelope(ORDER_TYPE, order_payload(order), [OPERATOR_KEY])
    pasted = canonical_dumps(envelope.to_json()).decode()
    review = operator.post("/ui/orders/review", data={"csrf": csrf, "envelope": pasted})
    assert review.status_code == 200, review.text
    assert agent in review.text
    assert "paged at night" in review.text
    before = _size(web)
    confirm = _field(review.text, "confirm")
    assert confirm == f"suspend {agent}"
    fields = {"csrf": csrf, "envelope": _field(review.text, "envelope"), "confirm": confirm}
    done = operator.post("/ui/orders/submit", data=fields)
    assert done.status_code == 200, done.text
    assert _size(web) == before + 1
    assert _node(web).registry.status(agent) == "suspended"


def test_without_the_csrf_token_nothing_is_written(web: TestClient) -> None:
    agent = _agent(web, "no-csrf")
    regulator = _signed_in(web, "regulator:zz")
    fields = _browser_sign(_prepare(regulator, agent), REGULATOR_KEY)
    before = _size(web)
    refused = regulator.post("/ui/orders/submit", data=fields | {"csrf": ""})
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    assert "Traceback" not in refused.text
    del fields["csrf"]
    assert regulator.post("/ui/orders/submit", data=fields).status_code == 403
    assert _size(web) == before
    assert _node(web).registry.status(agent) == "active"


def test_without_the_confirmation_nothing_is_written(web: TestClient) -> None:
    agent = _agent(web, "unconfirmed")
    regulator = _signed_in(web, "regulator:zz")
    fields = _browser_sign(_prepare(regulator, agent), REGULATOR_KEY)
    before = _size(web)
    for confirm in ("", f"revoke {agent}"):
        refused = regulator.post("/ui/orders/submit", data=fields | {"confirm": confirm})
        assert refused.status_code == 400
        assert "tick the box" in refused.text
    del fields["confirm"]
    assert regulator.post("/ui/orders/submit", data=fields).status_code == 400
    assert _size(web) == before


def test_an_agent_outside_the_principals_authority_is_refused(web: TestClient) -> None:
    agent = _agent(web, "not-yours")
    other = _signed_in(web, "operator:other")
    fields = _browser_sign(_prepare(other, agent), OTHER_KEY)
    before = _size(web)
    refused = other.post("/ui/orders/submit", data=fields)
    assert refused.status_code == 403, refused.text
    assert "Traceback" not in refused.text
    assert _size(web) == before
    assert _node(web).registry.status(agent) == "active"


def test_a_tampered_payload_or_another_key_is_refused(web: TestClient) -> None:
    agent = _agent(web, "tampered")
    regulator = _signed_in(web, "regulator:zz")
    fields = _browser_sign(_prepare(regulator, agent), REGULATOR_KEY)
    payload = base64.b64decode(fields["payload_b64"]).replace(b"test halt", b"test HALT")
    tampered = fields | {"payload_b64": base64.b64encode(payload).decode()}
    before = _size(web)
    refused = regulator.post("/ui/orders/submit", data=tampered)
    assert refused.status_code in (403, 422), refused.text
    assert "does not verify" in refused.text
    stranger = EnvelopeSigner.generate()  # a key the node never registered
    pae = base64.b64decode(re.search(r'data-pae="([^"]+)"', _prepare(regulator, agent)).group(1))  # type: ignore[union-attr]
    foreign = fields | {"signature": base64.b64encode(stranger.sign(pae).sig).decode()}
    refused = regulator.post("/ui/orders/submit", data=foreign | {"keyid": stranger.keyid})
    assert refused.status_code in (403, 422)
    assert _size(web) == before
    assert _node(web).registry.status(agent) == "active"


def test_an_envelope_signed_as_someone_else_is_refused(web: TestClient) -> None:
    agent = _agent(web, "impersonated")
    operator = _signed_in(web, "operator:acme")
    csrf = _new(operator, agent)
    order = prepared_order("suspend", agent, "not me", None, None, "regulator:zz")
    envelope = sign_envelope(ORDER_TYPE, order_payload(order), [REGULATOR_KEY])
    pasted = canonical_dumps(envelope.to_json()).decode()
    before = _size(web)
    refused = operator.post("/ui/orders/review", data={"csrf": csrf, "envelope": pasted})
    assert refused.status_code == 403
    assert "signed as regulator:zz" in refused.text
    garbled = operator.post("/ui/orders/review", data={"csrf": csrf, "envelope": "{not json"})
    assert garbled.status_code == 400
    assert "paste the whole envelope" in garbled.text
    assert _size(web) == before


def test_the_public_is_sent_to_sign_in_and_bad_input_is_a_page(web: TestClient) -> None:
    agent = _agent(web, "public-view")
    public = TestClient(web.app)
    page = public.get(f"/ui/agents/{agent}/orders/new")
    assert page.status_code == 401
    assert 'href="/ui/signin"' in page.text
    assert public.get("/ui/orders/nope/lift").status_code == 401
    regulator = _signed_in(web, "regulator:zz")
    assert regulator.get(f"/ui/agents/{agent}/orders/new?op=explode").status_code == 400
    assert regulator.get("/ui/orders/no-such-order/lift").status_code == 404
    assert regulator.get("/ui/agents/urn:custodes:zz:agent:nobody/orders/new").status_code == 404
    csrf = _new(regulator, agent)
    before = _size(web)
    bad = regulator.post(
        f"/ui/agents/{agent}/orders/prepare",
        data={"csrf": csrf, "op": "suspend", "lifts": "", "reason": "", "territory": "XYZ"},
    )
    assert bad.status_code == 400
    assert "not valid" in bad.text
    unsigned = regulator.post("/ui/orders/submit", data={"csrf": csrf, "payload_b64": "e30="})
    assert unsigned.status_code == 400
    assert "not signed" in unsigned.text
    assert _size(web) == before


def test_the_sign_page_never_names_the_key_file_field(web: TestClient) -> None:
    agent = _agent(web, "no-upload")
    sign_page = _prepare(_signed_in(web, "regulator:zz"), agent)
    file_input = re.search(r'<input type="file"[^>]*>', sign_page)
    assert file_input is not None
    assert "name=" not in file_input.group(0)
    assert '<script src="/ui/static/sign.js"></script>' in sign_page
    script = TestClient(web.app).get("/ui/static/sign.js")
    assert script.status_code == 200
    assert "Ed25519" in script.text


def test_a_signed_order_submitted_twice_is_issued_once(web: TestClient) -> None:
    agent = _agent(web, "replayed")
    regulator = _signed_in(web, "regulator:zz")
    fields = _browser_sign(_prepare(regulator, agent), REGULATOR_KEY)
    assert regulator.post("/ui/orders/submit", data=fields).status_code == 200
    after = _size(web)
    again = regulator.post("/ui/orders/submit", data=fields)
    assert again.status_code == 409
    assert "already exists" in again.text
    assert _size(web) == after


def test_a_principal_who_issues_no_orders_gets_a_refusal_page(web: TestClient) -> None:
    agent = _agent(web, "audited")
    auditor = _signed_in(web, "auditor:zz")
    refused = auditor.get(f"/ui/agents/{agent}/orders/new")
    assert refused.status_code == 403
    assert "only a regulator or an operator" in refused.text
    csrf = _field(auditor.get("/ui/").text, "csrf")
    before = _size(web)
    fields = {"csrf": csrf, "op": "suspend", "lifts": "", "reason": "no"}
    assert auditor.post(f"/ui/agents/{agent}/orders/prepare", data=fields).status_code == 403
    assert _size(web) == before
