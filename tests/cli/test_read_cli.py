"""``custodes decisions list``, ``log get``, ``log info`` and ``eval list`` against a node
served over HTTP on loopback (tests/api/live.py), run as a person runs them.

Everything they print was verified first: a wrong log key, a tampered entry or a proof
that no longer leads to the signed root makes them refuse in one line and print nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from tests.api.live import live_node
from tests.api.test_eval_results_list import result
from tests.cli.test_cli import assert_one_line_error, custodes
from tests.databases import database_url, node_settings
from tests.integration.procs import enrol_agent, wait_until

from custodes.client import Client
from custodes.config import Settings
from custodes.ledger.checkpoint import parse_checkpoint
from custodes.ledger.cosignature import CosignatureSigner, cosign
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.note import NoteSigner, parse_note
from custodes.ledger.store import SqlLogStore, entries
from custodes.sdk.bootstrap import register_principal
from custodes.sdk.decisions import sign_decision
from custodes.store.db import open_engine, write_tx

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
COUNT = 25
_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Served:
    """A node served on loopback; its database opened beside it, as an intruder would."""

    url: str
    settings: Settings
    store: SqlLogStore
    agent_id: str
    indices: list[int]  # the decisions, in time order (the order they were logged)
    cwd: Path

    def run(self, *args: str) -> Any:
        return custodes(*args, "--node", self.url, cwd=self.cwd)

    def json(self, *args: str) -> Any:
        done = self.run(*args, "--output", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def wait_for_size(self, size: int) -> None:
        def grown() -> bool:
            return bool(httpx.get(f"{self.url}/api/v1/node").json()["tree_size"] >= size)

        wait_until(f"tree size {size}", grown, _TIMEOUT_S)


def _serve(settings: Settings, cwd: Path) -> Iterator[Served]:
    with live_node(settings) as live:
        url = f"http://{live.host}:{live.port}"
        key = EnvelopeSigner.from_seed(b"c" * 32)
        agent_id = enrol_agent(url, key, "agent-1")
        envelopes = [
            sign_decision(key, agent_id, f"trade #{n}", "within mandate", decided_at=_at(n))
            for n in range(COUNT)
        ]
        ledger = Client(url)
        try:
            indices = ledger.append(envelopes)
        finally:
            ledger.close()
        engine = open_engine(settings.db_url)
        try:
            served = Served(url, settings, SqlLogStore(engine), agent_id, indices, cwd)
            served.wait_for_size(indices[-1] + 1)
            yield served
        finally:
            engine.dispose()


def _at(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("read-cli")
    settings = node_settings(base, database_url(request, base, "read_cli_"))
    yield from _serve(settings, base)


@pytest.fixture
def fresh(settings: Settings, tmp_path: Path) -> Iterator[Served]:
    """A node of this test's own, for tests that tamper with its database."""
    yield from _serve(settings, tmp_path)


# --- decisions list ----------------------------------------------------------------------


def test_decisions_list_follows_every_page_and_verifies_each(served: Served) -> None:
    page = served.json("decisions", "list", "--agent", served.agent_id, "--limit", "7", "--all")
    assert [item["index"] for item in page["items"]] == served.indices
    assert page["next_cursor"] is None
    assert {item["decision"]["agent"] for item in page["items"]} == {served.agent_id}


def test_decisions_list_prints_a_window_from_inclusive_to_exclusive(served: Served) -> None:
    window = ("--from", _stamp(_at(3)), "--to", _stamp(_at(8)))
    page = served.json("decisions", "list", "--agent", served.agent_id, *window)
    assert [item["index"] for item in page["items"]] == served.indices[3:8]


def test_decisions_list_prints_a_table_and_says_how_to_go_on(served: Served) -> None:
    done = served.run("decisions", "list", "--agent", served.agent_id, "--limit", "5")
    assert done.returncode == 0, done.stderr
    assert "trade #4" in done.stdout
    assert "trade #5" not in done.stdout
    assert "--cursor" in done.stderr


def test_decisions_list_refuses_a_checkpoint_not_signed_by_the_trusted_key(
    served: Served,
) -> None:
    other = NoteSigner.generate(served.settings.origin).vkey()
    done = served.run("decisions", "list", "--agent", served.agent_id, "--log-key", other)
    assert_one_line_error(done, "refusing to print: the checkpoint does not verify")
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--agent", "urn:custodes:zz:agent:nobody"), "no agent urn:custodes:zz:agent:nobody"),
        (("--agent", "x", "--from", "yesterday"), "RFC 3339"),
    ],
)
def test_decisions_list_mistakes_are_one_line(
    served: Served, args: tuple[str, ...], fragment: str
) -> None:
    assert_one_line_error(served.run("decisions", "list", *args), fragment)


