"""The dashboard in a real browser (chromium) against a real node process.

1. Signed in through the page, every dashboard page reachable by links from the overview
   and the agent's page loads with no console error, page error or failed request.
2. A kill order end to end: form, prepared payload, the regulator's key file picked and
   signed in the page by sign.js (WebCrypto Ed25519), confirmation, submit; the agent's
   guard halts; then the order is lifted the same way and the guard lets actions through.
   No request the browser sends carries the key; another key is refused in the page.
   With JavaScript off, an order signed by ``custodes kill prepare`` is pasted, reviewed,
   confirmed and issued, and lifted the same way.
3. axe-core finds no serious or critical accessibility violation on the main pages.

With ``CUSTODES_SCREENSHOTS=1`` the main pages are saved to docs/screenshots/.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlsplit

import pytest
from fastapi import FastAPI
from starlette.routing import Match

from custodes.cli.kill import prepared_order
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.keys import entry_key_string
from custodes.registry.service import ORDER_TYPE
from custodes.sdk.bootstrap import enrol_agent
from custodes.web.app import create_web
from custodes.web.orders import order_payload
from tests.browser.conftest import World
from tests.integration.nodes import GuardedAgent, node_public_key
from tests.integration.procs import wait_until

try:
    from playwright.sync_api import expect
except ImportError:  # a lean install; CI has it and requires the browser tests to run
    if os.environ.get("CUSTODES_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
MAX_PAGES = 40
WAIT_S = 30.0  # a bound on what must happen, never a measurement
VIEWPORT = {"width": 1280, "height": 860}


@dataclass
class Watch:
    """What went wrong on a page while the browser used it."""

    problems: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console {message.type}: {message.text} ({page_of(message)})")

    def _failed(self, request: Any) -> None:
        self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _response(self, response: Any) -> None:
        # The browser's own favicon probe is not a page's request (none links one).
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.problems.append(f"{response.status} for {response.url}")


def page_of(message: Any) -> str:
    location = message.location or {}
    return str(location.get("url", ""))


def _dashboard_routes() -> list[Any]:
    return list(create_web(FastAPI()).routes)


def _served(routes: list[Any], path: str) -> bool:
    """Whether the dashboard has a GET route for ``path`` (pages still being written by
    other work do not; once they exist, a broken link to them fails the crawl)."""
    scope = {"type": "http", "path": path.removeprefix("/ui") or "/", "method": "GET"}
    return any(route.matches(scope)[0] is Match.FULL for route in routes)


def _sign_in(context: Any, world: World) -> Any:
    page = context.new_page()
    page.goto("/ui/signin")
    page.fill("#token", world.regulator_token)
    page.click("form.card button[type=submit]")
    page.wait_for_url(re.compile(r".*/ui/$"))
    return page


@pytest.fixture(scope="module")
def session(chromium: Any, world: World) -> Iterator[Any]:
    """A browser context signed in as the regulator."""
    context = chromium.new_context(base_url=world.url, viewport=VIEWPORT)
    _sign_in(context, world).close()
    yield context
    context.close()


def _links(page: Any) -> list[str]:
    hrefs: list[str] = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    return hrefs


def _crawl(session: Any, world: World, starts: list[str]) -> list[str]:
    """GET every same-origin /ui/ page reachable from ``starts`` (bounded); each must
    load cleanly. The pages visited."""
    routes = _dashboard_routes()
    origin = urlsplit(world.url).netloc
    queue, seen, visited, problems = list(starts), set(starts), [], []
    while queue and len(visited) < MAX_PAGES:
        path = queue.pop(0)
        if not _served(routes, path):
            continue
        page, watch = session.new_page(), Watch()
        watch.attach(page)
        response = page.goto(path)
        page.wait_for_load_state("load")
        if response is None or response.status >= 400:
            watch.problems.append(f"{path} answered {response.status if response else None}")
        problems += [f"{path}: {p}" for p in watch.problems]
        visited.append(path)
        for href in _links(page):
            parts = urlsplit(href)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            ours = parts.netloc == origin and parts.path.startswith("/ui/")
            if ours and not parts.path.startswith("/ui/static/") and target not in seen:
                seen.add(target)
                queue.append(target)
        page.close()
    assert not problems, "\n".join(problems)
    return visited


def test_every_linked_page_loads_cleanly(session: Any, world: World) -> None:
    agent = world.agent.agent_id
    starts = ["/ui/", f"/ui/agents/{agent}", f"/ui/agents/{agent}/orders/new?op=suspend"]
    visited = _crawl(session, world, starts)
    assert "/ui/" in visited


def _sign_and_issue(page: Any, world: World, watch: Watch, reason: str) -> str:
    """From an order's form to its result page, signing in the page; the result text."""
    page.fill("#reason", reason)
    page.click("text=Prepare the order")
    page.wait_for_selector("#keyfile")
    assert page.is_disabled("#issue")  # nothing to issue before it is signed
    page.set_input_files("#keyfile", str(world.key_file))
    expect(page.locator("#sign-status")).to_contain_text("Signed with your key")
    expect(page.locator("#issue")).to_be_enabled()
    assert page.input_value("#keyid") == world.regulator_key.keyid
    page.check("#confirm")
    page.click("#issue")
    page.wait_for_selector("text=logged at index")
    assert not watch.problems, "\n".join(watch.problems)
    text: str = page.inner_text("main")
    return text


