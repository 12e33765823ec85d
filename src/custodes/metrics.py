"""What the node's domains report to monitoring, without knowing who listens.

The ledger, the kill switch and federation call a ``Metrics`` at the moment something
happens (an append committed, a checkpoint signed, a witness that did not cosign, a
lease answered, an order issued). ``NULL_METRICS`` ignores it all: a node opened
without monitoring (the CLI, a test) pays one no-op call. The HTTP adapter passes a
Prometheus implementation (``custodes.api.metrics``), so no domain imports a metrics
library. Figures that are states rather than events (queue depth, tree size, stream
subscribers) are read when monitoring asks, not reported here.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NULL_METRICS", "Metrics", "NullMetrics"]


class Metrics(Protocol):
    def appended(self, entries: int, seconds: float) -> None:
        """A batch of ``entries`` was verified and durably sequenced in ``seconds``."""

    def checkpointed(self, seconds: float) -> None:
        """The tree grew and a checkpoint was signed, taking ``seconds``."""

    def witness_failed(self, witness: str) -> None:
        """``witness`` did not cosign the checkpoint it was asked to."""

    def lease_answered(self, outcome: str) -> None:
        """A lease request was answered: ``issued``, or the refusal's error code."""

    def order_issued(self, action: str) -> None:
        """A kill order (``suspend``, ``revoke``, ``reinstate``) was logged."""


class NullMetrics:
    def appended(self, entries: int, seconds: float) -> None:
        pass

    def checkpointed(self, seconds: float) -> None:
        pass

    def witness_failed(self, witness: str) -> None:
        pass

    def lease_answered(self, outcome: str) -> None:
        pass

    def order_issued(self, action: str) -> None:
        pass


NULL_METRICS: Metrics = NullMetrics()
