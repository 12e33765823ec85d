"""``custodes federation``: found a roster from parties' key files, propose, sign, verify."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from tests.cli.test_cli import assert_one_line_error, custodes
from typer.testing import CliRunner

from custodes.cli.main import app
from custodes.federation.party import ROSTER_KEY_FILE
from custodes.federation.roster import parse_roster, verify_chain

runner = CliRunner()
CODES = {"GB": "member", "FR": "member", "DE": "member", "CA": "member", "AU": "partner"}


def _ok(*args: str) -> str:
    done = runner.invoke(app, list(args))
    assert done.exit_code == 0, done.output
    return done.output


def _found(tmp_path: Path) -> Path:
    """Every party prints its Party JSON; GB founds with two keys; the others sign in turn."""
    for i, (code, status) in enumerate(CODES.items()):
        printed = _ok(
            "federation", "party", "--data-dir", str(tmp_path / code), "--code", code,
            "--name", f"{code} institute", "--status", status,
            "--url", f"https://{code.lower()}.example:{8400 + i}",
            "--origin", f"{code.lower()}.example/log",
        )  # fmt: skip
        (tmp_path / f"{code}.json").write_text(printed)
    genesis = tmp_path / "chain" / "roster-1.json"
    genesis.parent.mkdir()
    _ok(
        "federation", "roster", "found", *(str(tmp_path / f"{c}.json") for c in CODES),
        "--key", str(tmp_path / "GB" / ROSTER_KEY_FILE),
        "--key", str(tmp_path / "FR" / ROSTER_KEY_FILE), "-o", str(genesis),
    )  # fmt: skip
    for code in ("DE", "CA"):
        _ok("federation", "roster", "sign", str(genesis), "--key", _key(tmp_path, code))
    return genesis


def _key(tmp_path: Path, code: str) -> str:
    return str(tmp_path / code / ROSTER_KEY_FILE)


def test_found_propose_sign_and_verify_a_chain(tmp_path: Path) -> None:
    genesis = _found(tmp_path)
    chain = genesis.parent
    v2 = chain / "roster-2.json"
    _ok(
        "federation", "roster", "propose", "--current", str(genesis), "--suspend", "CA",
        "--set-url", "GB", "https://gb2.example", "-o", str(v2),
    )  # fmt: skip
    for code in ("GB", "FR", "DE"):
        _ok("federation", "roster", "sign", str(v2), "--key", _key(tmp_path, code))
    shown = json.loads(_ok("federation", "roster", "verify", str(chain), "--output", "json"))
    assert [v["version"] for v in shown["chain"]] == [1, 2]
    roster = parse_roster(shown["roster"])
    assert roster.body.party("CA").status == "suspended"  # type: ignore[union-attr]
    assert roster.body.party("GB").urls == ["https://gb2.example"]  # type: ignore[union-attr]
    documents = [orjson.loads(p.read_bytes()) for p in (genesis, v2)]
    assert verify_chain(documents).version == 2  # the library agrees
    table = _ok("federation", "roster", "show", str(v2))
    assert "suspended" in table
    assert all(code in table for code in CODES)


def test_reinstate_and_rotate(tmp_path: Path) -> None:
    genesis = _found(tmp_path)
    v2 = tmp_path / "chain" / "roster-2.json"
    refused = runner.invoke(
        app,
        [
            "federation",
            "roster",
            "propose",
            "--current",
            str(genesis),
            "--rotate",
            "FR",
            "urls",
            "x",
            "-o",
            str(v2),
        ],
    )
    assert refused.exit_code == 1
    assert "--rotate FIELD is one of" in str(refused.exception)
    _ok(
        "federation", "roster", "propose", "--current", str(genesis), "--suspend", "AU",
        "--rotate", "FR", "name", "Institut", "-o", str(v2),
    )  # fmt: skip
    for code in ("GB", "FR", "DE"):
        _ok("federation", "roster", "sign", str(v2), "--key", _key(tmp_path, code))
    v3 = tmp_path / "chain" / "roster-3.json"
    _ok("federation", "roster", "propose", "--current", str(v2), "--reinstate", "AU",
        "-o", str(v3))  # fmt: skip
    for code in ("GB", "FR", "CA"):
        _ok("federation", "roster", "sign", str(v3), "--key", _key(tmp_path, code))
    shown = json.loads(_ok("federation", "roster", "verify", str(tmp_path / "chain"), "-o", "json"))
    roster = parse_roster(shown["roster"])
    assert roster.body.party("AU").status == "partner"  # type: ignore[union-attr]
    assert roster.body.party("FR").name == "Institut"  # type: ignore[union-attr]


def test_too_few_signatures_fail_naming_the_rule(tmp_path: Path) -> None:
    genesis = _found(tmp_path)
    v2 = tmp_path / "chain" / "roster-2.json"
    _ok("federation", "roster", "propose", "--current", str(genesis), "--remove", "AU",
        "-o", str(v2))  # fmt: skip
    _ok("federation", "roster", "sign", str(v2), "--key", _key(tmp_path, "GB"))
    done = custodes("federation", "roster", "verify", str(genesis), str(v2), cwd=tmp_path)
    assert_one_line_error(done, "rule: roster_quorum")


def test_a_genesis_missing_a_founder_fails(tmp_path: Path) -> None:
    genesis = _found(tmp_path)
    document = orjson.loads(genesis.read_bytes())
    document["signatures"] = document["signatures"][:3]
    genesis.write_bytes(orjson.dumps(document))
    done = custodes("federation", "roster", "verify", str(genesis), cwd=tmp_path)
    assert_one_line_error(done, "every founding member")


def test_show_needs_a_file_or_a_node(tmp_path: Path) -> None:
    done = custodes("federation", "roster", "show", cwd=tmp_path)
    assert_one_line_error(done, "FILE or --node")
