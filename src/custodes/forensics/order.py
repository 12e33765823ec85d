"""Merging slices into one timeline, in causal order.

Two things are known for certain about order: within one log, an entry with a lower
index was sequenced first; and a decision whose ``refs`` name another log's entry came
after it (it answers it). Those are the edges of a graph; the timeline is a
topological order of it, ties broken by the time each record claims (``at``), then the
node's code, then the index — so the same slices always give the same timeline.

Two events of different nodes with no path between them are ordered only by their
clocks; when their times are closer than the two nodes' skew bounds together, that
order is not evidence, and the pair is listed in ``concurrent``. A ref cycle cannot
happen between honest logs (an entry can only name one that exists already); if one
is found it is broken at the earliest event by time and named in ``gaps``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from custodes.forensics.models import Event, Incident, RegistryState, Skew, Slice, Timeline

__all__ = ["build_timeline", "key_of"]


def key_of(event: Event) -> str:
    """An event's key: ``"GB:12"`` (member code, log index)."""
    return f"{event.node}:{event.index}"


def _merged_events(slices: Sequence[Slice]) -> dict[str, Event]:
    """Every event once (by node and index); a copy with clear text wins over one without."""
    found: dict[str, Event] = {}
    for piece in slices:
        for event in piece.events:
            key = key_of(event)
            held = found.get(key)
            if held is None or (held.clear is None and event.clear is not None):
                found[key] = event
    return found


def _checkpoints(slices: Sequence[Slice], gaps: list[str]) -> tuple[dict[str, str], dict[str, int]]:
    """Per node, the checkpoint of the largest tree size its slices were proven against."""
    sizes: dict[str, set[int]] = {}
    notes: dict[str, tuple[int, str]] = {}
    for piece in slices:
        sizes.setdefault(piece.node, set()).add(piece.tree_size)
        if piece.node not in notes or piece.tree_size > notes[piece.node][0]:
            notes[piece.node] = (piece.tree_size, piece.checkpoint)
    for node in sorted(sizes):
        if len(sizes[node]) > 1:
            listed = ", ".join(str(s) for s in sorted(sizes[node]))
            gaps.append(f"{node}: its pages were proven against several checkpoints ({listed})")
    return {n: note for n, (_, note) in sorted(notes.items())}, {
        n: size for n, (size, _) in notes.items()
    }


def _skews(slices: Sequence[Slice]) -> dict[str, Skew]:
    """Per node, the widest bound any of its slices gave."""
    found: dict[str, Skew] = {}
    for piece in slices:
        held = found.get(piece.node)
        if held is None or (piece.skew.bound_s, piece.skew.samples) > (
            held.bound_s,
            held.samples,
        ):
            found[piece.node] = piece.skew.model_copy(update={"node": piece.node})
    return dict(sorted(found.items()))


def _registry(slices: Sequence[Slice]) -> list[RegistryState]:
    """The registry states, once each; an agent's "unregistered" answers from nodes that
    do not hold it are dropped when some node holds its record."""
    held: dict[tuple[str, str, int], RegistryState] = {}
    missing: dict[str, RegistryState] = {}
    for piece in slices:
        for state in piece.registry:
            if state.event is None:
                missing.setdefault(state.agent_id, state)
            else:
                held.setdefault((state.agent_id, state.event.node, state.event.index), state)
    known = {agent for agent, _, _ in held}
    kept = [held[k] for k in sorted(held)]
    kept += [missing[a] for a in sorted(missing) if a not in known]
    return sorted(kept, key=lambda s: (s.agent_id, s.event.node if s.event else ""))


def _ref_edges(
    events: Mapping[str, Event], origins: Mapping[str, str], gaps: list[str]
) -> list[tuple[str, str]]:
    """``(from, to)`` for each ref whose target was gathered; a gap for each that was not."""
    by_origin = {origin: node for node, origin in origins.items()}
    edges: set[tuple[str, str]] = set()
    for key in sorted(events):
        for ref in events[key].refs:
            node = by_origin.get(str(ref.get("origin")))
            target = f"{node}:{ref.get('index')}"
            if node is None or target not in events:
                gaps.append(
                    f"{key} refers to {ref.get('origin')} entry {ref.get('index')}, "
                    "which was not gathered"
                )
                continue
            if events[target].leaf_hash != ref.get("leaf_hash"):
                gaps.append(f"{key} refers to {target} by a leaf hash that entry does not have")
                continue
            if target != key:
                edges.add((key, target))
    return sorted(edges)


def _tie(event: Event) -> tuple[datetime, str, int]:
    return (event.at, event.node, event.index)


