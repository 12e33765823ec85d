"""``custodes log verify`` against a real node: success, saved state, tampering, rewrites.

The verifier re-derives the whole tree from the tiles a running node serves. It must
pass on an honest log and remember what it verified; it must fail with one readable
line (and exit 1) when a key is missing, when a stored entry was altered behind the
log's back, and when the operator restarts the log on a new database with the same
key, i.e. rewrites the history a client already verified.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from custodes.ledger.dsse import EnvelopeSigner
from tests.integration.procs import (
    NodeProcess,
    append_decisions,
    enrol_agent,
    fetch_checkpoint,
    init_node,
    node_env,
    run_cli,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ORIGIN = "verify.test/log"
TAMPERED = 100  # an entry inside the first, full, 256-entry tile


@dataclass
class Setup:
    tmp_path: Path
    env: dict[str, str]
    keys: dict[str, str]
    node: NodeProcess
    signer: EnvelopeSigner
    agent_id: str = ""

    def append(self, count: int, tag: str) -> int:
        """Append ``count`` decisions; wait until a checkpoint covers them; return the size."""
        with closing(self.node.client()) as client:
            size = (
                max(i for i, _ in append_decisions(client, self.signer, self.agent_id, count, tag))
                + 1
            )
        wait_until(
            f"a checkpoint of size {size}",
            lambda: fetch_checkpoint(self.node.url, self.keys["log"])[0].size >= size,
            timeout=15,
        )
        return size

    def enrol(self) -> None:
        self.agent_id = enrol_agent(self.node.url, self.signer, "verify")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    env = node_env(tmp_path / "node", ORIGIN)
    keys = init_node(env)
    with NodeProcess(env, tmp_path / "node.log") as node:
        started = Setup(tmp_path, env, keys, node, EnvelopeSigner.generate())
        started.enrol()
        yield started


def _verify(url: str, state_dir: Path, *keys: str) -> tuple[int, str, str]:
    args = ["log", "verify", url, "--state-dir", str(state_dir)]
    for key in keys:
        args += ["--key", key]
    result = run_cli(args)
    return result.returncode, result.stdout, result.stderr


def _one_line_error(code: int, stdout: str, stderr: str) -> str:
    assert code == 1, (stdout, stderr)
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def test_verify_passes_and_remembers_the_verified_size(setup: Setup) -> None:
    state = setup.tmp_path / "state"
    size = setup.append(300, "first")
    code, out, err = _verify(setup.node.url, state, setup.keys["log"])
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"OK {ORIGIN}: {size} entries, root ")
    newer = setup.append(20, "second")
    code, out, err = _verify(setup.node.url, state)  # the key comes from the saved state
    assert code == 0, err
    assert out.startswith(f"OK {ORIGIN}: {newer} entries")
    assert out.rstrip().endswith(f"consistent with size {size}")


def test_verify_without_a_key_is_a_one_line_error(setup: Setup) -> None:
    line = _one_line_error(*_verify(setup.node.url, setup.tmp_path / "fresh-state"))
    assert "--key" in line
    assert ORIGIN in line


def _tamper(db_path: Path, index: int) -> None:
    """Change one stored entry's bytes in place, keeping the column a BLOB."""
    with closing(sqlite3.connect(db_path, timeout=30)) as db, db:
        (data,) = db.execute("SELECT data FROM entries WHERE idx = ?", (index,)).fetchone()
        assert isinstance(data, bytes)
        altered = data.replace(b'"payloadType":"', b'"payloadType":"X', 1)
        assert altered != data
        db.execute("UPDATE entries SET data = ? WHERE idx = ?", (altered, index))


def test_verify_names_an_altered_entry(setup: Setup) -> None:
    state = setup.tmp_path / "state"
    setup.append(300, "honest")
    assert _verify(setup.node.url, state, setup.keys["log"])[0] == 0
    _tamper(setup.tmp_path / "node" / "custodes.db", TAMPERED)
    line = _one_line_error(*_verify(setup.node.url, state))
    assert f"entry {TAMPERED} " in line
    assert "altered" in line


def test_verify_detects_a_rewritten_history(setup: Setup) -> None:
    state = setup.tmp_path / "state"
    verified = setup.append(50, "original")
    assert _verify(setup.node.url, state, setup.keys["log"])[0] == 0
    setup.node.stop()
    # Same data dir, so the same log key, but a new database: a new history. The node
    # itself would refuse that (its high-water mark); a dishonest operator, who holds
    # the keys, deletes the mark too, and only outside verifiers can catch them.
    (Path(setup.env["CUSTODES_DATA_DIR"]) / "high-water.json").unlink()
    env = setup.env | {"CUSTODES_DATABASE_URL": f"sqlite:///{setup.tmp_path / 'other.db'}"}
    setup.node = NodeProcess(env, setup.tmp_path / "rewritten.log")
    with setup.node:
        setup.enrol()
        assert setup.append(verified + 10, "rewritten") > verified
        line = _one_line_error(*_verify(setup.node.url, state))
        assert "history was rewritten" in line
        code, _out, err = _verify(setup.node.url, setup.tmp_path / "new-state", setup.keys["log"])
        assert code == 0, err  # the rewritten log is self-consistent; only the memory differs
