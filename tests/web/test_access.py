"""Who sees what on the dashboard: the public, operators and a regulator each see what the
API shows them and nothing more; a forged or expired session gets the 401 page.

Each viewer signs in through the real /ui/signin form with its own API token; the
pages are compared with the API's answers to the same principal's token.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import pytest
from sqlalchemy import func, select, update

from custodes.ledger.store import entries
from custodes.registry.store import ui_sessions
from custodes.store.db import read_tx, write_tx
from custodes.web.auth import COOKIE
from tests.integration.procs import wait_until
from tests.redteam.world import (
    AUDITOR,
    MODEL_AGENT,
    OPERATOR,
    OTHER_OPERATOR,
    REGULATOR,
    RESEARCHER,
    SKILL_AGENT,
)
from tests.web.conftest import ORDER_ID, RATIONALE, Site, signed_in

__all__: list[str] = []

VIEWERS = [None, REGULATOR, OPERATOR, OTHER_OPERATOR, RESEARCHER, AUDITOR]
PRIVATE = "model:llama-x"  # MODEL_AGENT's model: not among the public fields


def _agent(agent_id: str) -> str:
    return f"/ui/agents/{quote(agent_id, safe='')}"


def _api(site: Site, who: str | None, path: str) -> dict:  # type: ignore[type-arg]
    answer = site.world.get(who, path)
    assert answer.status_code == 200, answer.text
    found: dict = answer.json()  # type: ignore[type-arg]
    return found


@pytest.mark.parametrize("who", VIEWERS)
def test_private_fields_show_exactly_where_the_api_shows_them(site: Site, who: str | None) -> None:
    api = _api(site, who, f"/api/v1/registry/agents/{MODEL_AGENT}")
    html = signed_in(site, who).get(_agent(MODEL_AGENT)).text
    assert ("model" in api["record"]) == (PRIVATE in html)
    assert (PRIVATE in html) == (who in {REGULATOR, OPERATOR, AUDITOR})


@pytest.mark.parametrize("who", VIEWERS)
def test_clear_rationale_only_for_the_entitled_and_the_read_is_logged(
    site: Site, who: str | None
) -> None:
    path = f"/api/v1/registry/agents/{MODEL_AGENT}/decisions"
    (committed,) = [i for i in _api(site, who, path)["items"] if i["decision"]["v"] == 2]
    entitled = "clear" in committed
    before = _size(site)
    html = signed_in(site, who).get(_agent(MODEL_AGENT)).text
    assert (RATIONALE in html) == entitled
    assert entitled == (who in {REGULATOR, OPERATOR})
    if entitled:  # the clear read is logged, as on the API
        wait_until("the access entry", lambda: _size(site) > before, timeout=30)
    else:
        assert "committed; the clear record is for" in html


def _size(site: Site) -> int:
    with read_tx(site.world.node.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(entries)).scalar() or 0)


def _listed(html: str) -> set[str]:
    return set(re.findall(r'href="/ui/redteam/(vulnerability--[0-9a-f-]+)"', html))


@pytest.mark.parametrize("who", VIEWERS)
def test_disclosures_are_listed_and_shown_as_the_api_shows_them(
    site: Site, who: str | None
) -> None:
    api = {d["id"] for d in _api(site, who, "/api/v1/redteam/disclosures")["disclosures"]}
    browser = signed_in(site, who)
    assert _listed(browser.get("/ui/redteam").text) == api
    titles = {site.amber: "System-prompt override", site.reported: "Clear report, not yet"}
    for disclosure, title in titles.items():
        shown = browser.get(f"/ui/redteam/{disclosure}")
        assert shown.status_code == (200 if disclosure in api else 404)
        assert (title in shown.text) == (disclosure in api)
    if who is None:
        assert api == set()  # amber and an undisclosed report: nothing for the public


@pytest.mark.parametrize("who", VIEWERS)
def test_exposures_on_the_agents_page_follow_the_api(site: Site, who: str | None) -> None:
    api = _api(site, who, f"/api/v1/redteam/agents/{MODEL_AGENT}/exposures")["exposures"]
    html = signed_in(site, who).get(_agent(MODEL_AGENT)).text
    assert _listed(html) == {e["disclosure"] for e in api}


@pytest.mark.parametrize("who", VIEWERS)
def test_order_links_only_for_regulators_and_operators(site: Site, who: str | None) -> None:
    html = signed_in(site, who).get(_agent(SKILL_AGENT)).text
    offered = who is not None and who.split(":")[0] in {"regulator", "operator"}
    assert ("/orders/new?op=suspend" in html) == offered
    assert ("/orders/new?op=revoke" in html) == offered
    assert (f'href="/ui/orders/{ORDER_ID}/lift"' in html) == offered
    assert ORDER_ID in html  # the order itself is public, as on the API


def test_a_forged_session_gets_the_401_page_and_loses_its_cookie(site: Site) -> None:
    browser = signed_in(site, None)
    browser.cookies.set(COOKIE, "cus_forged-session-secret", path="/ui")
    answer = browser.get(_agent(MODEL_AGENT))
    assert answer.status_code == 401
    assert "text/html" in answer.headers["content-type"]
    assert MODEL_AGENT not in answer.text
    assert "Sign in again" in answer.text
    assert f"{COOKIE}=" in answer.headers["set-cookie"]
    assert "Max-Age=0" in answer.headers["set-cookie"] or "1970" in answer.headers["set-cookie"]
    assert signed_in(site, None).get(_agent(MODEL_AGENT)).status_code == 200


def _expire_sessions(site: Site, principal: str) -> None:
    """Move the principal's sessions past their expiry (the clock, not the code, moves)."""
    with write_tx(site.world.node.engine) as conn:
        conn.execute(
            update(ui_sessions)
            .where(ui_sessions.c.principal_id == principal)
            .values(expires_at=time.time() - 1)
        )


def test_an_expired_session_gets_the_401_page(site: Site) -> None:
    issued = site.world.node.tokens.issue(RESEARCHER, None, 3600)
    site.world.tokens["expiring"] = str(issued["token"])
    browser = signed_in(site, "expiring")
    assert browser.get(f"/ui/redteam/{site.reported}").status_code == 200
    _expire_sessions(site, RESEARCHER)
    answer = browser.get(f"/ui/redteam/{site.reported}")
    assert answer.status_code == 401
    assert "session_expired" in answer.text
    assert site.reported not in answer.text
    assert f"{COOKIE}=" in answer.headers["set-cookie"]


def test_a_session_on_a_revoked_token_gets_the_401_page(site: Site) -> None:
    issued = site.world.node.tokens.issue(REGULATOR, None, 3600)
    site.world.tokens["revoked"] = str(issued["token"])
    browser = signed_in(site, "revoked")
    assert RATIONALE in browser.get(_agent(MODEL_AGENT)).text
    site.world.node.tokens.revoke(str(issued["token_id"]))
    answer = browser.get(_agent(MODEL_AGENT))
    assert answer.status_code == 401
    assert RATIONALE not in answer.text
    assert PRIVATE not in answer.text