def _order(
    events: Mapping[str, Event], edges: Iterable[tuple[str, str]], gaps: list[str]
) -> tuple[list[str], list[tuple[str, str]]]:
    """A topological order of log order and refs, ties by (at, node, index); the ref
    edges kept (those a broken cycle dropped are not)."""
    before: dict[str, set[str]] = {k: set() for k in events}  # key -> keys that come first
    chains: dict[str, list[str]] = {}
    for key in sorted(events, key=lambda k: (events[k].node, events[k].index)):
        chains.setdefault(events[key].node, []).append(key)
    for chain in chains.values():
        for earlier, later in itertools.pairwise(chain):
            before[later].add(earlier)
    refs = set(edges)
    for later, earlier in refs:
        before[later].add(earlier)
    after: dict[str, set[str]] = {k: set() for k in events}
    for key, firsts in before.items():
        for first in firsts:
            after[first].add(key)
    waiting = {k: len(v) for k, v in before.items()}
    ready = [(_tie(events[k]), k) for k, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    placed: list[str] = []
    done: set[str] = set()
    while len(placed) < len(events):
        if not ready:  # a cycle: release the earliest remaining event by time
            stuck = min((k for k in events if k not in done), key=lambda k: _tie(events[k]))
            dropped = sorted(f for f in before[stuck] if f not in done)
            gaps.append(f"a cycle of references through {stuck}; broken there (by time)")
            refs -= {(stuck, f) for f in dropped}
            heapq.heappush(ready, (_tie(events[stuck]), stuck))
            waiting[stuck] = 0
        _, key = heapq.heappop(ready)
        if key in done:
            continue
        placed.append(key)
        done.add(key)
        for following in sorted(after[key]):
            waiting[following] -= 1
            if waiting[following] == 0 and following not in done:
                heapq.heappush(ready, (_tie(events[following]), following))
    return placed, sorted(refs)


_PARTNERS = 3  # concurrent partners listed per event (the nearest later ones)
_SCAN = 256  # events looked at after each, in time order


def _concurrent(
    events: Mapping[str, Event],
    order: Sequence[str],
    edges: Iterable[tuple[str, str]],
    skews: Mapping[str, Skew],
) -> list[tuple[str, str]]:
    """Pairs of different nodes' events with no path between them whose times are
    within the sum of their nodes' skew bounds (earlier in the order first): for each
    event, its nearest ``_PARTNERS`` later partners among the next ``_SCAN`` events in
    time, so the list grows with the window, not with its square."""
    position = {k: i for i, k in enumerate(order)}
    preds: dict[str, set[str]] = {k: set() for k in events}
    last: dict[str, str] = {}
    for key in order:  # log order: each event's predecessor in its own log
        node = events[key].node
        if node in last:
            preds[key].add(last[node])
        last[node] = key
    for later, earlier in edges:
        preds[later].add(earlier)
    ancestors: dict[str, int] = {}
    for key in order:  # bitsets over positions, in causal order
        bits = 0
        for first in preds[key]:
            if position[first] < position[key]:
                bits |= ancestors[first] | (1 << position[first])
        ancestors[key] = bits

    def bound(event: Event) -> float:
        skew = skews.get(event.node)
        return 0.0 if skew is None else skew.bound_s

    widest = 2 * max((s.bound_s for s in skews.values()), default=0.0)
    by_time = sorted(events, key=lambda k: _tie(events[k]))
    pairs: set[tuple[str, str]] = set()
    for i, first in enumerate(by_time):
        a = events[first]
        found = 0
        # The nearest few later partners, among the next events in time: a busy window
        # has every event concurrent with thousands, and listing them all helps nobody
        # (and grows as the square of the window).
        for second in by_time[i + 1 : i + 1 + _SCAN]:
            b = events[second]
            gap = (b.at - a.at).total_seconds()
            if gap > widest:
                break
            if a.node == b.node or gap > bound(a) + bound(b):
                continue
            pa, pb = position[first], position[second]
            if ancestors[second] >> pa & 1 or ancestors[first] >> pb & 1:
                continue
            pairs.add((first, second) if pa < pb else (second, first))
            found += 1
            if found == _PARTNERS:
                break
    return sorted(pairs, key=lambda p: (position[p[0]], position[p[1]]))


def build_timeline(
    incident: Incident,
    slices: Sequence[Slice],
    *,
    roster: Mapping[str, Any],
    agents: Sequence[str],
    gaps: Sequence[str],
    asked_by: str | None,
    generated_at: datetime,
) -> Timeline:
    """The slices merged, deduplicated by (node, index) and put in causal order."""
    notes = list(gaps)
    events = _merged_events(slices)
    checkpoints, _ = _checkpoints(slices, notes)
    origins = {s.node: s.origin for s in sorted(slices, key=lambda s: s.node)}
    skews = _skews(slices)
    refs = _ref_edges(events, origins, notes)
    order, kept = _order(events, refs, notes)
    return Timeline(
        incident=incident,
        asked_by=asked_by,
        generated_at=generated_at,
        agents=list(agents),
        # The signed roster document itself, as a verifier reads it (a node serves it
        # wrapped with its version and digest).
        roster=dict(roster.get("document", roster)),
        checkpoints=checkpoints,
        origins=dict(sorted(origins.items())),
        events=[events[k] for k in order],
        registry=_registry(slices),
        skew=list(skews.values()),
        edges=kept,
        concurrent=_concurrent(events, order, kept, skews),
        gaps=notes,
    )
