"""``custodes forensics verify`` and ``report`` on real bundles; ``timeline``'s input checks.

``timeline`` itself gathers from running nodes and is tested where the gatherer lives.
"""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from custodes.cli.main import app
from custodes.errors import BadRequest
from custodes.forensics.bundle import write_bundle
from tests.forensics.synthetic import SyntheticAlliance, synthetic_alliance


def _run(*args: str) -> Result:
    return CliRunner().invoke(app, ["forensics", *args])


@pytest.fixture(scope="module")
def alliance() -> SyntheticAlliance:
    return synthetic_alliance(24)


@pytest.fixture
def bundle(alliance: SyntheticAlliance, tmp_path: Path) -> Path:
    return write_bundle(alliance.timeline(), tmp_path / "bundle.json")


def _tamper(bundle: Path) -> str:
    """Flip one proof hash of the fifth event; return that event's key."""
    doc = orjson.loads(bundle.read_bytes())
    event = doc["events"][4]
    first = bytearray(bytes.fromhex(event["proof"][0]))
    first[-1] ^= 0x01
    event["proof"][0] = first.hex()
    bundle.write_bytes(orjson.dumps(doc))
    return f"{event['node']}:{event['index']}"


def test_verify_prints_what_it_checked(bundle: Path) -> None:
    done = _run("verify", str(bundle))
    assert done.exit_code == 0, done.output
    assert done.output.startswith("verified: 24 events from 4 members (CA, DE, FR, GB)")
    assert "16 member cosignatures" in done.output


def test_verify_names_the_tampered_entry_in_one_line_and_exits_1(bundle: Path) -> None:
    key = _tamper(bundle)
    done = _run("verify", str(bundle))
    assert done.exit_code == 1
    lines = done.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert (
        f"does not verify: {key}: inclusion proof does not lead to the checkpoint's root"
        in (lines[0])
    )


def test_verify_refuses_a_file_that_is_not_a_bundle(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    done = _run("verify", str(path))
    assert done.exit_code == 1
    assert "the bundle is not JSON" in done.output
    missing = _run("verify", str(tmp_path / "absent.json"))
    assert missing.exit_code == 1
    assert "cannot read the bundle" in missing.output


def test_verify_against_a_trusted_roster(
    alliance: SyntheticAlliance, bundle: Path, tmp_path: Path
) -> None:
    trusted = tmp_path / "genesis.json"
    trusted.write_bytes(orjson.dumps(alliance.roster.document))
    assert _run("verify", str(bundle), "--roster", str(trusted)).exit_code == 0
    other = synthetic_alliance(2).roster.document
    trusted.write_bytes(orjson.dumps(other))
    done = _run("verify", str(bundle), "--roster", str(trusted))
    assert done.exit_code == 1
    assert "roster: version 1 is neither the trusted roster" in done.output


def test_report_writes_html_beside_the_bundle(bundle: Path) -> None:
    done = _run("report", str(bundle))
    assert done.exit_code == 0, done.output
    html = bundle.with_suffix(".html").read_text()
    assert "Verified offline:" in html
    assert done.output.strip() == f"report: {bundle.with_suffix('.html')}"


def test_report_to_a_chosen_file(bundle: Path, tmp_path: Path) -> None:
    target = tmp_path / "incident.html"
    assert _run("report", str(bundle), "--out", str(target)).exit_code == 0
    assert target.read_text().startswith("<!DOCTYPE html>")


def test_report_of_a_tampered_bundle_says_so_and_exits_1(bundle: Path) -> None:
    key = _tamper(bundle)
    done = _run("report", str(bundle))
    assert done.exit_code == 1
    assert f"does not verify: {key}" in done.output
    html = bundle.with_suffix(".html").read_text()
    assert "This bundle does not verify:" in html
    assert "Verified offline" not in html


def test_report_of_an_unreadable_bundle_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(base64.b64encode(b"junk").decode())
    done = _run("report", str(path))
    assert done.exit_code == 1
    assert "cannot be read" in done.output
    assert not path.with_suffix(".html").exists()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--from", "2026-12-01T10:00:00", "--to", "2026-12-01T11:00:00Z"], "--from must be"),
        (["--from", "2026-12-01T11:00:00Z", "--to", "2026-12-01T10:00:00Z"], "--to must be after"),
        (
            ["--from", "2026-12-01T10:00:00Z", "--to", "2026-12-01T11:00:00Z", "--member", "gb"],
            "--member takes CODE=URL",
        ),
    ],
)
def test_timeline_refuses_bad_input_before_asking_any_node(
    args: list[str], reason: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = _run(
        "timeline",
        "--agent",
        "urn:custodes:gb:agent:trader-0",
        "--node",
        "http://127.0.0.1:9",
        "--out",
        str(out),
        *args,
    )
    assert isinstance(done.exception, BadRequest)
    assert reason in done.exception.message
    assert not out.exists()


def test_proofs_exports_each_entry_and_its_tlog_proof(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "proofs"
    done = _run("proofs", str(bundle), "--out", str(out))
    assert done.exit_code == 0, done.output
    doc = orjson.loads(bundle.read_bytes())
    first = doc["events"][0]
    name = f"{first['node']}-{first['index']}"
    assert (out / f"{name}.entry").read_bytes() == base64.b64decode(first["data"])
    proof = (out / f"{name}.tlog-proof").read_text()
    assert proof.startswith(f"c2sp.org/tlog-proof@v1\nindex {first['index']}\n")
    assert len(list(out.iterdir())) == 2 * len(doc["events"])


def test_proofs_of_a_tampered_bundle_are_refused(bundle: Path, tmp_path: Path) -> None:
    _tamper(bundle)
    done = _run("proofs", str(bundle), "--out", str(tmp_path / "proofs"))
    assert done.exit_code == 1
    assert not (tmp_path / "proofs").exists()
