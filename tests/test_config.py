"""Settings: arguments, then CUSTODES_* variables, then custodes.toml, then defaults; the
node's identity pinned by its config file; every invalid setting named on one line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from custodes.config import Settings, check_identity, pin_identity, write_config
from custodes.errors import ConfigError
from custodes.node import Node


@pytest.fixture(autouse=True)
def _no_custodes_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JURISDICTION", "ORIGIN", "DATA_DIR", "CHECKPOINT_INTERVAL", "WITNESS_NAME"):
        monkeypatch.delenv(f"CUSTODES_{name}", raising=False)


def _write(data_dir: Path, text: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "custodes.toml").write_text(text)


def test_the_file_sits_between_the_environment_and_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, 'jurisdiction = "GB"\ncheckpoint_interval = 3.0\nwitnessed_logs = ["a+1+B"]\n')
    settings = Settings(data_dir=tmp_path)
    assert (settings.jurisdiction, settings.checkpoint_interval) == ("GB", 3.0)
    assert settings.witnessed_logs == ["a+1+B"]
    assert settings.max_pending_entries == 20_000  # a default
    monkeypatch.setenv("CUSTODES_CHECKPOINT_INTERVAL", "0.5")
    assert Settings(data_dir=tmp_path).checkpoint_interval == 0.5
    assert Settings(data_dir=tmp_path, checkpoint_interval=7).checkpoint_interval == 7


def test_the_data_directory_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "node", 'jurisdiction = "CA"\n')
    monkeypatch.setenv("CUSTODES_DATA_DIR", str(tmp_path / "node"))
    assert Settings().jurisdiction == "CA"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("jurisdiction = GB\n", "is not valid TOML"),
        ('jurisdction = "GB"\n', "unknown setting 'jurisdction'"),
        ('admin_token = "secret"\n', "admin_token cannot be set in the config file"),
        ('data_dir = "/elsewhere"\n', "data_dir cannot be set in the config file"),
        (
            'jurisdiction = "gb"\n',
            "invalid setting jurisdiction (",
        ),
        ("checkpoint_interval = -1\n", "checkpoint_interval ("),
    ],
)
def test_a_bad_config_file_is_one_line_naming_the_problem(
    tmp_path: Path, text: str, fragment: str
) -> None:
    _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        Settings(data_dir=tmp_path)
    assert fragment in caught.value.message
    assert "\n" not in caught.value.message


def test_an_invalid_setting_names_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTODES_JURISDICTION", "gb")
    with pytest.raises(ConfigError, match=r"jurisdiction \(CUSTODES_JURISDICTION = 'gb'\)"):
        Settings(data_dir=tmp_path)
    monkeypatch.delenv("CUSTODES_JURISDICTION")
    _write(tmp_path, "jurisdiction = 'gb'\n")
    with pytest.raises(ConfigError, match=r"custodes\.toml = 'gb'"):
        Settings(data_dir=tmp_path)
    with pytest.raises(ConfigError, match="--verify-threads"):
        Settings(data_dir=tmp_path / "other", verify_threads=0)
    with pytest.raises(ConfigError) as caught:  # a secret is never repeated
        Settings(data_dir=tmp_path / "other", database_url=3)
    assert "database_url (--database-url)" in caught.value.message


def test_written_settings_read_back_and_stay_private(tmp_path: Path) -> None:
    given = Settings(
        data_dir=tmp_path,
        jurisdiction="DE",
        origin="de.example/log",
        database_url="postgresql://custodes:s3cret@db/custodes",
        witnesses=[{"url": "http://fr.example", "vkey": 'fr+1+A"quoted"'}],
    )
    path = write_config(given)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it may hold a database password
    again = Settings(data_dir=tmp_path)
    for name in ("jurisdiction", "origin", "database_url", "witnesses"):
        assert getattr(again, name) == getattr(given, name)
    assert "admin_token" not in path.read_text().replace("# ", "")


def test_the_environment_cannot_change_a_pinned_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin_identity(Settings(data_dir=tmp_path, jurisdiction="GB", origin="gb.example/log"))
    check_identity(Settings(data_dir=tmp_path))
    check_identity(Settings(data_dir=tmp_path, witness_name="gb.example/log/witness"))
    monkeypatch.setenv("CUSTODES_JURISDICTION", "FR")
    with pytest.raises(ConfigError) as caught:
        check_identity(Settings(data_dir=tmp_path))
    assert "initialised with jurisdiction 'GB'" in caught.value.message
    assert "CUSTODES_JURISDICTION says 'FR'" in caught.value.message
    with pytest.raises(ConfigError, match=r"--origin says 'fr\.example/log'"):
        check_identity(Settings(data_dir=tmp_path, jurisdiction="GB", origin="fr.example/log"))


def test_a_restart_without_variables_keeps_the_nodes_jurisdiction(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path / "node", jurisdiction="GB", origin="gb.example/log")
    node = Node(first)  # the first start writes custodes.toml
    node.close()
    restarted = Settings(data_dir=tmp_path / "node")
    assert (restarted.jurisdiction, restarted.origin) == ("GB", "gb.example/log")
    with pytest.raises(ConfigError, match="initialised with jurisdiction 'GB'"):
        Node(Settings(data_dir=tmp_path / "node", jurisdiction="FR"))
