"""The causal order of merged slices: log order, refs across logs, clocks within skew.

Pure functions over built slices (the events' bytes are not what is tested here: the
scan and the bundle's verification test those).
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from custodes.forensics.models import Event, Incident, Skew, Slice
from custodes.forensics.order import build_timeline, key_of

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
INCIDENT = Incident(agents=["urn:custodes:gb:agent:a"], start=T0, end=T0 + timedelta(hours=1))


def _leaf(node: str, index: int) -> str:
    return hashlib.sha256(f"{node}:{index}".encode()).hexdigest()


def event(node: str, index: int, seconds: float, *refs: tuple[str, int]) -> Event:
    return Event(
        node=node,
        origin=f"{node.lower()}.example/log",
        index=index,
        leaf_hash=_leaf(node, index),
        data="e30=",
        payload_type="application/vnd.custodes.decision+json",
        kind="decision",
        agents=["urn:custodes:gb:agent:a"],
        at=T0 + timedelta(seconds=seconds),
        sequenced_at=T0 + timedelta(seconds=seconds),
        summary=f"{node} {index}",
        record={},
        refs=[
            {"origin": f"{n.lower()}.example/log", "index": i, "leaf_hash": _leaf(n, i)}
            for n, i in refs
        ],
        tree_size=100,
    )


def piece(node: str, events: list[Event], bound: float = 0.0, size: int = 100) -> Slice:
    return Slice(
        node=node,
        origin=f"{node.lower()}.example/log",
        tree_size=size,
        checkpoint=f"{node.lower()}.example/log\n{size}\nroot\n",
        events=events,
        skew=Skew(node=node, bound_s=bound, samples=3),
    )


def timeline(*slices: Slice, gaps: list[str] | None = None) -> Any:
    return build_timeline(
        INCIDENT,
        list(slices),
        roster={"version": 1},
        agents=INCIDENT.agents,
        gaps=gaps or [],
        asked_by=None,
        generated_at=T0,
    )


def keys(found: Any) -> list[str]:
    return [key_of(e) for e in found.events]


def test_one_log_is_in_index_order_whatever_its_clocks_say() -> None:
    found = timeline(piece("GB", [event("GB", 7, 30), event("GB", 3, 50), event("GB", 5, 10)]))
    assert keys(found) == ["GB:3", "GB:5", "GB:7"]
    assert found.edges == []


def test_a_ref_puts_its_target_first_across_logs_despite_clocks() -> None:
    # FR's clock runs ahead: its offer claims a later time than GB's answer to it.
    offer = event("FR", 4, 20)
    answer = event("GB", 9, 5, ("FR", 4))
    found = timeline(piece("GB", [answer, event("GB", 2, 1)]), piece("FR", [offer]))
    assert keys(found) == ["GB:2", "FR:4", "GB:9"]
    assert found.edges == [("GB:9", "FR:4")]
    assert found.origins == {"FR": "fr.example/log", "GB": "gb.example/log"}
    assert set(found.checkpoints) == {"FR", "GB"}


def test_without_refs_different_logs_go_by_time_then_node_then_index() -> None:
    found = timeline(
        piece("GB", [event("GB", 1, 10), event("GB", 2, 30)]),
        piece("FR", [event("FR", 1, 10), event("FR", 2, 20)]),
    )
    assert keys(found) == ["FR:1", "GB:1", "FR:2", "GB:2"]


def test_events_closer_than_the_skew_bounds_are_concurrent_unless_linked() -> None:
    found = timeline(
        piece("GB", [event("GB", 1, 10), event("GB", 2, 11.5, ("FR", 1))], bound=1.0),
        piece("FR", [event("FR", 1, 10.5), event("FR", 2, 30)], bound=1.0),
    )
    # GB:1 and FR:1 are 0.5 s apart with no path: concurrent. GB:2 answers FR:1: not.
    assert ("GB:1", "FR:1") in found.concurrent or ("FR:1", "GB:1") in found.concurrent
    assert all({"GB:2", "FR:1"} != set(p) for p in found.concurrent)
    # FR:2 is far from every GB event.
    assert all("FR:2" not in p for p in found.concurrent)
    # With no skew (bound 0) nothing is concurrent but identical times.
    exact = timeline(piece("GB", [event("GB", 1, 10)]), piece("FR", [event("FR", 1, 10.5)]))
    assert exact.concurrent == []


def test_duplicates_are_merged_and_a_clear_copy_wins() -> None:
    plain = event("GB", 1, 10)
    clear = plain.model_copy(update={"clear": {"salt": "s", "record": {"action": "buy"}}})
    found = timeline(piece("GB", [plain]), piece("GB", [clear, event("GB", 2, 11)]))
    assert keys(found) == ["GB:1", "GB:2"]
    assert found.events[0].clear is not None


def test_the_order_is_the_same_whatever_order_the_slices_come_in() -> None:
    slices = [
        piece(
            "GB",
            [
                event("GB", i, (i * 7) % 13, *([("FR", i - 1)] if i > 1 else []))
                for i in range(1, 8)
            ],
            bound=2,
        ),
        piece("FR", [event("FR", i, (i * 5) % 11) for i in range(0, 8)], bound=2),
        piece("DE", [event("DE", i, i * 1.5) for i in range(0, 6)], bound=0.5),
    ]
    first = timeline(*slices)
    shuffled = list(slices)
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        again = timeline(*shuffled)
        assert keys(again) == keys(first)
        assert again.edges == first.edges
        assert again.concurrent == first.concurrent
    position = {k: i for i, k in enumerate(keys(first))}
    for later, earlier in first.edges:
        assert position[earlier] < position[later]


def test_a_missing_ref_target_and_a_wrong_leaf_hash_are_gaps() -> None:
    answer = event("GB", 9, 5, ("FR", 4), ("DE", 1))
    wrong = event("FR", 4, 20).model_copy(update={"leaf_hash": "0" * 64})
    found = timeline(piece("GB", [answer]), piece("FR", [wrong]), gaps=["DE: unreachable"])
    assert found.edges == []
    assert found.gaps[0] == "DE: unreachable"
    assert any("leaf hash" in g for g in found.gaps)
    assert any("de.example/log entry 1" in g for g in found.gaps)


def test_a_ref_cycle_is_broken_by_time_and_named() -> None:
    found = timeline(
        piece("GB", [event("GB", 1, 10, ("FR", 1))]),
        piece("FR", [event("FR", 1, 20, ("GB", 1))]),
    )
    assert keys(found) == ["GB:1", "FR:1"]
    assert found.edges == [("FR:1", "GB:1")]
    assert any("cycle" in g for g in found.gaps)


def test_pages_against_different_checkpoints_are_named() -> None:
    found = timeline(
        piece("GB", [event("GB", 1, 10)], size=100), piece("GB", [event("GB", 2, 11)], size=120)
    )
    assert found.checkpoints["GB"].startswith("gb.example/log\n120\n")
    assert any("several checkpoints" in g for g in found.gaps)
    assert [s.node for s in found.skew] == ["GB"]
