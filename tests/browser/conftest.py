"""The browser tests' world: Debian's chromium driven by Playwright, one real GB node
process on loopback with its regulator and operator, and one agent whose SDK guard
follows the node's kill-order stream.

Without /usr/bin/chromium the tests skip, unless ``CUSTODES_REQUIRE_BROWSER=1`` (CI),
where they fail: a browser test that silently never runs proves nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.keys import entry_key_string
from custodes.sdk.bootstrap import Authorities, bootstrap, enrol_agent
from tests.integration.nodes import GuardedAgent, gb_node, node_public_key
from tests.integration.procs import ADMIN_TOKEN, NodeProcess

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # a lean install: the tests skip (or fail where CI requires them)
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass
class World:
    """The node, its authorities, the regulator's key file and the guarded agent."""

    node: NodeProcess
    authorities: Authorities
    regulator_key: EnvelopeSigner
    key_file: Path
    agent: GuardedAgent

    @property
    def url(self) -> str:
        return self.node.url

    @property
    def regulator_token(self) -> str:
        token = self.authorities.regulator.token
        assert token is not None
        return token


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    """A headless chromium (the system's: browser downloads do not work here).

    Package-scoped, never session-scoped: while Playwright's sync API is open it keeps an
    asyncio loop running on the main thread, so every later test that calls
    `asyncio.run()` would fail with "cannot be called from a running event loop".
    """
    if not CHROMIUM.exists():
        if os.environ.get("CUSTODES_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CUSTODES_REQUIRE_BROWSER=1 but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is not installed")
    if sync_playwright is None:
        if os.environ.get("CUSTODES_REQUIRE_BROWSER") == "1":
            pytest.fail("CUSTODES_REQUIRE_BROWSER=1 but playwright is not installed")
        pytest.skip("playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A fresh GB node with a regulator, an operator and one guarded agent."""
    base = tmp_path_factory.mktemp("browser")
    node = gb_node(base / "node", base / "serve.log")
    node.start()
    http = httpx.Client(base_url=node.url, timeout=10.0)
    agent: GuardedAgent | None = None
    try:
        authorities = bootstrap(node.url, ADMIN_TOKEN, "GB", client=http)
        regulator_key = authorities.regulator.key  # generated here, written to a file below
        assert regulator_key is not None
        key_file = base / "regulator-gb.key"
        key_file.write_text(entry_key_string("regulator-gb", regulator_key) + "\n")
        signer = EnvelopeSigner.generate()
        agent_id = enrol_agent(authorities, signer, "browser-trader", operating=["FR"])
        agent = GuardedAgent.start(
            node.url, node_public_key(node.url), agent_id, signer, base / "spool"
        )
        assert agent.guard.wait_for_lease(15.0), "the agent got no lease"
        yield World(node, authorities, regulator_key, key_file, agent)
    finally:
        if agent is not None:
            agent.close()
        http.close()
        node.kill()  # a graceful stop would wait out the open kill-order streams
