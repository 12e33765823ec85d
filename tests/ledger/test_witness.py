"""tlog-witness add-checkpoint rules, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from custodes.errors import BadRequest, CustodesError, NotFound
from custodes.ledger import Checkpoint, ProofError, WitnessConflict
from custodes.ledger.checkpoint import sign_checkpoint
from custodes.ledger.cosignature import CosignatureSigner, verify_cosignature
from custodes.ledger.errors import NoteError
from custodes.ledger.merkle import EMPTY_ROOT, consistency_proof, leaf_hash, node_hash, root_of
from custodes.ledger.note import NoteSignature, NoteSigner, parse_note, parse_vkey
from custodes.ledger.witness import Witness, format_add_checkpoint
from custodes.store.db import open_engine, upgrade

ORIGIN = "peer.custodes.example/log"


class Log:
    """An in-memory log that can also lie: the party the witness must not trust blindly."""

    def __init__(self, signer: NoteSigner, entries: int = 0, origin: str = ORIGIN) -> None:
        self.signer = signer
        self.origin = origin
        self.leaves = [leaf_hash(b"e%d" % i) for i in range(entries)]

    def grow(self, count: int) -> None:
        start = len(self.leaves)
        self.leaves += [leaf_hash(b"e%d" % i) for i in range(start, start + count)]

    def note(self, size: int | None = None, root: bytes | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        root = root_of(self.leaves[:size]) if root is None else root
        return sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)

    def proof(self, old: int, new: int) -> list[bytes]:
        if old in (0, new):
            return []
        return consistency_proof(old, new, self._reader)

    def _reader(self, level: int, index: int) -> bytes:
        width = 1 << level
        return root_of(self.leaves[index * width : (index + 1) * width])

    def request(self, old: int, note: bytes | None = None) -> bytes:
        note = note or self.note()
        size = int(parse_note(note).text.split("\n")[1])
        return format_add_checkpoint(old, self.proof(old, size), note)


STRANGER = NoteSigner.generate("other/log")
IMPOSTOR = NoteSigner.generate(ORIGIN)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = open_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def log() -> Log:
    return Log(NoteSigner.generate(ORIGIN), entries=10)


@pytest.fixture
def witness(engine: Engine, log: Log) -> Witness:
    return Witness(engine, CosignatureSigner.generate("w.example/witness"), [log.signer.verifier()])


def _stored_size(witness: Witness) -> int:
    state = witness.state(ORIGIN)
    return 0 if state is None else state[0]


def test_cosigns_a_consistent_history_step_by_step(witness: Witness, log: Log) -> None:
    line = witness.add_checkpoint(log.request(0))
    text = parse_note(log.note()).text
    name, blob = line.removeprefix("— ").strip().split(" ")
    raw = base64.b64decode(blob)
    signature = NoteSignature(name, raw[:4], raw[4:])
    assert verify_cosignature(text, signature, parse_vkey(witness.vkey())) > 0
    log.grow(300)
    witness.add_checkpoint(log.request(10))
    assert _stored_size(witness) == 310
    witness.add_checkpoint(log.request(310))  # same size, same root: cosigned again
    assert _stored_size(witness) == 310


def test_a_stale_old_size_gets_409_with_the_stored_size(witness: Witness, log: Log) -> None:
    witness.add_checkpoint(log.request(0))
    log.grow(5)
    with pytest.raises(WitnessConflict) as caught:
        witness.add_checkpoint(log.request(3))
    assert caught.value.stored_size == 10
    assert caught.value.status == 409


def test_an_inconsistent_history_is_refused_and_changes_nothing(witness: Witness, log: Log) -> None:
    witness.add_checkpoint(log.request(0))
    forked = Log(log.signer, entries=0)
    forked.leaves = [leaf_hash(b"rewritten")] + log.leaves[1:] + [leaf_hash(b"x")] * 5
    with pytest.raises(ProofError):
        witness.add_checkpoint(forked.request(10))
    with pytest.raises(ProofError):  # same size, different root: a fork
        witness.add_checkpoint(format_add_checkpoint(10, [], forked.note(10)))
    assert witness.state(ORIGIN)[:2] == (10, root_of(log.leaves))  # type: ignore[index]


def test_a_junk_proof_is_refused(witness: Witness, log: Log) -> None:
    witness.add_checkpoint(log.request(0))
    log.grow(6)
    junk = [node_hash(b"a", b"b")] * len(log.proof(10, 16))
    with pytest.raises(ProofError):
        witness.add_checkpoint(format_add_checkpoint(10, junk, log.note()))
    assert _stored_size(witness) == 10


@pytest.mark.parametrize(
    ("make", "error", "status"),
    [
        (lambda log: log.request(0, Log(STRANGER, 3, "other/log").note()), NotFound, 404),
        (lambda log: log.request(0, Log(IMPOSTOR, 3).note()), NoteError, 403),
        (lambda log: format_add_checkpoint(11, [], log.note()), BadRequest, 400),
        (lambda log: log.request(0, log.note(0, root=b"\x01" * 32)), ProofError, 422),
        (lambda log: format_add_checkpoint(0, [EMPTY_ROOT], log.note()), ProofError, 422),
        (lambda log: b"old 0\n" + log.note(), BadRequest, 400),
        (lambda log: b"new 0\n\n" + log.note(), BadRequest, 400),
        (lambda log: b"old 01\n\n" + log.note(), BadRequest, 400),
        (lambda log: b"old 0\n!!\n\n" + log.note(), BadRequest, 400),
    ],
)
def test_bad_requests_get_their_status_and_write_nothing(
    witness: Witness, log: Log, make: object, error: type[CustodesError], status: int
) -> None:
    with pytest.raises(error) as caught:
        witness.add_checkpoint(make(log))  # type: ignore[operator]
    assert caught.value.status == status
    assert witness.state(ORIGIN) is None


def test_concurrent_requests_cannot_roll_the_witness_back(witness: Witness, log: Log) -> None:
    witness.add_checkpoint(log.request(0))
    requests = []
    for grow in (7, 9, 11, 13):
        log.grow(grow)
        requests.append(log.request(10))
    outcomes: list[str] = []
    lock = threading.Lock()

    def send(body: bytes) -> None:
        try:
            witness.add_checkpoint(body)
            result = "ok"
        except WitnessConflict:
            result = "409"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=send, args=(body,)) for body in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["409", "409", "409", "ok"]
    assert _stored_size(witness) in {17, 26, 37, 50}


def test_every_trusted_key_of_an_origin_counts(engine: Engine, log: Log) -> None:
    """A witness configured with two keys for one log (a rotation) accepts either."""
    second = NoteSigner.generate(ORIGIN)
    witness = Witness(
        engine,
        CosignatureSigner.generate("w.example/witness"),
        [log.signer.verifier(), second.verifier()],
    )
    witness.add_checkpoint(log.request(0))
    rotated = Log(second, entries=0)
    rotated.leaves = list(log.leaves)
    rotated.grow(3)
    witness.add_checkpoint(rotated.request(10))
    assert _stored_size(witness) == 13


def test_a_size_beyond_what_a_witness_can_store_is_bad_input(witness: Witness, log: Log) -> None:
    note = log.note(size=2**64 - 1, root=b"\x01" * 32)
    with pytest.raises(BadRequest) as refused:
        witness.add_checkpoint(format_add_checkpoint(0, [], note))
    assert refused.value.status == 400
    assert refused.value.code == "size_out_of_range"
    assert witness.state(ORIGIN) is None