def test_a_kill_order_is_signed_in_the_page_and_halts_the_guard(session: Any, world: World) -> None:
    agent = world.agent
    page, watch = session.new_page(), Watch()
    watch.attach(page)
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.post_data or "") if r.method == "POST" else None)

    page.goto(f"/ui/agents/{agent.agent_id}/orders/new?op=suspend")
    done = _sign_and_issue(page, world, watch, "browser test: suspend")
    assert "suspended" in done
    _shoot(page, "order-done")
    assert agent.agent_id in done
    wait_until("the guard halts", lambda: not agent.allowed("GB"), WAIT_S)
    agent_page = session.new_page()
    watch.attach(agent_page)
    agent_page.goto(f"/ui/agents/{agent.agent_id}")
    state = agent_page.inner_text("#lease-state")  # the lease it held still bounds it
    assert "It runs for another" in state, state
    assert "although it is now suspended" in state, state
    agent_page.close()

    page.click("text=Lift this order")
    page.wait_for_selector("#reason")
    lifted = _sign_and_issue(page, world, watch, "browser test: lifted")
    assert "reinstated" in lifted
    wait_until("the guard lets actions through again", lambda: agent.allowed("GB"), WAIT_S)

    seed = base64.b64encode(world.regulator_key.seed()).decode()
    key_text = world.key_file.read_text().strip()
    assert posted, "the browser posted nothing"
    for body in posted:
        for secret in (seed, key_text, quote_plus(seed), quote_plus(key_text)):
            assert secret not in body, "a form carried the key file"
    page.close()


