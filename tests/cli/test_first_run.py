"""A first hour with the command line: init writes custodes.toml, serve keeps to it,
every mistake is one line, and what used to mislead (signers add, rebuild anywhere) no
longer does."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from rich.console import Console
from tests.integration.procs import custodes_argv

from custodes.admin_token import AdminToken
from custodes.cli.banner import print_banner
from custodes.config import Settings
from custodes.ledger.dsse import EnvelopeSigner

BARE = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}


def custodes(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*custodes_argv(), *args],
        cwd=cwd,
        env={**BARE, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error:"), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def gb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a node initialised for GB (in ``node``)."""
    base = tmp_path_factory.mktemp("first-run")
    done = custodes(
        "init", "--jurisdiction", "GB", "--origin", "gb.first-run.test/log",
        "--data-dir", "node", cwd=base,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["admin_token"]
    assert "custodes serve --data-dir node" in done.stderr
    return base


def test_init_writes_the_nodes_identity_to_its_config_file(gb: Path) -> None:
    with (gb / "node" / "custodes.toml").open("rb") as handle:
        written = tomllib.load(handle)
    assert written == {"origin": "gb.first-run.test/log", "jurisdiction": "GB"}
    restarted = Settings(data_dir=gb / "node")  # no variables at all
    assert (restarted.jurisdiction, restarted.origin) == ("GB", "gb.first-run.test/log")


def test_init_again_is_harmless_with_the_same_values_and_refused_with_others(gb: Path) -> None:
    same = custodes("init", "--data-dir", "node", "--jurisdiction", "GB", cwd=gb)
    assert same.returncode == 0, same.stderr
    assert "admin_token" not in json.loads(same.stdout)
    one_line_error(
        custodes("init", "--data-dir", "node", "--jurisdiction", "FR", cwd=gb),
        "initialised with jurisdiction 'GB'",
        "--jurisdiction says 'FR'",
    )
    other_db = custodes("init", "--data-dir", "node", "--database-url", "sqlite:///x.db", cwd=gb)
    one_line_error(other_db, "already initialised with another database_url")


def test_serve_refuses_an_environment_that_changes_the_identity(gb: Path) -> None:
    env = {"CUSTODES_DATA_DIR": "node", "CUSTODES_JURISDICTION": "FR"}
    one_line_error(
        custodes("serve", "--port", "1", cwd=gb, env=env),
        "initialised with jurisdiction 'GB'",
        "CUSTODES_JURISDICTION says 'FR'",
    )


def test_serve_refuses_keys_of_another_origin(gb: Path, tmp_path: Path) -> None:
    legacy = tmp_path / "legacy"  # keys, but no config file (a node from before init wrote one)
    legacy.mkdir()
    (legacy / "log.key").write_bytes((gb / "node" / "log.key").read_bytes())
    env = {"CUSTODES_DATA_DIR": str(legacy), "CUSTODES_ORIGIN": "other.test/log"}
    one_line_error(
        custodes("serve", "--port", "1", cwd=tmp_path, env=env),
        "is the key of 'gb.first-run.test/log'",
        "CUSTODES_ORIGIN",
    )


def test_serve_refuses_a_database_holding_another_nodes_log(gb: Path, tmp_path: Path) -> None:
    other_db = f"sqlite:///{(gb / 'node' / 'custodes.db').resolve()}"
    env = {"CUSTODES_DATABASE_URL": other_db, "CUSTODES_ORIGIN": "fr.first-run.test/log"}
    one_line_error(
        custodes("serve", "--port", "1", "--data-dir", "fr", cwd=tmp_path, env=env),
        "the database holds the log of 'gb.first-run.test/log'",
    )


def test_the_banner_says_where_everything_is(gb: Path) -> None:
    settings = Settings(
        data_dir=gb / "node", database_url="postgresql://custodes:s3cret@db.example/custodes"
    )
    console = Console(record=True, width=200)
    print_banner(settings, "http://127.0.0.1:8400", AdminToken.for_settings(settings), console)
    shown = console.export_text()
    for fragment in (
        "http://127.0.0.1:8400",
        "gb.first-run.test/log",
        "GB",
        str((gb / "node").resolve()),
        "admin-token.sha256",
        "postgresql://custodes:***@db.example/custodes",
        "custodes registry principal regulator:gb regulator GB",
    ):
        assert fragment in shown, shown
    assert "s3cret" not in shown


@pytest.mark.parametrize(
    ("args", "env", "fragments"),
    [
        (["serve"], {"CUSTODES_JURISDICTION": "gb"}, ["jurisdiction (CUSTODES_JURISDICTION"]),
        (["init"], {"CUSTODES_WITNESS_QUORUM": "many"}, ["witness_quorum", "integer"]),
        (["registry", "agent", "list", "--node", "127.0.0.1:8400"], {}, ["http://"]),
        (["registry", "agent", "list", "--node", "http://127.0.0.1:9"], {}, ["127.0.0.1:9"]),
    ],
    ids=["bad-variable", "bad-number", "url-without-scheme", "node-unreachable"],
)
def test_mistakes_are_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], fragments: list[str]
) -> None:
    one_line_error(custodes(*args, cwd=tmp_path, env=env), *fragments)


