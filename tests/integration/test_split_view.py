"""A node shows two histories to two witnesses; the other members catch it.

Three real member nodes (GB, FR, DE). GB and DE ask no witness to cosign their logs: the
test plays them, holding their real log keys (``data_dir/log.key``). For GB it signs two
checkpoints of the same size with different roots and gives each to a different witness
(FR, DE) with a valid consistency proof from the size that witness holds. For DE it
gives FR (which holds an older real tree) a checkpoint that extends it but is not a
prefix of the real tree GB's witness cosigned. Within the gossip interval both witnesses
log the evidence, raise the alert and refuse the log; the evidence verifies offline with
``custodes federation evidence verify``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from custodes.ledger.checkpoint import Checkpoint, sign_checkpoint
from custodes.ledger.merkle import consistency_proof, leaf_hash, root_of
from custodes.ledger.note import NoteSigner, parse_private_key
from custodes.ledger.witness import format_add_checkpoint
from tests.integration.alliance import Alliance, AllianceNode, running_alliance
from tests.integration.procs import ADMIN_TOKEN, fetch_checkpoint, leaf_hashes, run_cli, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

MEMBERS = {"GB": "member", "FR": "member", "DE": "member"}
GOSSIP_S = 0.3
DETECT_TIMEOUT_S = 60
MISBEHAVIOUR_TYPE = "application/vnd.custodes.misbehaviour+json"


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alliance]:
    root = tmp_path_factory.mktemp("split")
    # The test alone submits GB's and DE's checkpoints: those nodes ask no witness.
    quiet = {"witnesses": "[]", "ask_roster_witnesses": "false"}
    with running_alliance(
        root,
        parties=MEMBERS,
        settings={"gossip_interval": str(GOSSIP_S)},
        per_node={"GB": quiet, "DE": quiet},
    ) as running:
        for code in ("GB", "DE"):
            running[code].bootstrap()  # a few entries on each dishonest log
        yield running


def _log_key(node: AllianceNode) -> NoteSigner:
    return parse_private_key((node.data_dir / "log.key").read_text().strip())


def _reader(leaves: Sequence[bytes]) -> Any:
    return lambda level, index: root_of(leaves[index << level : (index + 1) << level])


def _sign(node: AllianceNode, leaves: Sequence[bytes]) -> bytes:
    checkpoint = Checkpoint(node.party.origin, len(leaves), root_of(leaves))
    return sign_checkpoint(checkpoint, _log_key(node))


def _submit(witness: AllianceNode, old: int, proof: Sequence[bytes], note: bytes) -> httpx.Response:
    return httpx.post(
        f"{witness.url}/witness/add-checkpoint",
        content=format_add_checkpoint(old, list(proof), note),
        timeout=10,
    )


def _extend(accused: AllianceNode, witness: AllianceNode, leaves: list[bytes], old: int) -> None:
    """Give ``witness`` the tree ``leaves`` of ``accused``'s log, proved from ``old``."""
    proof = consistency_proof(old, len(leaves), _reader(leaves)) if 0 < old < len(leaves) else []
    response = _submit(witness, old, proof, _sign(accused, leaves))
    assert response.status_code == 200, response.text


def _real_tree(node: AllianceNode) -> list[bytes]:
    def grown() -> int:
        checkpoint, _ = fetch_checkpoint(node.url, node.party.log_vkey)
        return checkpoint.size if checkpoint.size >= 3 else 0

    size = wait_until(f"{node.code}'s log has entries", grown, 30)
    return leaf_hashes(node.url, size)


def _alerts(node: AllianceNode) -> dict[str, Any]:
    response = httpx.get(f"{node.url}/api/v1/federation/alerts", timeout=5)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def _alert_on(node: AllianceNode, origin: str) -> dict[str, Any] | None:
    found = [a for a in _alerts(node)["alerts"] if a["origin"] == origin]
    return found[0] if found else None


def _wait_alert(node: AllianceNode, origin: str) -> dict[str, Any]:
    alert: dict[str, Any] = wait_until(
        f"{node.code} proves that {origin} showed a split view",
        lambda: _alert_on(node, origin),
        DETECT_TIMEOUT_S,
        interval=0.1,
    )
    return alert


def _logged_evidence(node: AllianceNode, index: int) -> dict[str, Any]:
    response = httpx.get(f"{node.url}/api/v1/entries/{index}", timeout=5)
    response.raise_for_status()
    envelope: dict[str, Any] = response.json()["entry"]
    assert envelope["payloadType"] == MISBEHAVIOUR_TYPE
    return envelope


def _verify_offline(tmp_path: Path, document: bytes, vkey: str) -> tuple[int, str]:
    path = tmp_path / "evidence.json"
    path.write_bytes(document)
    result = run_cli(["federation", "evidence", "verify", str(path), "--key", vkey])
    return result.returncode, result.stdout + result.stderr