def test_another_key_is_refused_in_the_page(session: Any, world: World, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger.key"
    stranger.write_text(entry_key_string("stranger", EnvelopeSigner.generate()) + "\n")
    page, watch = session.new_page(), Watch()
    watch.attach(page)
    page.goto(f"/ui/agents/{world.agent.agent_id}/orders/new?op=revoke")
    page.fill("#reason", "signed with the wrong key")
    page.click("text=Prepare the order")
    page.set_input_files("#keyfile", str(stranger))
    expect(page.locator("#sign-status")).to_contain_text("is not your registered key")
    expect(page.locator("#issue")).to_be_disabled()
    assert page.input_value("#signature") == ""
    assert not watch.problems, "\n".join(watch.problems)
    page.close()


def _paste_and_issue(page: Any, envelope: str) -> str:
    page.fill("#envelope", envelope)
    page.click("text=Review the signed order")
    page.wait_for_selector("#confirm")
    page.check("#confirm")
    page.click("text=Issue the order")
    page.wait_for_selector("text=logged at index")
    text: str = page.inner_text("main")
    return text


def test_without_javascript_an_order_signed_by_the_cli_is_pasted(
    chromium: Any, session: Any, world: World, tmp_path: Path
) -> None:
    signer = EnvelopeSigner.generate()
    agent_id = enrol_agent(world.authorities, signer, "paste-trader")
    node_key = node_public_key(world.url)
    agent = GuardedAgent.start(world.url, node_key, agent_id, signer, tmp_path / "spool")
    context = chromium.new_context(
        base_url=world.url, java_script_enabled=False, storage_state=session.storage_state()
    )
    try:
        assert agent.guard.wait_for_lease(WAIT_S), "the agent got no lease"
        page = context.new_page()
        page.goto(f"/ui/agents/{agent_id}/orders/new?op=suspend")
        order = prepared_order("suspend", agent_id, "pasted", None, None, "regulator:gb")
        done = _paste_and_issue(page, _signed(order, world.regulator_key))
        assert "suspended" in done
        wait_until("the guard halts", lambda: not agent.allowed("GB"), WAIT_S)
        page.goto(f"/ui/orders/{order.order_id}/lift")
        lift = prepared_order("reinstate", agent_id, "ok", None, order.order_id, "regulator:gb")
        assert "reinstated" in _paste_and_issue(page, _signed(lift, world.regulator_key))
        wait_until("the guard lets actions through", lambda: agent.allowed("GB"), WAIT_S)
    finally:
        context.close()
        agent.close()


def _signed(order: Any, key: EnvelopeSigner) -> str:
    envelope = sign_envelope(ORDER_TYPE, order_payload(order), [key])
    return canonical_dumps(envelope.to_json()).decode()


def _main_pages(world: World) -> list[tuple[str, str]]:
    agent = world.agent.agent_id
    pages = [
        ("overview", "/ui/"),
        ("registry", "/ui/agents"),
        ("agent", f"/ui/agents/{agent}"),
        ("redteam", "/ui/redteam"),
        ("forensics", "/ui/forensics"),
        ("order-new", f"/ui/agents/{agent}/orders/new?op=suspend"),
    ]
    routes = _dashboard_routes()
    return [(name, path) for name, path in pages if _served(routes, path.split("?")[0])]


def _axe(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate("async () => (await axe.run()).violations")
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def _shoot(page: Any, name: str) -> None:
    if os.environ.get("CUSTODES_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_axe_finds_no_serious_violation(chromium: Any, session: Any, world: World) -> None:
    # The CSP forbids injected scripts, rightly; axe runs in a context that bypasses it.
    context = chromium.new_context(
        base_url=world.url,
        viewport=VIEWPORT,
        bypass_csp=True,
        storage_state=session.storage_state(),
    )
    found: list[str] = []
    page = context.new_page()
    for name, path in _main_pages(world):
        page.goto(path)
        found += [f"{path}: {v}" for v in _axe(page)]
        _shoot(page, name)
    page.goto(f"/ui/agents/{world.agent.agent_id}/orders/new?op=suspend")
    page.fill("#reason", "accessibility check")
    page.click("text=Prepare the order")
    page.wait_for_selector("#keyfile")
    found += [f"sign page: {v}" for v in _axe(page)]
    _shoot(page, "order-sign")
    public = chromium.new_context(base_url=world.url, viewport=VIEWPORT, bypass_csp=True)
    signin = public.new_page()
    signin.goto("/ui/signin")
    found += [f"/ui/signin: {v}" for v in _axe(signin)]
    _shoot(signin, "signin")
    public.close()
    context.close()
    assert not found, "\n".join(found)
