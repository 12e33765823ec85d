"""The dashboard's read pages on a real node: what each shows, its paging, its refusals.

Every page is server-rendered HTML with no script; bad query parameters are a 422 page
and an unknown agent or disclosure a 404 page, never a stack trace or JSON.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest

from custodes.web.charts import series_chart
from custodes.web.timeline import decisions_timeline
from tests.redteam.world import MODEL_AGENT, OTHER_AGENT, REGULATOR, SKILL_AGENT
from tests.registry.test_leases import request_body
from tests.web.conftest import MODEL_KEY, ORDER_ID, Site, signed_in

__all__: list[str] = []


def _page(answer: httpx.Response, status: int = 200) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert "<script" not in html  # readable without JavaScript: these pages have none
    assert " style=" not in html  # the CSP allows no inline styles
    assert "Traceback" not in html
    return html


def _agent_url(agent_id: str, **query: str) -> str:
    tail = "&".join(f"{k}={quote(v)}" for k, v in query.items())
    return f"/ui/agents/{quote(agent_id, safe='')}" + (f"?{tail}" if tail else "")


def test_the_overview_shows_this_nodes_log_and_agents_by_status(site: Site) -> None:
    html = _page(signed_in(site, None).get("/ui/"))
    assert "Alliance overview" in html
    assert "no roster" in html.lower()  # a node standing alone: nothing can be final
    size = site.world.node.store.tree_size()[0]
    assert f"{size:,}" in html
    counts = re.findall(r'href="/ui/agents\?status=(\w+)">([\d,]+)<', html)
    assert dict(counts) == {"active": "2", "suspended": "1", "revoked": "0"}
    assert "No split view has been proved." in html


def test_the_registry_lists_and_filters_agents(site: Site) -> None:
    browser = signed_in(site, None)
    html = _page(browser.get("/ui/agents"))
    for agent in (MODEL_AGENT, SKILL_AGENT, OTHER_AGENT):
        assert agent in html
    suspended = _page(browser.get("/ui/agents", params={"status": "suspended"}))
    assert SKILL_AGENT in suspended
    assert MODEL_AGENT not in suspended
    by_skill = _page(browser.get("/ui/agents", params={"skill": "web-browse"}))
    assert SKILL_AGENT in by_skill
    assert OTHER_AGENT not in by_skill
    by_id = _page(browser.get("/ui/agents", params={"q": "urn:custodes:gb:agent:s"}))
    assert SKILL_AGENT in by_id
    assert MODEL_AGENT not in by_id
    assert OTHER_AGENT not in by_id
    exact = _page(browser.get("/ui/agents", params={"q": MODEL_AGENT}))
    assert MODEL_AGENT in exact
    assert SKILL_AGENT not in exact
    short = _page(browser.get("/ui/agents", params={"q": "mod"}))  # the short name's start
    assert MODEL_AGENT in short
    assert SKILL_AGENT not in short
    assert "No agent matches" in _page(browser.get("/ui/agents", params={"q": "gb:agent:m"}))
    blank = dict.fromkeys(("q", "jurisdiction", "sector", "status", "operator", "skill"), "")
    assert OTHER_AGENT in _page(browser.get("/ui/agents", params=blank))  # the form, empty
    blank_redteam = {"stage": "", "severity": "", "agent_id": ""}
    _page(signed_in(site, REGULATOR).get("/ui/redteam", params=blank_redteam))
    nobody = _page(browser.get("/ui/agents", params={"operator": "operator:nobody"}))
    assert "No agent matches" in nobody


@pytest.mark.parametrize("prefix", [None, "urn:custodes:gb:agent:", "s"])
def test_the_registry_pages_forward_and_back(site: Site, prefix: str | None) -> None:
    browser = signed_in(site, None)
    seen = []
    query = {"limit": "1"} if prefix is None else {"limit": "1", "q": prefix}
    html = _page(browser.get("/ui/agents", params=query))
    while True:
        seen += re.findall(r"<code>(urn:custodes:gb:agent:[\w-]+)</code></a>", html)
        found = re.search(r'href="([^"]+)" rel="next"', html)
        if found is None:
            break
        html = _page(browser.get(found.group(1).replace("&amp;", "&")))
    if prefix == "s":
        assert seen == [SKILL_AGENT]
        return
    assert seen == sorted([MODEL_AGENT, SKILL_AGENT, OTHER_AGENT])
    back = re.search(r'href="([^"]+)" rel="prev"', html)
    assert back is not None
    html = _page(browser.get(back.group(1).replace("&amp;", "&")))
    assert re.findall(r"<code>(urn:custodes:gb:agent:[\w-]+)</code></a>", html) == [seen[1]]


@pytest.mark.parametrize(
    "url",
    [
        "/ui/agents?status=dormant",
        "/ui/agents?limit=0",
        "/ui/agents?limit=many",
        "/ui/agents?jurisdiction=gb",
        "/ui/agents?q=%3Cb%3E",
        "/ui/agents?after=%3Cscript%3E",
        "/ui/redteam?stage=published",
        "/ui/redteam?offset=-1",
        "/ui/agents/" + quote(MODEL_AGENT, safe="") + "?cursor=%00",
    ],
)
def test_bad_query_parameters_are_a_422_page(site: Site, url: str) -> None:
    html = _page(signed_in(site, None).get(url), 422)
    assert "invalid_request" in html


def test_a_cursor_past_the_newest_checkpoint_is_a_400_page(site: Site) -> None:
    url = _agent_url(MODEL_AGENT, cursor="999999999.0.0")
    html = _page(signed_in(site, None).get(url), 400)
    assert "bad_cursor" in html


def test_the_decisions_timeline_pages_in_time_order(site: Site) -> None:
    node = site.world.node
    seen, cursor = [], None
    while True:
        page = decisions_timeline(node, MODEL_AGENT, cursor, 1, None)
        seen += [(row["decided_at"], row["action"]) for row in page["rows"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert [action for _, action in seen] == ["hold #1", None, "hold #0"]  # None: committed
    assert [at for at, _ in seen] == sorted(at for at, _ in seen)
    html = _page(signed_in(site, None).get(_agent_url(MODEL_AGENT)))
    assert "hold #0" in html
    assert "hold #1" in html
    assert f'href="/api/v1/decisions/{site.decision_index}"' in html


def test_the_decisions_timeline_pages_back_as_it_paged_forward(site: Site) -> None:
    node = site.world.node
    cursors: list[str | None] = [None]
    pages = []
    while True:
        page = decisions_timeline(node, MODEL_AGENT, cursors[-1], 1, None)
        pages.append(page)
        if page["next"] is None:
            break
        cursors.append(page["next"])
    assert len(pages) == 3
    assert pages[0]["previous"] is None  # the first page has nothing before it
    assert pages[1]["previous"] == ""  # back to the first page, which has no cursor
    assert pages[2]["previous"] == cursors[1]
    back = decisions_timeline(node, MODEL_AGENT, pages[2]["previous"], 1, None)
    assert back["rows"] == pages[1]["rows"]
    two = decisions_timeline(node, MODEL_AGENT, cursors[1], 2, None)
    assert two["previous"] == ""  # one row before it, fewer than a page
    html = _page(signed_in(site, None).get(_agent_url(MODEL_AGENT, cursor=str(cursors[2]))))
    first = _agent_url(MODEL_AGENT)  # the page holds 20: the rows before fill less than one
    assert f'<a href="{first}#decisions" rel="prev">' in html
    html = _page(signed_in(site, None).get(first))
    assert 'rel="prev"' not in html


def test_the_agents_page_shows_its_lease_state(site: Site) -> None:
    browser = signed_in(site, None)
    never = _page(browser.get(_agent_url(SKILL_AGENT)))
    assert "This node has recorded no lease granted to this agent." in never
    asked = browser.post(
        "/api/v1/leases",
        content=request_body(MODEL_KEY, MODEL_AGENT),
        headers={"Content-Type": "application/json"},
    )
    assert asked.status_code == 201, asked.text
    state = browser.get(f"/api/v1/agents/{MODEL_AGENT}/lease").json()
    lease = state["last_lease"]
    html = _page(browser.get(_agent_url(MODEL_AGENT)))
    shown = html.split('id="lease-state">', 1)[1].split("</p>", 1)[0]
    assert f"<code>{lease['lease_id']}</code>" in shown
    assert "It runs for another" in shown
    assert ", ".join(lease["jurisdictions"]) in shown


@pytest.mark.parametrize(
    "agent_id", ["urn:custodes:gb:agent:nobody", "not-an-agent", "urn:custodes:fr:agent:x"]
)
def test_an_unknown_agent_is_a_404_page(site: Site, agent_id: str) -> None:
    html = _page(signed_in(site, REGULATOR).get(_agent_url(agent_id)), 404)
    assert "unknown_agent" in html


def test_the_agents_page_shows_orders_results_and_exposures(site: Site) -> None:
    browser = signed_in(site, None)
    html = _page(browser.get(_agent_url(SKILL_AGENT)))
    assert ORDER_ID in html
    assert "suspended" in html
    assert "refuses this agent&#39;s lease requests" in html or "refuses this agent's" in html
    model = _page(browser.get(_agent_url(MODEL_AGENT)))
    assert "grants this agent operating leases" in model
    assert '<svg class="chart" role="img"' in model  # the ASR chart, with its table
    assert '<title id="asr-t">Attack success rate' in model
    assert "0.150" in model  # 3 successes of 20 in the re-test, in the table
    assert "committed; the clear record is for" in model
    assert '<title id="dc-t">Drift coefficient' in model  # the second run's drift
    assert "0.420" in model
    assert "drift alert" in model
    drift = model.split('id="drift"', 1)[1].split("</table>", 1)[0]
    assert "eval_drift" in drift  # the alert the drifted result raised, from the log


def test_the_redteam_pages_list_and_show_a_disclosure(site: Site) -> None:
    browser = signed_in(site, REGULATOR)
    listing = _page(browser.get("/ui/redteam"))
    assert site.amber in listing
    assert site.reported in listing
    row = listing.split(site.amber, 1)[1].split("</tr>", 1)[0]
    assert f"<code>{MODEL_AGENT}</code></a> (exposed)" in row  # its patch state, listed
    detail = _page(browser.get(f"/ui/redteam/{site.amber}"))
    assert "TLP:AMBER" in detail
    assert MODEL_AGENT in detail
    assert "exposed" in detail
    triaged = _page(browser.get("/ui/redteam", params={"stage": "reported"}))
    assert site.reported in triaged
    assert site.amber not in triaged
    html = _page(browser.get("/ui/redteam/vulnerability--nope"), 404)
    assert "unknown_disclosure" in html


def test_a_chart_lays_out_its_points_and_says_what_it_shows() -> None:
    chart = series_chart("ASR", [("a", 0.0), ("b", 1.0), ("c", 0.5)])
    assert chart is not None
    assert [p.value for p in chart.points] == [0.0, 1.0, 0.5]
    ys = [p.y for p in chart.points]
    assert ys[1] < ys[2] < ys[0]  # higher values higher up
    assert chart.points[0].x < chart.points[1].x < chart.points[2].x
    assert "3 run(s)" in chart.description
    assert "latest 0.500" in chart.description
    assert series_chart("empty", []) is None
