"""``custodes decisions list`` and ``decisions erase`` with committed records, against a
node served on loopback, run as a person runs them: the public sees commitments, the home
regulator's token the clear text (checked against the commitment before printing), and
an erasure leaves the record's commitment and proof in place."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.live import live_node
from tests.cli.test_cli import assert_one_line_error, custodes
from tests.databases import database_url, node_settings
from tests.integration.procs import wait_until

from custodes.client import Client
from custodes.config import DEV_ADMIN_TOKEN
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.keys import entry_key_string
from custodes.sdk.bootstrap import bootstrap, enrol_agent
from custodes.sdk.decisions import sign_committed_decision, sign_decision


@dataclass(frozen=True)
class Served:
    url: str
    agent_id: str
    committed: list[int]
    plain: int
    token: str
    key_file: Path
    cwd: Path

    def run(self, *args: str) -> Any:
        return custodes(*args, "--node", self.url, cwd=self.cwd)

    def json(self, *args: str) -> Any:
        done = self.run(*args, "--output", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def erase(self, index: int) -> Any:
        credentials = ("--as", "regulator:zz", "--token", self.token, "--key", str(self.key_file))
        return self.run("decisions", "erase", str(index), "--legal-basis", "order 17", *credentials)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("decisions-cli")
    settings = node_settings(base, database_url(request, base, "decisions_cli_"))
    with live_node(settings) as live, httpx.Client(timeout=10.0) as http:
        url = f"http://{live.host}:{live.port}"
        authorities = bootstrap(url, DEV_ADMIN_TOKEN, "ZZ", client=http)
        key = EnvelopeSigner.from_seed(b"q" * 32)
        agent_id = enrol_agent(authorities, key, "agent-1", sector="testing", risk_tier="minimal")
        with Client(url) as client:
            items = [
                sign_committed_decision(key, agent_id, f"trade #{n}", "secret reason")
                for n in range(3)
            ]
            committed = client.append(
                [*items, sign_decision(key, agent_id, "plain", "public reason")]
            )
            admin = client.acting_as(admin_token=DEV_ADMIN_TOKEN)
            token = str(admin.issue_token("regulator:zz")["token"])
        key_file = base / "regulator.key"
        regulator_key = authorities.regulator.key
        assert regulator_key is not None
        key_file.write_text(entry_key_string("regulator:zz", regulator_key))
        size = committed[-1] + 1

        def grown() -> bool:
            return bool(httpx.get(f"{url}/api/v1/node").json()["tree_size"] >= size)

        wait_until(f"tree size {size}", grown, 30.0)
        yield Served(url, agent_id, committed[:3], committed[3], token, key_file, base)


def test_the_public_list_shows_commitments_and_the_home_regulator_the_clear_text(
    served: Served,
) -> None:
    public = served.json("decisions", "list", "--agent", served.agent_id)
    shown = {i["index"]: i for i in public["items"]}
    assert all("clear" not in shown[i] for i in served.committed)
    assert shown[served.plain]["decision"]["rationale"] == "public reason"
    table = served.run("decisions", "list", "--agent", served.agent_id)
    assert "secret reason" not in table.stdout
    assert "committed" in table.stdout
    opened = served.json("decisions", "list", "--agent", served.agent_id, "--token", served.token)
    clear = {i["index"]: i.get("clear") for i in opened["items"]}
    assert all(clear[i]["record"]["rationale"] == "secret reason" for i in served.committed)


def test_erase_removes_the_clear_text_and_keeps_the_commitment(served: Served) -> None:
    index = served.committed[0]
    done = served.erase(index)
    assert done.returncode == 0, done.stderr
    opened = served.json("decisions", "list", "--agent", served.agent_id, "--token", served.token)
    item = next(i for i in opened["items"] if i["index"] == index)
    assert "clear" not in item
    assert item["erased"]["by"] == "regulator:zz"
    assert item["decision"]["commitment"].startswith("sha256:")
    assert_one_line_error(served.erase(index), "erased at index")


def test_a_plain_record_cannot_be_erased(served: Served) -> None:
    assert_one_line_error(served.erase(served.plain), "cannot be erased")