def test_an_invalid_record_file_lists_its_failing_fields(tmp_path: Path) -> None:
    record = json.loads(custodes("registry", "agent", "template", cwd=tmp_path).stdout)
    del record["sector"]
    record["autonomy_level"] = 9
    (tmp_path / "agent.json").write_text(json.dumps(record))
    key = base64.b64encode(EnvelopeSigner.generate().public_key).decode()
    done = custodes(
        "registry", "agent", "register", "agent.json", "--public-key", key,
        "--as", "operator:acme", "--token", "t", "--key", "op.key", cwd=tmp_path,
    )  # fmt: skip
    line = one_line_error(done, "agent.json: ")
    assert "sector: field required" in line
    assert "autonomy_level: input should be less than or equal to 5" in line


def test_version_and_shell_completion(tmp_path: Path) -> None:
    shown = custodes("--version", cwd=tmp_path)
    assert (shown.returncode, shown.stdout.strip()) == (0, f"custodes {version('custodes')}")
    completion = {"_CUSTODES_COMPLETE": "complete_bash", "COMP_WORDS": "custodes sig"}
    done = custodes(cwd=tmp_path, env={**completion, "COMP_CWORD": "1"})
    assert done.stdout.split() == ["signers"]


def test_signers_add_is_gone_and_says_what_to_run(tmp_path: Path) -> None:
    key = base64.b64encode(EnvelopeSigner.generate().public_key).decode()
    env = {"CUSTODES_DATA_DIR": str(tmp_path / "node")}
    one_line_error(
        custodes("signers", "add", "agent-1", key, cwd=tmp_path, env=env),
        "custodes registry agent register",
    )
    assert not (tmp_path / "node").exists()  # nothing was created, nothing registered


def test_rebuild_outside_a_data_directory_is_refused(tmp_path: Path) -> None:
    one_line_error(custodes("registry", "rebuild", cwd=tmp_path), "holds no node")
    assert not (tmp_path / ".custodes").exists()  # no new, empty node that "equals"


def test_rebuild_in_the_data_directory_still_works(gb: Path) -> None:
    done = custodes("registry", "rebuild", cwd=gb, env={"CUSTODES_DATA_DIR": "node"})
    assert done.returncode == 0, done.stderr
    assert "NO" not in done.stdout
    as_json = custodes(
        "registry", "rebuild", "--output", "json", cwd=gb, env={"CUSTODES_DATA_DIR": "node"}
    )
    report = json.loads(as_json.stdout)
    assert report["equal"] is True
    assert report["tables"]
    assert all(t["live_rows"] == t["rebuilt_rows"] for t in report["tables"])
