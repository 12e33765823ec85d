"""Gathering an incident's evidence from every member node (docs/design/0030).

``gather`` reads the signed roster in force at one node (``seed``), asks every member
(or the nodes the incident names) for its slice of the agents in the window, follows
the counterparties the clear records name to ``incident.depth``, pages through each
node's cursors and fetches the entries that decisions' refs name on other logs. What
cannot be had (a node down, an answer refused) is written in ``gaps``: a gather never
fails as a whole because one member did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from custodes.client.client import Client
from custodes.errors import CustodesError
from custodes.forensics.models import MAX_AGENTS, Incident, Slice, SliceRequest, Timeline
from custodes.forensics.order import build_timeline

__all__ = ["Gathered", "Progress", "forensics_slice", "gather", "members_of", "ordered"]

Progress = Callable[[str, int, int | None], None]
# Answer one member's asks here instead of over HTTP (a node gathering for its caller
# answers its own slice with the caller's entitlements): (member code, scan).
Local = tuple[str, Callable[[SliceRequest], Slice]]
_MAX_PAGES = 1_000  # per node and round: a runaway cursor stops here (and says so)


@dataclass(frozen=True)
class Gathered:
    """Every slice gathered (pages of one node are separate slices, all against one
    checkpoint), the roster read at the seed, the agents asked, what is missing."""

    slices: list[Slice]
    roster: dict[str, Any]
    agents: list[str]
    gaps: list[str]
    asked_by: str | None


def forensics_slice(client: Client, request: SliceRequest) -> Slice:
    """``POST /api/v1/forensics/slice``: one page of the node's slice."""
    body = orjson.dumps(request.model_dump(mode="json", exclude_none=True))
    answer = client._json("POST", "/api/v1/forensics/slice", content=body)
    return Slice.model_validate(answer)


def members_of(roster: Mapping[str, Any]) -> dict[str, list[str]]:
    """Member code -> its urls, from a roster as ``GET /api/v1/federation/roster`` serves
    it (or the bare signed document)."""
    document = roster.get("document", roster)
    signed = document.get("signed", document)
    parties = signed.get("x-custodes-roster", {}).get("parties", [])
    return {
        str(p["code"]): [str(u) for u in p.get("urls") or ()]
        for p in parties
        if p.get("status") == "member"
    }


def _home(agent_id: str) -> str | None:
    parts = agent_id.split(":")
    return parts[2].upper() if len(parts) == 5 and parts[:2] == ["urn", "custodes"] else None


