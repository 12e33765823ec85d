"""``custodes kill prepare``: a kill order signed offline with the principal's own key,
printed as the envelope the dashboard's paste box takes; mistakes are one line."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.cli.test_cli import assert_one_line_error, custodes

from custodes.ledger.dsse import EnvelopeSigner, parse_envelope, verify_envelope
from custodes.ledger.keys import entry_key_string
from custodes.registry.models import KillOrder
from custodes.registry.service import ORDER_TYPE

AGENT = "urn:custodes:gb:agent:trader"


def _key(tmp_path: Path) -> tuple[Path, EnvelopeSigner]:
    signer = EnvelopeSigner.generate()
    path = tmp_path / "regulator.key"
    path.write_text(entry_key_string("regulator-gb", signer) + "\n")
    return path, signer


def _prepare(tmp_path: Path, key: Path, *args: str) -> list[str]:
    return ["kill", "prepare", *args, "--as", "regulator:gb", "--key", str(key)]


def test_prepare_prints_an_order_signed_by_the_key(tmp_path: Path) -> None:
    key, signer = _key(tmp_path)
    argv = _prepare(tmp_path, key, "suspend", AGENT, "--reason", "flash crash", "--territory", "FR")
    done = custodes(*argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    envelope = parse_envelope(json.loads(done.stdout))
    assert envelope.payload_type == ORDER_TYPE
    lookup = {signer.keyid: signer.public_key}.get
    assert verify_envelope(envelope, lookup) == [signer.keyid]
    order = KillOrder.model_validate_json(envelope.payload)
    assert (order.op, order.agent_id, order.actor) == ("suspend", AGENT, "regulator:gb")
    assert (order.scope, order.territory, order.reason) == ("territorial", "FR", "flash crash")
    assert base64.b64encode(signer.seed()).decode() not in done.stdout


def test_each_prepare_is_a_fresh_order(tmp_path: Path) -> None:
    key, _ = _key(tmp_path)
    argv = _prepare(tmp_path, key, "reinstate", AGENT, "--reason", "ok", "--lifts", "order-0001")
    first, second = (custodes(*argv, cwd=tmp_path) for _ in range(2))
    orders = [
        KillOrder.model_validate_json(parse_envelope(json.loads(d.stdout)).payload)
        for d in (first, second)
    ]
    assert orders[0].lifts == orders[1].lifts == "order-0001"
    assert orders[0].order_id != orders[1].order_id


def test_mistakes_are_one_line(tmp_path: Path) -> None:
    key, _ = _key(tmp_path)
    bad_op = custodes(*_prepare(tmp_path, key, "pause", AGENT, "--reason", "r"), cwd=tmp_path)
    assert_one_line_error(bad_op, "suspend, revoke, reinstate")
    unlifted = custodes(*_prepare(tmp_path, key, "reinstate", AGENT, "--reason", "r"), cwd=tmp_path)
    assert_one_line_error(unlifted, "names the order it lifts")
    missing = tmp_path / "nowhere.key"
    no_key = custodes(*_prepare(tmp_path, missing, "suspend", AGENT, "--reason", "r"), cwd=tmp_path)
    assert_one_line_error(no_key, "cannot read key file")
