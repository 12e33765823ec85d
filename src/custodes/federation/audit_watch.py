"""AuditWatch: the leader's rounds over the alliance's audits (docs/design/0028).

Every ``CUSTODES_AUDIT_WATCH_INTERVAL`` seconds, on the leading worker only:

1. **Automatic recognition** (``CUSTODES_AUTO_RECOGNISE``): every attestation visible
   here or in a peer mirror on which this party has no decision is checked with the
   scheme's k member countersignatures; one that passes is recognised (a decision by
   the node, ``automatic``, and its VSA). One that fails is not refused (a refusal is a
   person's decision): its failures are kept for ``GET /api/v1/audits/recognitions``.
2. **Withdrawal propagation** (always): every recognition in force here whose ground is
   gone (attestation withdrawn, accreditation suspended or withdrawn wherever it was
   logged, a drift alert on the agent since the audit, the agent's digests changed) is
   withdrawn, logged with its reasons.
3. **The scheme**: a newer version a peer logged and this node verifies is adopted.

Each step reads its state from the tables (decisions are logged), so a round repeated
or interrupted by a restart does nothing twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import orjson
from sqlalchemy import select

from custodes.audits.service import AuditService
from custodes.audits.store import audit_schemes
from custodes.errors import CustodesError
from custodes.federation.audit_cases import AuditCases
from custodes.federation.mirror import PeerMirror
from custodes.node import Node
from custodes.store.db import read_tx

__all__ = ["AuditWatch", "open_audit_watch"]

log = logging.getLogger("custodes.audits")


class AuditWatch:
    def __init__(
        self,
        service: AuditService,
        cases: AuditCases,
        *,
        leading: Callable[[], bool],
        interval: float,
        auto_recognise: bool,
    ) -> None:
        self.service, self.cases = service, cases
        self._leading, self.interval, self.auto_recognise = leading, interval, auto_recognise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self._leading():
                continue
            try:
                self.round()
            except Exception:  # a transient database or mirror error: the next round retries
                log.exception("the audit watch round failed; retrying")

    def round(self) -> None:
        """One pass of the three steps (each step's failures do not stop the others)."""
        if self.service.cases is None or not self.service.in_alliance:
            return
        self.adopt_scheme()
        if self.auto_recognise:
            self.recognise()
        self.propagate_withdrawals()

    def recognise(self) -> list[str]:
        """Recognise what passes automatically; the ids recognised."""
        decided = self.service.decided_here()
        recognised = []
        now = self.service.clock()
        for found in self.cases.attestations():
            if found.id in decided or found.status != "active" or found.expires <= now:
                continue
            try:
                if self.service.auto_recognise(found) is not None:
                    recognised.append(found.id)
            except CustodesError as exc:
                log.warning("automatic recognition of %s failed: %s", found.id, exc.message)
        return recognised

    def propagate_withdrawals(self) -> list[str]:
        """Withdraw the recognitions in force here whose ground is gone; their ids."""
        withdrawn = []
        for row in self.service.in_force_here():
            reasons = self.cases.grounds(row, self.cases.attestation(row["attestation"]))
            if not reasons:
                continue
            self.service.withdraw_recognition(row, reasons)
            withdrawn.append(str(row["attestation"]))
            log.info("withdrew the recognition of %s: %s", row["attestation"], reasons)
        return withdrawn

    def adopt_scheme(self) -> int | None:
        """Adopt the next scheme version a peer logged (the newest, when this node has
        none yet), if it verifies here; one version per round."""
        current = self.service.scheme()
        want = None if current is None else current.version + 1
        found: tuple[int, str] | None = None
        for code, engine in self.cases.engines():
            if code == self.cases.here:
                continue
            query = select(audit_schemes.c.version, audit_schemes.c.document)
            if want is not None:
                query = query.where(audit_schemes.c.version == want)
            with read_tx(engine) as conn:
                row = conn.execute(query.order_by(audit_schemes.c.version.desc()).limit(1)).first()
            if row is not None and (found is None or row.version > found[0]):
                found = (int(row.version), str(row.document))
        if found is None:
            return None
        try:
            index: int | None = self.service.adopt_scheme(orjson.loads(found[1]))["index"]
        except CustodesError as exc:
            log.warning(
                "a peer's scheme version %d does not verify here: %s", found[0], exc.message
            )
            return None
        return index


def open_audit_watch(node: Node, mirror_of: Callable[[str], PeerMirror | None]) -> AuditWatch:
    """Give ``node.audits`` its case source (this DB and the mirrors) and its watch."""
    settings = node.settings
    trusted = settings.trusted_accreditors
    cases = AuditCases(node, mirror_of, trusted=None if trusted is None else frozenset(trusted))
    node.audits.cases = cases
    return AuditWatch(
        node.audits,
        cases,
        leading=lambda: node.is_leader,
        interval=settings.audit_watch_interval,
        auto_recognise=settings.auto_recognise,
    )