class _Gatherer:
    def __init__(
        self,
        incident: Incident,
        *,
        nodes: dict[str, str],
        tokens: Mapping[str, str],
        progress: Progress | None,
        timeout: float,
        local: Local | None,
    ) -> None:
        self.incident, self.nodes, self.tokens = incident, nodes, tokens
        self.progress, self.timeout, self.local = progress, timeout, local
        self.slices: list[Slice] = []
        self.gaps: list[str] = []
        self.down: set[str] = set()
        self.clients: dict[str, Client] = {}
        self.sizes: dict[str, int] = {}  # code -> the tree size all its answers use

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def report(self, stage: str, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    def _ask(self, code: str, request: SliceRequest) -> Slice:
        """One page from ``code``, against the checkpoint its first answer used."""
        if request.cursor is None and code in self.sizes:
            request = request.model_copy(update={"tree_size": self.sizes[code]})
        if self.local is not None and self.local[0] == code:
            found = self.local[1](request)
        else:
            if code not in self.clients:
                self.clients[code] = Client(
                    self.nodes[code], token=self.tokens.get(code), timeout=self.timeout
                )
            found = forensics_slice(self.clients[code], request)
        if found.tree_size:
            self.sizes.setdefault(code, found.tree_size)
        return found

    def pages(self, code: str, request: SliceRequest) -> list[Slice]:
        """Every page of one node's answer; a failure becomes a gap."""
        found: list[Slice] = []
        asked = request
        for _ in range(_MAX_PAGES):
            try:
                page = self._ask(code, asked)
            except (CustodesError, ValueError) as exc:  # ValueError: an answer not a slice
                self.gaps.append(f"{code}: {exc}")
                if not found:
                    self.down.add(code)
                return found
            found.append(page)
            if page.next_cursor is None:
                return found
            asked = request.model_copy(update={"cursor": page.next_cursor, "indices": []})
        self.gaps.append(f"{code}: more than {_MAX_PAGES} pages; the rest was not gathered")
        return found

    def round(self, agents: list[str]) -> list[str]:
        """Ask every node about ``agents``; the counterparties they name."""
        named: set[str] = set()
        codes = [c for c in sorted(self.nodes) if c not in self.down]
        for done, code in enumerate(codes):
            self.report(f"slices from {code}", done, len(codes))
            for start in range(0, len(agents), MAX_AGENTS):
                request = SliceRequest(
                    agents=agents[start : start + MAX_AGENTS],
                    start=self.incident.start,
                    end=self.incident.end,
                )
                for page in self.pages(code, request):
                    self.slices.append(page)
                    named.update(page.counterparties)
        self.report("slices", len(codes), len(codes))
        return sorted(named)

    def refs(self) -> None:
        """Fetch the entries refs name that no slice holds yet (one ask per node)."""
        by_origin = {s.origin: s.node for s in self.slices}
        have = {(e.node, e.index) for s in self.slices for e in s.events}
        wanted: dict[str, set[int]] = {}
        for event in (e for s in self.slices for e in s.events):
            for ref in event.refs:
                code = by_origin.get(str(ref.get("origin")))
                index = ref.get("index")
                if code is None or not isinstance(index, int):
                    continue
                if (code, index) not in have:
                    wanted.setdefault(code, set()).add(index)
        for done, code in enumerate(sorted(wanted)):
            self.report("referenced entries", done, len(wanted))
            request = SliceRequest(
                agents=self.incident.agents[:1],
                start=self.incident.start,
                end=self.incident.end,
                indices=sorted(wanted[code])[:MAX_AGENTS],
                limit=1,
            )
            try:  # the first page alone: it carries the named entries
                self.slices.append(self._ask(code, request))
            except (CustodesError, ValueError) as exc:
                self.gaps.append(f"{code}: referenced entries not fetched: {exc}")
                continue
            got = {e.index for s in self.slices if s.node == code for e in s.events}
            for index in sorted(wanted[code] - got):
                self.gaps.append(f"{code}: the referenced entry {index} was not served")


def _nodes(incident: Incident, roster: Mapping[str, Any]) -> dict[str, str]:
    members = members_of(roster)
    if incident.nodes:
        return dict(incident.nodes)
    return {code: urls[0] for code, urls in members.items() if urls}


def gather(
    incident: Incident,
    *,
    seed: str,
    tokens: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    timeout: float = 30.0,
    roster: Mapping[str, Any] | None = None,
    own: Local | None = None,
    asked_by: str | None = None,
) -> Gathered:
    """Gather ``incident`` starting from the node at ``seed``.

    ``tokens``: member code -> API token for that node (the public view where absent);
    ``roster``: the roster as served, when the caller already holds it (else it is read
    at ``seed``); ``own``: answer one member's asks locally; ``asked_by``: the principal
    whose tokens were sent (recorded, not checked here).
    """
    if roster is None:
        with Client(seed, token=None, timeout=timeout) as client:
            roster = dict(client.roster())
    nodes = _nodes(incident, roster)
    gatherer = _Gatherer(
        incident,
        nodes=nodes,
        tokens=tokens or {},
        progress=progress,
        timeout=timeout,
        local=own,
    )
    for code in sorted(set(incident.nodes) - set(members_of(roster))):
        gatherer.gaps.append(f"{code}: not a member in the roster in force; asked anyway")
    try:
        asked: list[str] = []
        frontier = sorted(set(incident.agents))
        for depth in range(incident.depth + 1):  # depth 0: the incident's own agents
            if not frontier:
                break
            asked.extend(frontier)
            gatherer.report(f"depth {depth}", depth, incident.depth + 1)
            named = gatherer.round(frontier)
            frontier = [a for a in named if a not in asked]
        gatherer.refs()
    finally:
        gatherer.close()
    homes = {_home(a) for a in asked} - {None} - set(nodes)
    for home in sorted(h for h in homes if h is not None):
        gatherer.gaps.append(f"{home}: home of an agent asked about, but not among the nodes asked")
    return Gathered(
        slices=gatherer.slices,
        roster=dict(roster),
        agents=asked,
        gaps=gatherer.gaps,
        asked_by=asked_by,
    )


def ordered(incident: Incident, gathered: Gathered) -> Timeline:
    """What was gathered, merged in causal order (``forensics.order``), dated now."""
    return build_timeline(
        incident,
        gathered.slices,
        roster=gathered.roster,
        agents=gathered.agents,
        gaps=gathered.gaps,
        asked_by=gathered.asked_by,
        generated_at=datetime.now(UTC),
    )
