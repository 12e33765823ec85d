"""A GB agent trades with an FR agent across a real two-member alliance (GB, FR nodes
served over HTTP, mirroring each other): both sides logged, each naming the other's
entry; then FR withdraws its recognition and the next trade is refused, and recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from custodes.client import Client
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.payloads import EntryRef
from custodes.sdk.counterparty import REFUSED_ACTION, Counterparty, CounterpartyRefused
from custodes.sdk.recorder import DecisionRecorder
from custodes.sdk.trade import LinkedEntry, TradeDesk, linked_entry, stitch
from tests.integration.procs import wait_until
from tests.sdk.trade_world import SECTOR, TradeWorld, trade_world

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _recognised_everywhere(world: TradeWorld, home: str, agent_id: str) -> None:
    digests = world[home].digests(agent_id)
    for code in ("GB", "FR"):
        world[code].decide(agent_id, digests=digests)
    for at, of in (("GB", "FR"), ("FR", "GB")):
        world.mirrored(at, of, world[of].node.store.sequenced_size() - 1)


def _logged(client: Client, ref: EntryRef) -> LinkedEntry:
    """The entry at ``ref`` as its own log serves it (leaf hash recomputed here)."""
    served = client.entry(ref.index)
    return linked_entry(ref.origin, ref.index, served["entry"])


def test_a_trade_is_logged_on_both_sides_cross_referenced_then_refused_once_withdrawn(
    tmp_path: Path,
) -> None:
    with trade_world(tmp_path) as world:
        gb_key, fr_key = EnvelopeSigner.generate(), EnvelopeSigner.generate()
        buyer = world["GB"].enrol("buyer", gb_key, operating=("FR",))
        seller = world["FR"].enrol("seller", fr_key, operating=("GB",))
        _recognised_everywhere(world, "GB", buyer)
        _recognised_everywhere(world, "FR", seller)
        with world["GB"].client() as at_gb, world["FR"].client() as at_fr:
            recorder = DecisionRecorder(at_gb, buyer, gb_key, tmp_path / "spool", committed=False)
            try:
                a = TradeDesk(at_gb, gb_key, Counterparty(at_gb, world.roster, buyer, recorder))
                b = TradeDesk(at_fr, fr_key, Counterparty(at_fr, world.roster, seller, None))
                seller_lease = world["FR"].lease(seller, fr_key)
                buyer_lease = world["GB"].lease(buyer, gb_key)

                offer = a.offer(seller, seller_lease, SECTOR, "buy 100 EUR/GBP at 0.86")
                accept = b.accept(offer.ref, buyer, buyer_lease, SECTOR, "sell 100 at 0.86")
                confirm = a.confirm(accept.ref, seller, seller_lease, SECTOR, "settled")

                gb_side = [_logged(at_gb, offer.ref), _logged(at_gb, confirm.ref)]
                fr_side = [_logged(at_fr, accept.ref)]
                # Each side's entry names the other's exact leaf hash, as the other log has it.
                assert fr_side[0].refs == (gb_side[0].ref,)
                assert gb_side[1].refs == (fr_side[0].ref,)
                assert gb_side[0].ref == offer.ref
                assert fr_side[0].ref == accept.ref
                assert (offer.ref.origin, accept.ref.origin) == (
                    "gb.trade.test/log",
                    "fr.trade.test/log",
                )
                links = stitch(gb_side, fr_side)
                assert [(x.source, x.target, x.found) for x in links] == [
                    (confirm.ref, accept.ref, True),
                    (accept.ref, offer.ref, True),
                ]
                assert confirm.verdict.cached  # checked once for the offer, within half a lease

                index = world["FR"].decide(seller, "withdraw", reasons=("its new model drifts",))
                world.mirrored("GB", "FR", index)
                fresh = TradeDesk(at_gb, gb_key, Counterparty(at_gb, world.roster, buyer, recorder))
                with pytest.raises(CounterpartyRefused) as refused:
                    fresh.offer(seller, world["FR"].lease(seller, fr_key), SECTOR, "buy again")
                assert recorder.flush(30)
            finally:
                recorder.close()
            reasons = refused.value.verdict.reasons
            assert [r.condition for r in reasons] == ["withdrawn"]
            assert "its new model drifts" in reasons[0].reason
            actions = wait_until(
                "GB's log holds the buyer's recorded refusal",
                lambda: _actions(at_gb, buyer) if REFUSED_ACTION in _actions(at_gb, buyer) else [],
                30,
            )
            # The offer and the confirmation (committed: their kind shows), then the
            # refusal; the refused offer itself was never logged.
            assert actions == ["decision", "decision", REFUSED_ACTION]


def _actions(client: Client, agent: str) -> list[str]:
    size = int(client.checkpoint_note().split(b"\n", 2)[1])
    return [d.action for d in client.decisions_between(0, size) if d.agent == agent]