def test_decisions_list_refuses_a_proof_that_no_longer_leads_to_the_root(fresh: Served) -> None:
    # The stored leaf hash of one decision is changed: every proof through it now leads
    # elsewhere than the signed root, and the entry itself no longer hashes to it.
    with write_tx(fresh.store.engine) as conn:
        tampered = entries.c.idx == fresh.indices[4]
        conn.execute(update(entries).where(tampered).values(leaf_hash=b"\x01" * 32))
    done = fresh.run("decisions", "list", "--agent", fresh.agent_id)
    assert_one_line_error(done, "refusing to print")
    assert done.stdout == ""


def _log_vkey(served: Served) -> str:
    vkey: str = httpx.get(f"{served.url}/api/v1/node").json()["log_vkey"]
    return vkey


# --- log get and log info ----------------------------------------------------------------


def test_log_get_decodes_a_verified_entry(served: Served) -> None:
    index = served.indices[2]
    record = served.json("log", "get", str(index))
    assert record["index"] == index
    assert record["payload_type"] == "application/vnd.custodes.decision+json"
    assert record["payload"]["action"] == "trade #2"
    assert record["verified"] is True
    assert len(record["signer_keyids"]) == 1
    assert record["tree_size"] > index


def test_log_get_refuses_an_entry_that_does_not_hash_to_its_leaf(fresh: Served) -> None:
    index = fresh.indices[0]
    with write_tx(fresh.store.engine) as conn:
        data = conn.execute(entries.select().where(entries.c.idx == index)).one().data
        forged = bytes(data).replace(b'"keyid":"', b'"keyid":"0', 1)  # names another key
        assert forged != bytes(data)
        conn.execute(update(entries).where(entries.c.idx == index).values(data=forged))
    done = fresh.run("log", "get", str(index))
    assert_one_line_error(done, f"refusing to print: entry {index} is not proven")


def test_log_get_of_an_index_past_the_log_is_one_line(served: Served) -> None:
    assert_one_line_error(served.run("log", "get", "999999"), "no entry has index 999999")


def test_log_info_shows_the_checkpoint_its_cosignatures_and_the_keys(fresh: Served) -> None:
    witness = CosignatureSigner.generate("witness.example/w1")
    size, _ = fresh.store.tree_size()
    stored = fresh.store.checkpoint(size)
    assert stored is not None
    text = parse_note(stored.note).text
    when = int(time.time())
    line = cosign(text, witness, when).line()
    fresh.store.add_cosignature(size, witness.name, line, when)

    known = fresh.json("log", "info", "--witness-key", witness.vkey())
    assert known["origin"] == fresh.settings.origin
    assert known["size"] == size == parse_checkpoint(text).size
    assert known["log_vkey"] == _log_vkey(fresh)
    assert known["witness_vkeys"] == [witness.vkey()]
    assert known["cosignatures"] == [
        {
            "witness": witness.name,
            "timestamp": when,
            "time": datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z"),
            "verified": True,
        }
    ]
    unknown = fresh.json("log", "info")  # the node names no witness: shown, not verified
    assert [c["verified"] for c in unknown["cosignatures"]] == [False]


# --- eval list ---------------------------------------------------------------------------


def test_eval_list_shows_verified_results_filtered_by_suite(served: Served) -> None:
    key = EnvelopeSigner.from_seed(b"v" * 32)
    with httpx.Client(base_url=served.url, timeout=10.0) as http:
        settings = served.settings
        token = register_principal(
            http,
            settings.admin_token,
            "auditor:cli",
            role="auditor",
            jurisdiction=settings.jurisdiction,
            key=key,
        )
        evals = Client(str(http.base_url), principal="auditor:cli", token=token, key=key, http=http)
        logged = [evals.publish(result(n)) for n in range(4)]
    served.wait_for_size(logged[-1] + 1)
    page = served.json("eval", "list", "--suite", "finance-1", "--limit", "1", "--all")
    assert [item["index"] for item in page["items"]] == logged[1::2]
    table = served.run("eval", "list", "--suite", "core-1")
    assert table.returncode == 0, table.stderr
    assert "core-1@1" in table.stdout
