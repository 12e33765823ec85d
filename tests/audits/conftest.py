"""The audit world, built once per module (real keys, a real tree and checkpoint)."""

from __future__ import annotations

import pytest

from tests.audits.world import AuditWorld, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> AuditWorld:
    return build_world(tmp_path_factory.mktemp("audit-world"))
