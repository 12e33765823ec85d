"""The command line: key files, one-line errors a person can act on, no tracebacks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from custodes.admin_token import AdminToken
from custodes.config import DEV_ADMIN_TOKEN, Settings
from custodes.errors import ConfigError
from custodes.ledger.keys import parse_entry_key
from custodes.ledger.note import parse_private_key, parse_vkey


def custodes(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "custodes", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error:")
    assert fragment in lines[0]


def test_keys_generate_writes_a_private_key_and_prints_its_vkey(tmp_path: Path) -> None:
    done = custodes("keys", "generate", "gb.example/log", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    key_file = tmp_path / "gb.example_log.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    signer = parse_private_key(key_file.read_text().strip())
    assert parse_vkey(done.stdout.strip()) == signer.verifier()


def test_keys_generate_never_overwrites_a_key(tmp_path: Path) -> None:
    assert custodes("keys", "generate", "w", "--kind", "witness", cwd=tmp_path).returncode == 0
    before = (tmp_path / "w.key").read_text()
    done = custodes("keys", "generate", "w", "--kind", "witness", cwd=tmp_path)
    assert_one_line_error(done, "already exists")
    assert (tmp_path / "w.key").read_text() == before


def test_entry_keys_print_their_public_key(tmp_path: Path) -> None:
    done = custodes("keys", "generate", "agent-7", "--kind", "entry", cwd=tmp_path)
    name, signer = parse_entry_key((tmp_path / "agent-7.key").read_text().strip())
    assert name == "agent-7"
    assert f"keyid {signer.keyid}" in done.stdout


def test_verify_against_nothing_is_one_line(tmp_path: Path) -> None:
    done = custodes(
        "log", "verify", "http://127.0.0.1:9", "--state-dir", str(tmp_path), cwd=tmp_path
    )
    assert_one_line_error(done, "cannot fetch http://127.0.0.1:9/log/checkpoint")


def _init_without_admin_token(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``custodes init`` with no CUSTODES_ADMIN_TOKEN at all, so it generates one."""
    inherited = {k: v for k, v in os.environ.items() if k != "CUSTODES_ADMIN_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "custodes", "init"],
        cwd=cwd,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_refuses_the_development_admin_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CUSTODES_ADMIN_TOKEN"):
        Settings(environment="production", admin_token=DEV_ADMIN_TOKEN)
    with pytest.raises(ConfigError, match="custodes init"):  # no token at all
        AdminToken.for_settings(Settings(environment="production", data_dir=tmp_path / "none"))
    assert Settings(environment="production", admin_token="s3cret-token").admin_token
    production = {"CUSTODES_ENVIRONMENT": "production", "CUSTODES_DATA_DIR": str(tmp_path / "n")}
    done = custodes(
        "init", cwd=tmp_path, env={**production, "CUSTODES_ADMIN_TOKEN": DEV_ADMIN_TOKEN}
    )
    assert_one_line_error(done, "CUSTODES_ADMIN_TOKEN")
    done = _init_without_admin_token(tmp_path, production)  # init generates the token
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["admin_token"]


def test_init_generates_an_admin_token_shown_once_and_kept_hashed(tmp_path: Path) -> None:
    env = {"CUSTODES_DATA_DIR": str(tmp_path / "node")}
    first = _init_without_admin_token(tmp_path, env)
    assert first.returncode == 0, first.stderr
    token = json.loads(first.stdout)["admin_token"]
    stored = (tmp_path / "node" / "admin-token.sha256").read_text()
    assert token not in stored
    assert stat.S_IMODE((tmp_path / "node" / "admin-token.sha256").stat().st_mode) == 0o600
    settings = Settings(data_dir=tmp_path / "node")
    admin = AdminToken.for_settings(settings)
    assert admin.matches(token)
    assert not admin.matches(DEV_ADMIN_TOKEN)
    again = custodes("init", cwd=tmp_path, env=env)
    assert "admin_token" not in json.loads(again.stdout)  # shown once, never again


def test_serve_refuses_a_public_address_with_the_development_token(tmp_path: Path) -> None:
    env = {"CUSTODES_DATA_DIR": str(tmp_path / "node")}
    public = "0.0.0.0"  # noqa: S104 - the point: a public bind must be refused
    done = custodes("serve", "--host", public, "--port", "1", cwd=tmp_path, env=env)
    assert_one_line_error(done, "development admin token")
