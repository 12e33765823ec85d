"""Kill-switch conformance tests (``/api/v1/audits/killswitch-tests``, docs/design/0028)."""

from __future__ import annotations

from typing import Any

import orjson

from custodes.client.core import Auth, _Core

__all__ = ["ConformanceApi"]

_PATH = "/api/v1/audits/killswitch-tests"


class ConformanceApi(_Core):
    def killswitch_test(
        self, agent_id: str, *, deadline_ms: int | None = None, admin: bool = False
    ) -> dict[str, Any]:
        """Have the agent's home node test its kill switch; the logged result
        (``{"index", "record"}``). As a home regulator (token), or the admin."""
        body: dict[str, Any] = {"agent_id": agent_id}
        if deadline_ms is not None:
            body["deadline_ms"] = deadline_ms
        wait = 30.0 + (deadline_ms or 5_000) / 1000  # the node waits up to the deadline
        answer: dict[str, Any] = self._json(
            "POST",
            _PATH,
            content=orjson.dumps(body),
            auth=Auth.ADMIN if admin else Auth.PRINCIPAL,
            timeout=wait,
        )
        return answer

    def killswitch_tests(self, agent_id: str | None = None) -> list[dict[str, Any]]:
        """Logged kill-switch test results (for one agent), newest first."""
        found: list[dict[str, Any]] = self._json("GET", _PATH, params={"agent_id": agent_id})
        return found
