"""``custodes serve --workers 3`` on one PostgreSQL database, end to end.

One real node process with three uvicorn workers. Each answer names its worker
(``X-Custodes-Worker``); a client with a single keep-alive connection stays on the
worker that accepted it, so the tests hold one client per worker and check the header
on every answer they rely on. Then:

1. appends through every worker at once get unique, contiguous indices, and the one
   tree they end up in is the one the signed checkpoint commits to;
2. a kill order issued once through one worker reaches stream subscribers on every
   worker, and so does its lift;
3. a key retired, or an agent revoked, through one worker is refused by every worker
   straight away (no cache outlives the change elsewhere);
4. the worker that signs checkpoints (the leader) SIGKILLed: another takes over, and
   entries appended afterwards are checkpointed;
5. with SQLite, ``--workers 2`` is refused in one line, before anything is created.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import psycopg
import pytest

from custodes.api.workers import WORKER_HEADER
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import Envelope, EnvelopeSigner
from custodes.ledger.merkle import leaf_hash, root_of
from custodes.sdk.bootstrap import Authorities, bootstrap, enrol_agent
from custodes.sdk.decisions import sign_decision
from custodes.sdk.pushes import sse_events
from tests.integration.procs import (
    ADMIN_TOKEN,
    NodeProcess,
    fetch_checkpoint,
    init_node,
    leaf_hashes,
    node_env,
    run_cli,
    wait_until,
)
from tests.pgserver import ThrowawayPostgres

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

WORKERS = 3
WAIT_S = 60.0  # a bound on what must happen, never a measurement
_MAX_CONNECTIONS = 60  # connections opened to find one per worker, at most
_names = itertools.count()


@dataclass
class Cluster:
    process: NodeProcess
    keys: dict[str, str]
    authorities: Authorities
    dsn: str

    @property
    def url(self) -> str:
        return self.process.url


@pytest.fixture(scope="module")
def cluster(
    postgres: ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("workers")
    name = f"workers{next(_names)}"
    env = node_env(
        base / "node",
        "gb.workers.test/log",
        database_url=postgres.new_database(name),
        jurisdiction="GB",
    )
    keys = init_node(env)
    process = NodeProcess(
        env, base / "serve.log", args=("--workers", str(WORKERS)), start_timeout=120
    )
    process.start()
    try:
        with httpx.Client(base_url=process.url, timeout=30.0) as http:
            authorities = bootstrap(process.url, ADMIN_TOKEN, "GB", client=http)
            yield Cluster(process, keys, authorities, postgres.dsn(name))
    finally:
        process.stop()


def _worker(response: httpx.Response) -> int:
    """The pid of the worker that answered."""
    return int(response.headers[WORKER_HEADER])


@contextlib.contextmanager
def one_client_per_worker(url: str) -> Iterator[dict[int, httpx.Client]]:
    """A single-connection client on each worker (connections land where they land)."""
    found: dict[int, httpx.Client] = {}
    with contextlib.ExitStack() as stack:
        for _ in range(_MAX_CONNECTIONS):
            client = stack.enter_context(
                httpx.Client(base_url=url, timeout=30.0, limits=httpx.Limits(max_connections=1))
            )
            found.setdefault(_worker(client.get("/api/v1/node")), client)
            if len(found) == WORKERS:
                break
        assert len(found) == WORKERS, f"{_MAX_CONNECTIONS} connections reached {len(found)}"
        yield found


def _post_entries(client: httpx.Client, envelopes: list[Envelope]) -> httpx.Response:
    body = canonical_dumps({"entries": [e.to_json() for e in envelopes]})
    return client.post(
        "/api/v1/entries", content=body, headers={"Content-Type": "application/json"}
    )


def _refused_by(
    client: httpx.Client, worker: int, entries: Callable[[], list[Envelope]]
) -> httpx.Response:
    """The 403 ``worker`` answers once the change has reached it.

    The change reaches the other workers by notification (sub-millisecond on an idle
    loopback, longer on a loaded machine) and, should that be lost, when their cached
    answer expires (1-2 s): docs/design/0012-workers.md. Each try must be answered by
    ``worker`` and, once refused, every later try is refused too (no going back).
    """

    def refused() -> httpx.Response | None:
        answer = _post_entries(client, entries())
        assert _worker(answer) == worker
        assert answer.status_code in {200, 403}, answer.text
        return answer if answer.status_code == 403 else None

    first = wait_until(f"worker {worker} refusing", refused, WAIT_S)
    again = _post_entries(client, entries())
    assert (_worker(again), again.status_code) == (worker, 403), again.text
    return cast(httpx.Response, first)


def _append(client: httpx.Client, worker: int, envelopes: list[Envelope]) -> list[int]:
    response = _post_entries(client, envelopes)
    assert response.status_code == 200, response.text
    assert _worker(response) == worker, "the client's connection moved to another worker"
    indices: list[int] = response.json()["indices"]
    return indices


def _agent(cluster: Cluster, slug: str, *keys: EnvelopeSigner) -> str:
    record_keys = keys or (EnvelopeSigner.generate(),)
    agent_id = enrol_agent(cluster.authorities, record_keys[0], slug, risk_tier="minimal")
    if len(record_keys) > 1:
        cluster.authorities.operator.rotate_key(
            agent_id, add=[k.public_key for k in record_keys[1:]]
        )
    return agent_id


# -- 1. appends -------------------------------------------------------------------------


def test_appends_through_every_worker_get_contiguous_indices_in_one_tree(cluster: Cluster) -> None:
    signer = EnvelopeSigner.generate()
    agent_id = _agent(cluster, "appender", signer)
    lanes = [
        [
            [sign_decision(signer, agent_id, f"act {w}.{b}.{i}", "concurrent") for i in range(5)]
            for b in range(20)
        ]
        for w in range(WORKERS)
    ]
    with one_client_per_worker(cluster.url) as clients:

        def send(lane: int) -> list[list[int]]:
            worker, client = list(clients.items())[lane]
            return [_append(client, worker, batch) for batch in lanes[lane]]

        with ThreadPoolExecutor(WORKERS) as pool:  # each worker appends at the same time
            answers = list(pool.map(send, range(WORKERS)))
    batches = [batch for lane in lanes for batch in lane]
    results = [got for lane in answers for got in lane]
    indices = [i for batch in results for i in batch]
    assert len(set(indices)) == len(indices), "an index was given twice"
    assert sorted(indices) == list(range(min(indices), min(indices) + len(indices)))
    assert all(got == list(range(got[0], got[0] + len(got))) for got in results)
    sequenced = max(indices) + 1
    checkpoint = _wait_for_checkpoint(cluster, sequenced)
    hashes = leaf_hashes(cluster.url, checkpoint.size)
    assert root_of(hashes) == checkpoint.root_hash  # one tree, the one the checkpoint signs
    for batch, got in zip(batches, results, strict=True):
        for envelope, index in zip(batch, got, strict=True):
            assert hashes[index] == leaf_hash(envelope.to_bytes())


def _wait_for_checkpoint(cluster: Cluster, size: int) -> Any:
    def covered() -> Any:
        checkpoint, _note = fetch_checkpoint(cluster.url, cluster.keys["log"])
        return checkpoint if checkpoint.size >= size else None

    return wait_until(f"a checkpoint of {size} entries", covered, WAIT_S)


# -- 2. kill orders ---------------------------------------------------------------------


@contextlib.contextmanager
def streams_on_every_worker(
    url: str, agent_id: str
) -> Iterator[dict[int, Iterator[dict[str, Any]]]]:
    """An open kill-order stream for ``agent_id`` on each worker, subscribed already."""
    found: dict[int, Iterator[dict[str, Any]]] = {}
    with contextlib.ExitStack() as stack:
        for _ in range(_MAX_CONNECTIONS):
            client = stack.enter_context(httpx.Client(timeout=httpx.Timeout(10.0, read=60.0)))
            response = stack.enter_context(
                client.stream(
                    "GET", f"{url}/api/v1/kill-orders/stream", params={"agent_id": agent_id}
                )
            )
            worker = _worker(response)  # headers come after the subscription is made
            if worker not in found:
                found[worker] = _order_events(response.iter_lines())
            if len(found) == WORKERS:
                break
        assert len(found) == WORKERS, f"{_MAX_CONNECTIONS} streams reached {len(found)} workers"
        yield found


def _order_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for event in sse_events(lines):
        if event is not None and event[0] == "order":
            yield orjson.loads(event[1])


def test_an_order_issued_once_reaches_subscribers_on_every_worker(cluster: Cluster) -> None:
    agent_id = _agent(cluster, "streamed")
    regulator = cluster.authorities.regulator
    with streams_on_every_worker(cluster.url, agent_id) as streams:
        suspended = regulator.order("suspend", agent_id, "found vulnerable")
        for worker, events in streams.items():
            event = next(events)
            assert (event["index"], event["order"]["order_id"]) == (
                suspended["index"],
                suspended["order_id"],
            ), f"worker {worker} pushed something else"
        lifted = regulator.order("reinstate", agent_id, "patched", lifts=suspended["order_id"])
        for worker, events in streams.items():
            event = next(events)
            assert event["order"]["lifts"] == suspended["order_id"], f"worker {worker}"
            assert event["index"] == lifted["index"]


# -- 3. who may sign --------------------------------------------------------------------


def test_a_key_retired_through_one_worker_is_refused_by_every_worker(
    cluster: Cluster,
) -> None:
    old, new = EnvelopeSigner.generate(), EnvelopeSigner.generate()
    agent_id = _agent(cluster, "rotating", old, new)
    counter = itertools.count()

    def decision(key: EnvelopeSigner) -> list[Envelope]:
        return [sign_decision(key, agent_id, f"act {next(counter)}", "signed")]

    with one_client_per_worker(cluster.url) as clients:
        for worker, client in clients.items():  # every worker has the old key cached now
            _append(client, worker, decision(old))
        cluster.authorities.operator.rotate_key(agent_id, retire=[old.keyid])
        for worker, client in clients.items():
            refused = _refused_by(client, worker, lambda: decision(old))
            assert refused.json()["error"]["code"] == "unknown_signer"
            _append(client, worker, decision(new))


def test_an_agent_revoked_through_one_worker_is_refused_by_every_worker(
    cluster: Cluster,
) -> None:
    key = EnvelopeSigner.generate()
    agent_id = _agent(cluster, "revoked", key)
    counter = itertools.count()

    def decision(action: str = "act") -> list[Envelope]:
        return [sign_decision(key, agent_id, action, f"decision {next(counter)}")]

    with one_client_per_worker(cluster.url) as clients:
        for worker, client in clients.items():  # every worker has "active" cached now
            _append(client, worker, decision())
        cluster.authorities.regulator.order("revoke", agent_id, "withdrawn from the market")
        for worker, client in clients.items():
            refused = _refused_by(client, worker, decision)
            assert refused.json()["error"]["code"] == "agent_revoked"


# -- 4. the leader ----------------------------------------------------------------------


def _leader_pid(dsn: str) -> int | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT application_name FROM pg_stat_activity "
            "WHERE application_name LIKE 'custodes leader %'"
        ).fetchone()
    return None if row is None else int(str(row[0]).rsplit(" ", 1)[1])


def test_checkpoints_continue_after_the_leader_is_killed(cluster: Cluster) -> None:
    signer = EnvelopeSigner.generate()
    agent_id = _agent(cluster, "survivor", signer)
    leader = wait_until("a leader", lambda: _leader_pid(cluster.dsn), WAIT_S)
    os.kill(leader, signal.SIGKILL)  # a worker of the node this module started
    successor = wait_until(
        "another worker to lead",
        lambda: (pid := _leader_pid(cluster.dsn)) is not None and pid != leader and pid,
        WAIT_S,
    )
    assert successor != leader
    with httpx.Client(base_url=cluster.url, timeout=30.0) as http:
        envelopes = [sign_decision(signer, agent_id, f"after {i}", "takeover") for i in range(5)]
        response = _post_entries(http, envelopes)
        response.raise_for_status()
        last = max(response.json()["indices"])
    checkpoint = _wait_for_checkpoint(cluster, last + 1)
    assert checkpoint.size > last


# -- 5. SQLite --------------------------------------------------------------------------


def test_several_workers_on_sqlite_are_refused_in_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    result = run_cli(["serve", "--workers", "2"], node_env(data_dir, "sqlite.workers.test/log"))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "needs PostgreSQL" in lines[0]
    assert "CUSTODES_DATABASE_URL" in lines[0]
    assert not data_dir.exists()  # refused before a database or key was made