def _assert_caught(
    alliance: Alliance, accused: AllianceNode, witnesses: Sequence[str], case: str, tmp: Path
) -> None:
    for code in witnesses:
        node = alliance[code]
        alert = _wait_alert(node, accused.party.origin)
        assert alert["open"], alert
        assert alert["case"] == case, alert
        envelope = _logged_evidence(node, alert["entry_index"])
        code_, out = _verify_offline(tmp, orjson.dumps(envelope), accused.party.log_vkey)
        assert code_ == 0, out
        assert out.startswith(f"OK split view of {accused.party.origin} ({case})"), out
        # Its own view is one of the two, cosigned by its own witness; the other came
        # from a peer (another witness's view, or the accused log's own).
        seen_by = alert["evidence"]["seen_by"]
        names = set(seen_by["first"] + seen_by["second"])
        assert f"{node.party.origin}/witness" in names, seen_by
        assert names <= {f"{alliance[w].party.origin}/witness" for w in witnesses}, seen_by


def test_same_size_different_roots_is_caught_by_both_witnesses(
    alliance: Alliance, tmp_path: Path
) -> None:
    gb, fr, de = alliance["GB"], alliance["FR"], alliance["DE"]
    real = _real_tree(gb)
    for witness in (fr, de):  # both see the honest history first
        _extend(gb, witness, real, 0)
    fork_a = [*real, leaf_hash(b"history A, entry 1"), leaf_hash(b"history A, entry 2")]
    fork_b = [*real, leaf_hash(b"history B, entry 1"), leaf_hash(b"history B, entry 2")]
    _extend(gb, fr, fork_a, len(real))
    _extend(gb, de, fork_b, len(real))

    _assert_caught(alliance, gb, ["FR", "DE"], "same-size", tmp_path)

    # The witnesses refuse GB's log from now on, naming the evidence.
    refused = _submit(fr, len(fork_a), [], _sign(gb, [*fork_a, leaf_hash(b"more")]))
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "origin_misbehaved"
    assert error["detail"]["entry_index"] == _alert_on(fr, gb.party.origin)["entry_index"]  # type: ignore[index]


def test_a_tree_that_is_not_a_prefix_is_caught(alliance: Alliance, tmp_path: Path) -> None:
    de, gb, fr = alliance["DE"], alliance["GB"], alliance["FR"]
    real = _real_tree(de)
    _extend(de, gb, real, 0)  # GB's witness holds DE's real tree
    kept = len(real) - 2
    _extend(de, fr, real[:kept], 0)  # FR's witness holds an older real tree
    forged = [*real[:kept], leaf_hash(b"a rewritten entry")]  # smaller, not a prefix
    _extend(de, fr, forged, kept)

    _assert_caught(alliance, de, ["GB", "FR"], "not-a-prefix", tmp_path)


def test_the_evidence_is_logged_once_and_an_admin_can_lift_the_refusal(
    alliance: Alliance, tmp_path: Path
) -> None:
    gb, fr = alliance["GB"], alliance["FR"]
    alert = _wait_alert(fr, gb.party.origin)
    url = f"{fr.url}/api/v1/admin/federation/alerts/{alert['id']}/resolve"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    bad = [
        httpx.post(url, json={"reason": "members voted"}, timeout=5),  # no admin token
        httpx.post(url, json={"reason": ""}, headers=admin, timeout=5),
        httpx.post(
            f"{fr.url}/api/v1/admin/federation/alerts/9999/resolve",
            json={"reason": "x"},
            headers=admin,
            timeout=5,
        ),
    ]
    assert [r.status_code for r in bad] == [401, 422, 404], [r.text for r in bad]
    assert all("error" in r.json() for r in bad)
    assert _alert_on(fr, gb.party.origin)["open"]  # type: ignore[index]

    resolved = httpx.post(url, json={"reason": "members voted to readmit"}, headers=admin)
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert not body["open"]
    assert body["resolution"] == "members voted to readmit"
    logged = httpx.get(f"{fr.url}/api/v1/entries/{body['resolution_index']}", timeout=5).json()
    assert logged["entry"]["payloadType"].endswith("misbehaviour-resolution+json")
    again = httpx.post(url, json={"reason": "twice"}, headers=admin, timeout=5)
    assert again.status_code == 409, again.text

    # No longer refused as misbehaved: the witness judges GB's checkpoint on its merits.
    answer = _submit(fr, 0, [], _sign(gb, [leaf_hash(b"x")]))
    assert answer.status_code == 409, answer.text  # it holds another size, as tlog-witness says
    assert answer.headers["content-type"].startswith("text/x.tlog.size")
    # One alert per pair, however many gossip rounds have passed since.
    origins = [a["origin"] for a in _alerts(fr)["alerts"]]
    assert origins.count(gb.party.origin) == 1, origins


def test_evidence_that_does_not_hold_is_refused_offline(alliance: Alliance, tmp_path: Path) -> None:
    gb, fr = alliance["GB"], alliance["FR"]
    alert = _wait_alert(fr, gb.party.origin)
    bundle = dict(alert["evidence"])
    bundle["second"] = bundle["first"]  # the same checkpoint twice: no split view
    status, out = _verify_offline(tmp_path, json.dumps(bundle).encode(), gb.party.log_vkey)
    assert status == 1, out
    assert "same root" in out, out
    wrong_key = fr.party.log_vkey
    status, out = _verify_offline(tmp_path, json.dumps(alert["evidence"]).encode(), wrong_key)
    assert status == 1, out
    assert "not the log" in out, out
