"""The red-teaming repository's lifecycle side of the API (``/api/v1/redteam``).

Each step is signed here with the acting principal's key (``custodes.sdk.redteam``:
the act and its opening) and sent with its token. ``redteam_disclose`` and
``redteam_relabel`` take the shorthand recipient ``members``: the roster's members at
that moment. ``redteam_triage`` asks the node which agents the criteria match now and
signs exactly those. Reads send the token when there is one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from custodes.client.core import Auth, _Core
from custodes.errors import ConfigError
from custodes.ledger.canonical import canonical_dumps
from custodes.redteam.models import (
    Affects,
    DiscloseBody,
    RelabelBody,
    ReportBody,
    StatusBody,
    SummaryBody,
    TriageBody,
)
from custodes.redteam.signing import act_request, new_disclosure

__all__ = ["RedteamApi", "members_of"]

_BASE = "/api/v1/redteam"


def members_of(roster: dict[str, Any]) -> list[str]:
    """The member party codes of a ``GET /api/v1/federation/roster`` answer."""
    document = roster.get("document", roster)
    signed = document.get("signed", document)
    parties = signed.get("x-custodes-roster", {}).get("parties", [])
    members = sorted(p["code"] for p in parties if p.get("status") == "member")
    if not members:
        raise ConfigError("the node's roster names no members; name the recipients instead")
    return members


class RedteamApi(_Core):
    # -- writes ----------------------------------------------------------------------
    def _act(self, op: str, disclosure: str, body: BaseModel, tlp: str) -> dict[str, Any]:
        actor, key = self._signer()
        request = act_request(op, disclosure, body, key=key, actor=actor, tlp=tlp)
        path = (
            f"{_BASE}/disclosures" if op == "report" else f"{_BASE}/disclosures/{disclosure}/{op}"
        )
        answer: dict[str, Any] = self._json(
            "POST", path, content=canonical_dumps(request), auth=Auth.PRINCIPAL
        )
        return answer

    def redteam_report(self, body: ReportBody, disclosure: str | None = None) -> dict[str, Any]:
        """Report a vulnerability (a researcher or auditor); a new id unless given."""
        return self._act("report", disclosure or new_disclosure(), body, body.tlp)

    def redteam_triage(
        self,
        disclosure: str,
        *,
        severity: str,
        criteria: Affects | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Triage (a regulator of the origin): the affected agents are what the node finds
        for ``criteria`` (default: the report's ``affects``) now."""
        preview = self.redteam_affected(disclosure, criteria)
        body = TriageBody.model_validate(
            {
                "severity": severity,
                "criteria": preview["criteria"],
                "affected": preview["affected"],
                "note": note,
            }
        )
        return self._act("triage", disclosure, body, self._tlp_of(disclosure))

    def _recipients(self, recipients: Sequence[str]) -> tuple[str, ...]:
        if "members" not in recipients:
            return tuple(recipients)
        expanded = {r for r in recipients if r != "members"} | set(
            members_of(self._json("GET", "/api/v1/federation/roster"))
        )
        return tuple(sorted(expanded))

    def redteam_disclose(
        self,
        disclosure: str,
        *,
        tlp: str,
        recipients: Sequence[str],
        embargo_until: datetime,
        course_of_action: str,
        mitigations: Sequence[str] = (),
    ) -> dict[str, Any]:
        body = DiscloseBody.model_validate(
            {
                "tlp": tlp,
                "recipients": self._recipients(recipients),
                "embargo_until": embargo_until,
                "course_of_action": course_of_action,
                "mitigations": tuple(mitigations),
            }
        )
        return self._act("disclose", disclosure, body, tlp)

    def redteam_relabel(
        self, disclosure: str, *, tlp: str, recipients: Sequence[str], reason: str
    ) -> dict[str, Any]:
        body = RelabelBody.model_validate(
            {"tlp": tlp, "recipients": self._recipients(recipients), "reason": reason}
        )
        return self._act("relabel", disclosure, body, tlp)

    def redteam_status(self, disclosure: str, body: StatusBody) -> dict[str, Any]:
        """One agent's status, at its home node (its operator, or a re-test's result)."""
        return self._act("status", disclosure, body, self._tlp_of(disclosure))

    def redteam_summary(self, disclosure: str, body: SummaryBody) -> dict[str, Any]:
        return self._act("summary", disclosure, body, "clear")

    def _tlp_of(self, disclosure: str) -> str:
        return str(self.redteam_disclosure(disclosure)["tlp"])

    # -- reads -----------------------------------------------------------------------
    def redteam_affected(self, disclosure: str, criteria: Affects | None = None) -> dict[str, Any]:
        """``{"criteria", "affected"}``: the agents ``criteria`` match now."""
        params: dict[str, Any] = {}
        if criteria is not None:
            params = {k: list(v) or None for k, v in criteria.model_dump().items()}
        answer: dict[str, Any] = self._json(
            "GET", f"{_BASE}/disclosures/{disclosure}/affected", params=params, auth=Auth.PRINCIPAL
        )
        return answer

    def redteam_disclosures(
        self,
        *,
        stage: str | None = None,
        severity: str | None = None,
        agent_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        params = {
            "stage": stage,
            "severity": severity,
            "agent_id": agent_id,
            "limit": limit,
            "offset": offset,
        }
        answer: dict[str, Any] = self._json("GET", f"{_BASE}/disclosures", params=params)
        return answer

    def redteam_disclosure(self, disclosure: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._json("GET", f"{_BASE}/disclosures/{disclosure}")
        return answer

    def redteam_exposures(self, agent_id: str) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self._json("GET", f"{_BASE}/agents/{agent_id}/exposures")[
            "exposures"
        ]
        return answer
