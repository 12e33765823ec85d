"""Three member nodes witness each other; a log cannot show a witness a forked history.

A, B and C each run a log and a witness for the other two logs. After appends on every
node, each node's served checkpoint must carry verified cosignatures from both peers,
and ``custodes log verify --quorum 2`` must pass against every node. Then the test
plays a dishonest A (it holds A's real log key) against B's witness: forks and junk
proofs are refused with the tlog-witness status codes, and B's view of A is unchanged,
so A's next honest checkpoint is still cosigned.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from custodes.ledger.checkpoint import Checkpoint, sign_checkpoint
from custodes.ledger.cosignature import cosignatures_in
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.merkle import consistency_proof
from custodes.ledger.note import NoteSigner, parse_note, parse_private_key, parse_vkey
from custodes.ledger.witness import format_add_checkpoint
from tests.integration.procs import (
    NodeProcess,
    Peer,
    append_decisions,
    enrol_agent,
    fetch_checkpoint,
    free_port,
    init_node,
    node_env,
    run_cli,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

NAMES = ("a", "b", "c")
COSIGN_TIMEOUT_S = 20


@dataclass
class Member:
    name: str
    data_dir: Path
    port: int
    keys: dict[str, str]
    node: NodeProcess | None = None
    agent_id: str = ""
    agent_key: EnvelopeSigner = field(default_factory=EnvelopeSigner.generate)

    @property
    def origin(self) -> str:
        return f"{self.name}.test/log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> NodeProcess:
        assert self.node is not None
        return self.node


def _env(member: Member, peers: list[Member] | None = None) -> dict[str, str]:
    peers = peers or []
    return node_env(
        member.data_dir,
        member.origin,
        witnessed_logs=[p.keys["log"] for p in peers],
        witnesses=[Peer(p.url, p.keys["witness"]) for p in peers],
        quorum=len(peers),
    )


def _cosigners(member: Member, peers: list[Member]) -> tuple[int, set[str]]:
    """The served checkpoint's size and the peers whose cosignatures on it verify."""
    checkpoint, note = fetch_checkpoint(member.url, member.keys["log"])
    verified = cosignatures_in(parse_note(note), [parse_vkey(p.keys["witness"]) for p in peers])
    return checkpoint.size, {v.name for v, _ts in verified}


def _wait_cosigned(member: Member, peers: list[Member], size: int) -> None:
    wanted = {f"{p.origin}/witness" for p in peers}

    def done() -> bool:
        served, names = _cosigners(member, peers)
        return served >= size and names == wanted

    wait_until(
        f"{member.origin} at size {size} cosigned by {sorted(wanted)}",
        done,
        COSIGN_TIMEOUT_S,
        interval=0.1,
    )


def _witness_state(member: Member, origin: str) -> tuple[int, bytes]:
    """What ``member``'s witness stored for ``origin`` (read from its SQLite file)."""
    with closing(sqlite3.connect(member.data_dir / "custodes.db", timeout=10)) as db:
        row = db.execute(
            "SELECT size, root FROM witnessed_logs WHERE origin = ?", (origin,)
        ).fetchone()
    assert row is not None, f"{member.name} has never cosigned {origin}"
    return int(row[0]), bytes(row[1])


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Member]]:
    tmp_path = tmp_path_factory.mktemp("federation")
    members = [Member(n, tmp_path / n, free_port(), {}) for n in NAMES]
    with ThreadPoolExecutor(len(members)) as pool:
        keys = list(pool.map(lambda m: init_node(_env(m)), members))
    for member, member_keys in zip(members, keys, strict=True):
        member.keys = member_keys
    with ExitStack() as stack:
        for member in members:
            peers = [p for p in members if p is not member]
            member.node = NodeProcess(
                _env(member, peers), tmp_path / f"{member.name}.log", port=member.port
            )
            stack.enter_context(member.node)
        for member in members:
            member.agent_id = enrol_agent(member.url, member.agent_key, f"agent-{member.name}")
        yield members


def _append(member: Member, count: int, tag: str) -> int:
    """Append ``count`` decisions by the member's agent; return the new log size."""
    with closing(member.running.client()) as client:
        appended = append_decisions(client, member.agent_key, member.agent_id, count, tag)
    return max(i for i, _ in appended) + 1


def _verify_cli(member: Member, peers: list[Member], state_dir: Path) -> None:
    args = [
        "log",
        "verify",
        member.url,
        "--key",
        member.keys["log"],
        "--quorum",
        "2",
        "--state-dir",
        str(state_dir),
    ]
    for peer in peers:
        args += ["--witness-key", peer.keys["witness"]]
    result = run_cli(args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"OK {member.origin}: "), result.stdout
    assert "2 cosignatures" in result.stdout, result.stdout


