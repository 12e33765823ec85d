"""Node: one member's log, keys and services, put together from ``Settings``.

Adapters (the API app, the CLI, the demo) open a Node; domain code never reads settings.
The node's first entry registers its own entry key, so every log starts by naming the
key that signs what the node itself issues.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine

from custodes.admin_token import AdminToken
from custodes.config import Settings
from custodes.killswitch.broadcast import OrderBroadcaster
from custodes.killswitch.leases import LeaseIssuer
from custodes.ledger.checkpoint import parse_checkpoint
from custodes.ledger.cosignature import CosignatureSigner
from custodes.ledger.dsse import key_thumbprint
from custodes.ledger.errors import CorruptEntry, IntegrityAlarm
from custodes.ledger.integrity import AlarmLatch, HighWaterMark
from custodes.ledger.keys import (
    load_or_create_cosigner,
    load_or_create_entry_signer,
    load_or_create_note_signer,
)
from custodes.ledger.note import NoteSigner, parse_note, parse_vkey
from custodes.ledger.service import LogService
from custodes.ledger.signers import SignerDirectory, signer_entry
from custodes.ledger.store import SqlLogStore
from custodes.ledger.witness import Witness
from custodes.registry.audit import AuditReport, LogAuditor
from custodes.registry.models import KillOrder
from custodes.registry.principals import TokenStore
from custodes.registry.queries import ProofCache, RegistryQueries
from custodes.registry.selectors import Covered
from custodes.registry.service import RegistryService
from custodes.store.db import open_engine, upgrade

__all__ = ["Node"]

log = logging.getLogger("custodes.node")


class Node:
    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.admin_token = AdminToken.for_settings(settings)
        self.engine = engine or open_engine(settings.db_url)
        upgrade(self.engine)
        self.log_signer: NoteSigner = load_or_create_note_signer(
            settings.log_key_file, settings.origin
        )
        self.cosigner: CosignatureSigner = load_or_create_cosigner(
            settings.witness_key_file, settings.cosigner_name
        )
        _, self.entry_signer = load_or_create_entry_signer(settings.node_key_file, "node")
        self.store = SqlLogStore(self.engine)
        self.signers = SignerDirectory(self.engine)
        self.alarm = AlarmLatch(settings.data_dir / "integrity-alarm.json")
        self.log = LogService(
            self.store,
            self.log_signer,
            self.signers,
            max_pending=settings.max_pending_entries,
            verify_threads=settings.verify_threads,
            alarm=self.alarm,
            high_water=HighWaterMark(settings.data_dir / "high-water.json"),
        )
        self.registry = RegistryService(
            self.engine, self.log, self.entry_signer, settings.jurisdiction
        )
        self.log.agent_status = self.registry.status
        self.log.halt_recorded = self.registry.halt_recorded
        self.queries = RegistryQueries(self.engine)
        self.tokens = TokenStore(self.engine)
        self.broadcaster = OrderBroadcaster()
        self.proofs = ProofCache(lambda index, size: self.log.inclusion(index=index, size=size))
        self.registry.on_order(self._publish_order)
        self.leases = LeaseIssuer(
            self.engine,
            self.signers,
            self.entry_signer,
            settings.origin,
            ttl_critical=settings.lease_ttl_critical,
            ttl_default=settings.lease_ttl_default,
        )
        self.witness = Witness(
            self.engine, self.cosigner, [parse_vkey(v) for v in settings.witnessed_logs]
        )
        self._stop = threading.Event()
        self._integrator = threading.Thread(
            target=self._integrate_loop, name="integrator", daemon=True
        )
        self._auditor = threading.Thread(target=self._audit_loop, name="auditor", daemon=True)

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        """Start sequencing and integration; first check the stored tree against what
        this node signed and its high-water mark. On a mismatch the node still starts,
        in alarm: it serves reads and refuses appends (see ``ledger.integrity``)."""
        if self.admin_token.is_development:
            log.warning(
                "this node accepts the publicly known development admin token; run "
                "`custodes init` in a new data directory or set CUSTODES_ADMIN_TOKEN"
            )
        self.log.sequencer.start()
        self.log.check_stored_tree()
        if not self.alarm.tripped:
            if self.store.sequenced_size() == 0:
                self.register_signer(f"node:{self.settings.origin}", self.entry_signer.public_key)
            self.log.integrate()
        self._integrator.start()
        if self.settings.audit_interval > 0:
            self._auditor.start()

    def close(self) -> None:
        self._stop.set()
        self.log.sequenced.set()
        for thread in (self._integrator, self._auditor):
            if thread.is_alive():
                thread.join(timeout=10)
        self.log.close()
        self.engine.dispose()

    def _integrate_loop(self) -> None:
        """Integrate soon after appends, and at least every checkpoint interval.

        The short delay gathers the appends of a burst into one checkpoint; the
        interval also picks up entries sequenced by other processes sharing the DB.
        """
        interval = self.settings.checkpoint_interval
        while not self._stop.is_set():
            woke = self.log.sequenced.wait(timeout=interval)
            if self._stop.is_set():
                return
            if woke:
                time.sleep(min(self.settings.integrate_delay, interval))
                self.log.sequenced.clear()
            if self.alarm.tripped:
                continue  # nothing more is signed until a person clears the alarm
            try:
                while self.log.integrate() is not None and not self._stop.is_set():
                    pass
            except IntegrityAlarm:
                pass  # the latch logged it; appends and checkpoints have stopped
            except Exception:  # keep integrating after a transient database error
                log.exception("integration failed; retrying in %.1fs", interval)

    def _audit_loop(self) -> None:
        while not self._stop.wait(self.settings.audit_interval):
            try:
                self.audit()
            except IntegrityAlarm:
                pass  # tripped and logged by audit()
            except Exception:  # a transient database error: try again next interval
                log.exception("the background audit failed; retrying later")

    def audit(self) -> AuditReport:
        """Audit the entries integrated since the last audit (``data_dir/audit.db``);
        a corrupt entry trips the integrity alarm."""
        target = open_engine(f"sqlite:///{(self.settings.data_dir / 'audit.db').resolve()}")
        try:
            auditor = LogAuditor(
                self.store, target, self.log_signer.verifier(), self.entry_signer.public_key
            )
            return auditor.run()
        except CorruptEntry as exc:
            raise self.alarm.trip(f"the background audit found {exc.message}", exc.detail) from exc
        finally:
            target.dispose()

    # -- operations ---------------------------------------------------------------
    def register_signer(self, name: str, public_key: bytes, status: str = "active") -> int:
        envelope, project = signer_entry(name, public_key, self.entry_signer, status)
        index = self.log.append_own(envelope, project)
        self.signers.forget(key_thumbprint(public_key))
        return index

    def _publish_order(
        self, index: int, order: KillOrder, envelope: dict[str, Any], covered: Covered
    ) -> None:
        # An order naming one agent is pushed as before selectors existed.
        dumped = order.model_dump(mode="json", exclude=set() if order.selector else {"selector"})
        event = {"index": index, "order": dumped, "envelope": envelope}
        self.broadcaster.publish_covering(covered, event)

    def served_checkpoint(self) -> bytes | None:
        """The checkpoint /log/checkpoint serves, with every cosignature collected for it.

        With a witness quorum configured, the newest checkpoint cosigned by at least that
        many witnesses; until one exists, the newest checkpoint.
        """
        size = None
        if self.settings.witness_quorum > 0:
            size = self.store.newest_cosigned(self.settings.witness_quorum)
        stored = self.store.checkpoint(size)
        if stored is None:
            return None
        lines = self.store.cosignature_lines(stored.size)
        return stored.note + "".join(lines).encode()

    def checkpoint_size(self, note: bytes) -> int:
        return parse_checkpoint(parse_note(note).text).size

    def vkeys(self) -> dict[str, str]:
        return {
            "log": self.log_signer.vkey(),
            "witness": self.cosigner.vkey(),
            "node_entry_keyid": self.entry_signer.keyid,
        }
