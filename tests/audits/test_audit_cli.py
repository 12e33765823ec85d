"""``custodes audit``: verify attestations and VSAs offline; sign and verify the scheme."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from custodes.audits.attestation import countersign
from custodes.audits.models import ACCREDITATION_TYPE
from custodes.audits.scheme import example_scheme
from custodes.audits.vsa import build_vsa, sign_vsa, verifier_id
from custodes.cli.main import app
from custodes.errors import CustodesError
from custodes.federation.party import ROSTER_KEY_FILE
from custodes.ledger.dsse import sign_envelope
from custodes.ledger.keys import load_or_create_entry_signer
from tests.audits.test_vsa import _decision
from tests.audits.world import AuditWorld
from tests.cli.test_cli import assert_one_line_error, custodes

runner = CliRunner()


def _write(path: Path, document: Any) -> Path:
    path.write_bytes(orjson.dumps(document))
    return path


@pytest.fixture
def files(world: AuditWorld, tmp_path: Path) -> dict[str, Path]:
    envelope = countersign(world.envelope, world.roster_world.regulators["FR"])
    return {
        "attestation": _write(tmp_path / "att.json", envelope.to_json()),
        "roster": _write(tmp_path / "roster.json", world.roster.document),
        "grant": _write(tmp_path / "grant.json", world.grant.model_dump(mode="json")),
    }


def _run(*args: str) -> Any:
    return runner.invoke(app, ["audit", *args])


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_verify_prints_subjects_scheme_evidence_and_countersigners(
    world: AuditWorld, files: dict[str, Path]
) -> None:
    done = _run(
        "verify", str(files["attestation"]), "--accreditation", str(files["grant"]),
        "--roster", str(files["roster"]), "-o", "json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    record = orjson.loads(done.stdout)
    assert record["countersigned by"] == ["FR"]
    assert record["scheme"].startswith("custodes-common version 1")
    assert len(record["evidence"]) == 4
    assert record["subjects"][0].startswith("model:model-gb-1 sha256:")
    assert record["expires"].startswith(str((world.now + timedelta(days=364)).date()))


def test_verify_with_the_auditor_key_and_jsonl(
    world: AuditWorld, files: dict[str, Path], tmp_path: Path
) -> None:
    lines = tmp_path / "bundle.intoto.jsonl"
    lines.write_bytes(world.envelope.to_bytes() + b"\n" + world.envelope.to_bytes() + b"\n")
    key = world.grant.auditor_key or ""
    done = _run("verify", str(lines), "--auditor-key", key)
    assert done.exit_code == 0, done.output
    assert done.stdout.count("verified: OK") == 2


def test_each_failed_check_is_one_line(
    world: AuditWorld, files: dict[str, Path], tmp_path: Path
) -> None:
    statement = orjson.loads(world.envelope.payload)
    statement["predicate"]["agent"]["operator"] = "operator:acme-holdings"  # tampered
    tampered = dict(world.envelope.to_json())
    tampered["payload"] = base64.b64encode(orjson.dumps(statement)).decode()
    path = _write(tmp_path / "tampered.json", tampered)
    done = _run("verify", str(path), "--accreditation", str(files["grant"]))
    assert done.exit_code == 1
    lines = _error_lines(done.output)
    assert [line.split(":")[1].strip() for line in lines] == ["signature", "conflict_of_interest"]
    done = _run("verify", str(files["attestation"]))
    assert done.exit_code == 1
    assert _error_lines(done.output) == [
        "error: signature: no auditor key: give the accreditation grant or the auditor key"
    ]


def test_a_file_that_is_not_an_envelope_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{}")
    with pytest.raises(CustodesError, match="DSSE envelope"):
        runner.invoke(app, ["audit", "verify", str(path)], catch_exceptions=False)
    done = custodes("audit", "verify", str(path), cwd=tmp_path)  # the installed entry point
    assert_one_line_error(done, "DSSE envelope")


def test_verify_a_vsa_with_the_roster_and_party(
    world: AuditWorld, files: dict[str, Path], tmp_path: Path
) -> None:
    decision = _decision(world)
    vsa = build_vsa(
        decision=decision,
        verifier_id=verifier_id("FR"),
        attestation_digest=decision.attestation,
        attestation_entry=decision.attestation_entry,
        scheme=world.scheme,
        time_verified=world.now,
    )
    node = load_or_create_entry_signer(world.roster_world.data_dir("FR") / "node.key", "node")[1]
    path = _write(tmp_path / "vsa.json", sign_vsa(vsa, node).to_json())
    done = _run("verify", str(path), "--roster", str(files["roster"]), "--party", "FR")
    assert done.exit_code == 0, done.output
    assert "verified: OK" in done.stdout
    assert "CUSTODES_FINANCE_RECOGNISED_FR" in done.stdout
    done = _run("verify", str(path), "--roster", str(files["roster"]), "--party", "DE")
    assert done.exit_code == 1
    assert _error_lines(done.output)[0].startswith("error: signature:")


def test_sign_and_verify_the_scheme(
    world: AuditWorld, files: dict[str, Path], tmp_path: Path
) -> None:
    body = example_scheme(issued=world.now).model_dump(mode="json", by_alias=True)
    path = _write(tmp_path / "scheme.json", body)
    for code in ("GB", "FR"):
        key = world.roster_world.data_dir(code) / ROSTER_KEY_FILE
        done = _run("scheme", "sign", str(path), "--key", str(key))
        assert done.exit_code == 0, done.output
    done = _run("scheme", "verify", str(path), "--roster", str(files["roster"]))
    assert done.exit_code == 1
    assert _error_lines(done.output) == [
        "error: scheme_signatures: the scheme has valid signatures by 2 members (FR, GB); "
        "roster version 1 needs 3"
    ]
    _run(
        "scheme",
        "sign",
        str(path),
        "--key",
        str(world.roster_world.data_dir("DE") / ROSTER_KEY_FILE),
    )
    done = _run("scheme", "verify", str(path), "--roster", str(files["roster"]), "-o", "json")
    assert done.exit_code == 0, done.output
    record = orjson.loads(done.stdout)
    assert (record["scheme"], record["version"]) == ("custodes-common", 1)
    assert record["requirements"][0].startswith("finance/critical: core 1.0.0")


def test_the_grant_may_be_given_as_its_logged_envelope(
    world: AuditWorld, files: dict[str, Path], tmp_path: Path
) -> None:
    envelope = sign_envelope(
        ACCREDITATION_TYPE,
        world.grant.model_dump_json().encode(),
        [world.roster_world.regulators["GB"]],
    )
    grant = _write(tmp_path / "grant-entry.json", envelope.to_json())
    done = _run("verify", str(files["attestation"]), "--accreditation", str(grant))
    assert done.exit_code == 0, done.output
    suspend = world.grant.model_copy(update={"op": "suspend", "reason": "review"})
    path = _write(tmp_path / "suspend.json", suspend.model_dump(mode="json"))
    with pytest.raises(CustodesError, match="not the grant"):
        runner.invoke(
            app, ["audit", "verify", str(files["attestation"]), "--accreditation", str(path)],
            catch_exceptions=False,
        )  # fmt: skip
