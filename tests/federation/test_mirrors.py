"""The followers follow the roster: one mirror per active peer, reconfigured on change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from custodes.federation.mirrors import Mirrors
from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import Party, SignedRoster, found_roster
from custodes.federation.state import Federation
from tests.integration.procs import wait_until


def _party(root: Path, code: str, status: str = "member") -> Party:
    return node_party(
        root / code,
        code=code,
        name=code,
        status=status,  # type: ignore[arg-type]
        urls=["http://127.0.0.1:9"],  # nobody listens
        origin=f"{code.lower()}.example/log",
    )


def _roster(root: Path, parties: dict[str, str]) -> SignedRoster:
    found = [_party(root, code, status) for code, status in parties.items()]
    votes = [roster_signer(root / p.code) for p in found if p.status == "member"]
    return found_roster("t", found, votes, expires=datetime.now(UTC) + timedelta(days=1))


def test_a_mirror_per_active_peer_follows_each_roster_version(tmp_path: Path) -> None:
    federation = Federation("ZZ")
    federation.install(_roster(tmp_path, {"ZZ": "member", "YY": "member", "AU": "partner"}))
    mirrors = Mirrors(federation, tmp_path / "mirror", is_leader=lambda: True, interval=0.05)
    mirrors.start()
    try:
        assert mirrors.codes() == ["AU", "YY"]  # partners are looked up too; never itself
        wait_until("the follower reports YY unreachable", lambda: mirrors.error("YY"), 30)
        federation.install(_roster(tmp_path, {"ZZ": "member", "YY": "member", "XX": "member"}))
        assert mirrors.codes() == ["XX", "YY"]
        assert mirrors.get("AU") is None
    finally:
        mirrors.stop()
    assert mirrors.codes() == []
    assert sorted(p.name for p in (tmp_path / "mirror").iterdir()) == ["AU.db", "XX.db", "YY.db"]
