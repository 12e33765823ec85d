"""Node: one member's log, keys and services, put together from ``Settings``.

Adapters (the API app, the CLI, the demo) open a Node; domain code never reads settings.
The node's first entry registers its own entry key, so every log starts by naming the
key that signs what the node itself issues. Several nodes (API workers) may share one
PostgreSQL database: one leads the background jobs, and the others hear of the changes
they must not miss over LISTEN/NOTIFY (docs/design/0012).
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine

from custodes.admin_token import AdminToken
from custodes.audits.conformance import ConformanceTests
from custodes.audits.service import AuditService
from custodes.audits.store import AUDIT_TABLES  # noqa: F401 - registers the audit replays
from custodes.config import Settings, check_identity, pin_identity
from custodes.errors import CustodesError
from custodes.evals.index import EVAL_RESULTS
from custodes.federation.forwarded import OrderReceiver
from custodes.federation.forwarding import OrderForwarder
from custodes.federation.roster import load_genesis
from custodes.federation.rosterlog import RosterLog
from custodes.federation.state import Federation
from custodes.federation.views import SplitViews
from custodes.federation.wiring import configure_from_roster
from custodes.killswitch.broadcast import OrderBroadcaster
from custodes.killswitch.fanout import OrderFanout
from custodes.killswitch.inbox import OrderInbox
from custodes.killswitch.leases import LeaseIssuer
from custodes.killswitch.outbox import OrderOutbox
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
from custodes.ledger.prover import ProofCache
from custodes.ledger.readindex import DECISIONS, ReadIndex
from custodes.ledger.service import LogService
from custodes.ledger.signers import SignerDirectory, signer_entry
from custodes.ledger.store import SqlLogStore
from custodes.ledger.witness import Witness
from custodes.metrics import NULL_METRICS, Metrics
from custodes.redteam.retest import max_asr_for
from custodes.redteam.service import RedteamService
from custodes.registry.audit import AuditReport, LogAuditor
from custodes.registry.decisions import DecisionDisclosure
from custodes.registry.principals import TokenStore
from custodes.registry.queries import ProofCache as RecordProofCache
from custodes.registry.queries import RegistryQueries
from custodes.registry.service import RegistryService
from custodes.registry.sessions import SessionStore
from custodes.store.db import open_engine, upgrade
from custodes.store.leader import leadership_for
from custodes.store.notify import bus_for

__all__ = ["Node"]

log = logging.getLogger("custodes.node")
_INDEX_SLICE = 50_000  # entries indexed per integration round

# Workers sharing one database (docs/design/0012): a follower rings the leader when it
# sequenced entries, and the leader rings the followers when it tripped the alarm.
SEQUENCED_CHANNEL = "custodes_sequenced"
ALARM_CHANNEL = "custodes_alarm"


class Node:
    def __init__(  # noqa: PLR0915 - every part of a node is wired here, in order
        self, settings: Settings, engine: Engine | None = None, metrics: Metrics = NULL_METRICS
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        if settings.config_file.exists():
            check_identity(settings)  # before any key is read: the clearer message
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
        pin_identity(settings)  # the config file: written on the first start, then checked
        self.store = SqlLogStore(self.engine)
        self.bus = bus_for(self.engine)
        self.leadership = leadership_for(self.engine)
        self.signers = SignerDirectory(self.engine, self.bus)
        self.alarm = AlarmLatch(settings.data_dir / "integrity-alarm.json")
        self.log = LogService(
            self.store,
            self.log_signer,
            self.signers,
            max_pending=settings.max_pending_entries,
            verify_threads=settings.verify_threads,
            alarm=self.alarm,
            high_water=HighWaterMark(settings.data_dir / "high-water.json"),
            metrics=metrics,
            accept_plain_decisions=settings.accept_plain_decisions,
        )
        self.registry = RegistryService(
            self.engine, self.log, self.entry_signer, settings.jurisdiction
        )
        self.log.agent_status = self.registry.status
        self.log.halt_recorded = self.registry.halt_recorded
        self.disclosure = DecisionDisclosure(
            self.engine, self.log, self.registry, self.entry_signer
        )
        self.queries = RegistryQueries(self.engine)
        # Read side (docs/design/0009): indexes over the integrated log, proofs by size.
        self.read_index = ReadIndex(self.engine, [DECISIONS, EVAL_RESULTS])
        self.proofs = ProofCache(self.store)
        self.tokens = TokenStore(self.engine)
        self.sessions = SessionStore(self.engine, tokens=self.tokens)  # dashboard sign-ins
        self.broadcaster = OrderBroadcaster()
        self.record_proofs = RecordProofCache(
            lambda index, size: self.log.inclusion(index=index, size=size)
        )
        self.fanout = OrderFanout(
            self.broadcaster, self.engine, self.bus, self.registry.forget_status
        )
        self.registry.on_order(self.fanout.publish)
        self.leases = LeaseIssuer(
            self.engine,
            self.signers,
            self.entry_signer,
            settings.origin,
            ttl_critical=settings.lease_ttl_critical,
            ttl_default=settings.lease_ttl_default,
            metrics=metrics,
        )
        self.federation = Federation(settings.jurisdiction)
        self.conformance = ConformanceTests(  # kill-switch conformance tests (0028)
            self.engine,
            self.log,
            self.broadcaster,
            self.entry_signer,
            origin=settings.origin,
            actor=f"node:{settings.origin}",
        )
        self.audits = AuditService(  # docs/design/0028; its case source: api/app.py
            self.engine,
            self.log,
            self.registry,
            self.entry_signer,
            jurisdiction=settings.jurisdiction,
            origin=settings.origin,
            roster=lambda: self.federation.roster,
        )
        self.redteam = RedteamService(  # docs/design/0029; its agent source: api/app.py
            self.engine,
            self.log,
            self.registry,
            self.entry_signer,
            jurisdiction=settings.jurisdiction,
            origin=settings.origin,
            parties=self._party_codes,
        )
        self.redteam.attach_bus(self.bus)
        self.redteam.max_asr = self._redteam_max_asr
        self.witness = Witness(
            self.engine, self.cosigner, [parse_vkey(v) for v in settings.witnessed_logs]
        )
        self.roster_log = RosterLog(self.engine, self.log, self.entry_signer, self.federation)
        configure_from_roster(self)  # docs/design/0023: the witness trusts the roster's logs
        genesis = load_genesis(settings.roster_file) if settings.roster_file else None
        self.roster_log.load(genesis)
        self._wire_forwarding(settings)
        self.split_views = SplitViews(self.engine, self.log, self.entry_signer)
        self.witness.refuse = self.split_views.refusal
        self.witness.on_cosigned = self.split_views.observe_checkpoint
        self._stop = threading.Event()
        self._integrator = threading.Thread(
            target=self._integrate_loop, name="integrator", daemon=True
        )
        self._auditor = threading.Thread(target=self._audit_loop, name="auditor", daemon=True)
        self._alarm_shared = False
        self._coordinate()

    def _coordinate(self) -> None:
        """Wire this worker to the others sharing its database (no-ops on SQLite)."""
        self.bus.on(SEQUENCED_CHANNEL, lambda _message: self._poke_if_leading())
        self.bus.on(ALARM_CHANNEL, lambda _message: self._adopt_alarms())
        self.bus.on_resync(self._adopt_alarms)
        self.leadership.on_elected(self.log.sequenced.set)  # integrate what waited

    def _wire_forwarding(self, settings: Settings) -> None:
        """Cross-border orders (docs/design/0026): the outbox here, the inbox at home."""
        self.forwarder = OrderForwarder(
            self.federation,
            self.registry,
            OrderOutbox(self.engine),
            self.entry_signer,
            leading=lambda: self.is_leader,
            retry_initial=settings.forward_retry_initial,
            retry_max=settings.forward_retry_max,
            timeout=settings.forward_timeout,
        )
        inbox = OrderInbox(self.engine, self.registry)
        self.receiver = OrderReceiver(
            self.federation,
            self.registry,
            inbox,
            self.know_signer,
            lambda keyid: self.signers.public_key(keyid) is not None,
        )

    def _redteam_max_asr(self, _disclosure: str) -> float:
        """The re-test threshold of the common scheme in force here (or the default)."""
        scheme = self.audits.scheme()
        return max_asr_for(None if scheme is None else scheme.body)

    def _party_codes(self) -> set[str] | None:
        roster = self.federation.roster
        return None if roster is None else {p.code for p in roster.body.parties}

    def know_signer(self, name: str, public_key: bytes) -> None:
        """Log ``public_key`` as a signer unless it already is one (a roster regulator's)."""
        if self.signers.public_key(key_thumbprint(public_key)) is not None:
            return
        try:
            self.register_signer(name, public_key)
        except CustodesError as exc:
            if exc.code != "signer_exists":  # registered meanwhile by another request
                raise

    @property
    def is_leader(self) -> bool:
        """Whether this worker runs the background jobs (integration, witnessing, audit)."""
        return self.leadership.is_leader

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
            self.roster_log.persist_genesis()
            self.log.integrate()
            self.redteam.ensure_shared_objects()
        self.bus.start()
        self.leadership.start()  # on SQLite this process leads at once
        self._integrator.start()
        if self.settings.audit_interval > 0:
            self._auditor.start()

    @property
    def integrating(self) -> bool:
        """Whether the background integration (tree growth, checkpoints) is running."""
        return self._integrator.is_alive() and not self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        self.forwarder.stop()
        self.log.sequenced.set()
        for thread in (self._integrator, self._auditor):
            if thread.is_alive():
                thread.join(timeout=10)
        self.leadership.stop()
        self.bus.stop()
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
            if not self.is_leader:
                if woke:  # one ring per burst: the leader integrates what we sequenced
                    self.bus.tell(SEQUENCED_CHANNEL, {})
                continue
            if self.alarm.tripped:
                self._share_alarm()
                continue  # nothing more is signed until a person clears the alarm
            try:
                while self.log.integrate() is not None and not self._stop.is_set():
                    pass
            except IntegrityAlarm:
                pass  # the latch logged it; appends and checkpoints have stopped
            except Exception:  # keep integrating after a transient database error
                log.exception("integration failed; retrying in %.1fs", interval)
            if not self._stop.is_set():
                self._catch_up_read_indexes()

    def _catch_up_read_indexes(self) -> None:
        """Index what was integrated (reads catch up too; this keeps them quick). A long
        backlog (a log migrated to 0006) is taken a slice per round, so close stays quick."""
        try:
            self.read_index.catch_up_all(budget=_INDEX_SLICE)
        except Exception:  # a transient database error: the next round or a read retries
            log.exception("catching up the read indexes failed; retrying later")

    def _poke_if_leading(self) -> None:
        if self.is_leader:
            self.log.sequenced.set()

    def _share_alarm(self) -> None:
        """Tell the other workers once that the latch tripped, so they refuse appends too."""
        if not self._alarm_shared:
            self._alarm_shared = True
            self.bus.tell(ALARM_CHANNEL, {})

    def _adopt_alarms(self) -> None:
        """Trip this worker's latch with the alarms another worker recorded in the file."""
        path = self.settings.data_dir / "integrity-alarm.json"
        if not path.exists():
            return
        for alarm in AlarmLatch(path).alarms():
            reason = str(alarm.pop("reason"))
            if all(a["reason"] != reason for a in self.alarm.alarms()):
                self.alarm.trip(reason, alarm)

    def _audit_loop(self) -> None:
        while not self._stop.wait(self.settings.audit_interval):
            if not self.is_leader:
                continue
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
