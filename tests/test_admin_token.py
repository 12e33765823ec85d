"""The admin token: the environment wins, then init's generated token, then the
development token (which then no longer works once init has generated one)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from custodes.admin_token import AdminToken, generate_admin_token
from custodes.api import create_app
from custodes.config import DEV_ADMIN_TOKEN, Settings


def _signers_call(settings: Settings, token: str) -> int:
    body = {"name": "k", "public_key": "A" * 43 + "="}
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/api/v1/admin/signers", json=body, headers={"Authorization": f"Bearer {token}"}
        )
    return response.status_code


def test_a_generated_token_replaces_the_development_token(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, origin="t.test/log")
    assert AdminToken.for_settings(settings).is_development
    token = generate_admin_token(tmp_path)
    assert token is not None
    assert generate_admin_token(tmp_path) is None  # never replaced, never shown again
    assert _signers_call(settings, DEV_ADMIN_TOKEN) == 403
    assert _signers_call(settings, token) != 403


def test_the_environment_token_wins(tmp_path: Path) -> None:
    generate_admin_token(tmp_path)
    settings = Settings(data_dir=tmp_path, admin_token="from-the-env-0123456789")
    admin = AdminToken.for_settings(settings)
    assert admin.source == "environment"
    assert admin.matches("from-the-env-0123456789")
    assert not admin.matches(DEV_ADMIN_TOKEN)
