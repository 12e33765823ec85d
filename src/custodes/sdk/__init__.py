"""What an agent (and its operator's tooling) embeds.

* ``Guard``: wraps each side-effecting action; refuses without a valid lease or under a
  kill order; runs the safe-state hook once per halt and records the halt. Fails closed.
* ``DecisionRecorder``: signed decisions, spooled to disk first, delivered exactly once.
* ``sign_committed_decision``: a decision signed by the agent as the public log keeps it
  (metadata and a salted commitment) with its opening, for ``Client.append``;
  ``sign_decision``: a plain (version 1) record, clear text in the public log.
* ``Counterparty``: before acting with another agent, its registry status, the lease it
  presents and its recognised attestation for the sector, verified against the roster;
  cached for half its lease; refusals recorded. ``TradeDesk``: a trade logged on both
  sides, each decision naming the other's entry; ``stitch`` links the two logs.
* The node's API itself is ``custodes.client.Client``; the guard, the recorder and the
  lease keeper talk to the node through it.
* Test doubles for users' own tests live in ``custodes.demo.fakes`` (FakeClock, FakeNode).
"""

from custodes.sdk.counterparty import Counterparty, CounterpartyRefused, Verdict
from custodes.sdk.decisions import sign_committed_decision, sign_decision
from custodes.sdk.guard import Guard, GuardState, Halted, HaltReason, KillOrder, KillOrderError
from custodes.sdk.issuers import IssuerKeys, UnverifiedOrder, registry_lookup
from custodes.sdk.leases import (
    Lease,
    LeaseError,
    LeaseRefused,
    lease_request,
    request_lease,
    verify_lease,
)
from custodes.sdk.recorder import DecisionRecorder, EntryAppender
from custodes.sdk.spool import SpoolError
from custodes.sdk.trade import TradeDesk, linked_entry, stitch

__all__ = [
    "Counterparty",
    "CounterpartyRefused",
    "DecisionRecorder",
    "EntryAppender",
    "Guard",
    "GuardState",
    "HaltReason",
    "Halted",
    "IssuerKeys",
    "KillOrder",
    "KillOrderError",
    "Lease",
    "LeaseError",
    "LeaseRefused",
    "SpoolError",
    "TradeDesk",
    "UnverifiedOrder",
    "Verdict",
    "lease_request",
    "linked_entry",
    "registry_lookup",
    "request_lease",
    "sign_committed_decision",
    "sign_decision",
    "stitch",
    "verify_lease",
]