def test_three_nodes_cosign_each_other(federation: list[Member], tmp_path: Path) -> None:
    sizes = {m.name: _append(m, 5 + i, m.name) for i, m in enumerate(federation)}
    for member in federation:
        peers = [p for p in federation if p is not member]
        _wait_cosigned(member, peers, sizes[member.name])
    with ThreadPoolExecutor(len(federation)) as pool:
        list(
            pool.map(
                lambda m: _verify_cli(m, [p for p in federation if p is not m], tmp_path / "state"),
                federation,
            )
        )


def _junk_proof(old: int, new: int) -> list[bytes]:
    """Random hashes, as many as a real consistency proof from ``old`` to ``new`` has."""
    return consistency_proof(old, new, lambda _level, _index: os.urandom(32))


def _post(witness: Member, old: int, proof: list[bytes], note: bytes) -> httpx.Response:
    return httpx.post(
        f"{witness.url}/witness/add-checkpoint",
        content=format_add_checkpoint(old, proof, note),
        timeout=10,
    )


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["detail"], dict)


def _refusals(
    a: Member,
    log_key: NoteSigner,
    size: int,
    root: bytes,
) -> list[tuple[str, Callable[[Member], None]]]:
    """Dishonest add-checkpoint requests for A's origin, each with the expected answer."""
    other_root = os.urandom(32)

    def signed(cp_size: int, cp_root: bytes, key: NoteSigner = log_key) -> bytes:
        return sign_checkpoint(Checkpoint(key.name, cp_size, cp_root), key)

    def fork_larger(b: Member) -> None:
        note = signed(size + 7, other_root)
        _assert_error(_post(b, size, _junk_proof(size, size + 7), note), 422, "bad_proof")

    def fork_same_size(b: Member) -> None:
        _assert_error(_post(b, size, [], signed(size, other_root)), 422, "bad_proof")

    def stale_old(b: Member) -> None:
        response = _post(b, size - 1, [], signed(size, root))
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "text/x.tlog.size"  # no charset (C2SP)
        assert response.text == f"{size}\n"

    def old_after_new(b: Member) -> None:
        _assert_error(_post(b, size + 1, [], signed(size, root)), 400, "old_after_new")

    def unknown_origin(b: Member) -> None:
        stranger = NoteSigner.generate("unknown.test/log")
        _assert_error(_post(b, 0, [], signed(1, other_root, stranger)), 404, "unknown_log")

    def wrong_key(b: Member) -> None:
        impostor = NoteSigner.generate(a.origin)
        note = signed(size + 1, other_root, impostor)
        _assert_error(_post(b, size, _junk_proof(size, size + 1), note), 403, "untrusted_signature")

    return [
        (f.__name__, f)
        for f in (fork_larger, fork_same_size, stale_old, old_after_new, unknown_origin, wrong_key)
    ]


def test_witness_refuses_an_inconsistent_history(federation: list[Member]) -> None:
    a, b, c = federation
    size = _append(a, 3, "honest")
    _wait_cosigned(a, [b, c], size)
    wait_until(
        "B to store A's newest checkpoint",
        lambda: _witness_state(b, a.origin)[0] == size,
        COSIGN_TIMEOUT_S,
    )
    stored = _witness_state(b, a.origin)
    log_key = parse_private_key((a.data_dir / "log.key").read_text().strip())
    assert log_key.vkey() == a.keys["log"]
    for name, attempt in _refusals(a, log_key, *stored):
        attempt(b)
        assert _witness_state(b, a.origin) == stored, f"{name} changed B's view of A"
    newer = _append(a, 2, "after")
    _wait_cosigned(a, [b, c], newer)
    assert _witness_state(b, a.origin)[0] == newer


def test_a_witness_that_was_down_cosigns_a_quiet_log_when_it_returns(
    tmp_path: Path,
) -> None:
    """Regression: a witness unreachable when a checkpoint was made must still be asked
    again, even if the log never grows after that."""
    log_side, witness_side = (Member(n, tmp_path / n, free_port(), {}) for n in ("q", "w"))
    for member in (log_side, witness_side):
        member.keys = init_node(_env(member))
    log_env = _env(log_side, [witness_side])
    with NodeProcess(log_env, tmp_path / "q.log", port=log_side.port) as node:
        log_side.node = node
        log_side.agent_id = enrol_agent(log_side.url, log_side.agent_key, "agent-q")
        size = _append(log_side, 3, "quiet")
        wait_until("the log's checkpoint", lambda: _cosigners(log_side, [])[0] >= size, 10)
        assert _cosigners(log_side, [witness_side])[1] == set()
        witness_env = _env(witness_side, [log_side])
        with NodeProcess(witness_env, tmp_path / "w.log", port=witness_side.port):
            _wait_cosigned(log_side, [witness_side], size)
