"""The alliance roster: a chain of TUF root metadata with the parties in an extra field.

Each version is a TUF ``root.json`` (TUF spec v1.0.34 4.3) whose ``signed`` part holds,
under ``x-custodes-roster``, every party of the alliance (docs/design/0023)::

    {"signed": {"_type": "root", "spec_version": "1.0.31", "version": N,
                "expires": "2027-12-03T00:00:00Z", "consistent_snapshot": false,
                "keys": {KEYID: {"keytype": "ed25519", "scheme": "ed25519",
                                 "keyval": {"public": HEX}}},
                "roles": {"root": {"keyids": [...], "threshold": k}, "targets": ...,
                          "snapshot": ..., "timestamp": ...},
                "x-custodes-roster": {"alliance": ..., "parties": [...]}},
     "signatures": [{"keyid": KEYID, "sig": HEX}]}

The ``root`` role's keys are the members' roster keys (one vote per member; partners have
none) and its threshold is more than two thirds of them (``floor(2n/3) + 1``). A later
version counts only when signed by a threshold of the *trusted* version's keys and of its
own (TUF 5.3.4), with a version exactly one higher (5.3.5). The genesis is signed by every
founding member: TUF checks version 1 only against itself, so "all founders" is our rule.

KEYID is hex SHA-256 of the canonical JSON of the key object, as TUF requires; signatures
are hex Ed25519 over the canonical JSON of ``signed``. The documents hold no floats and
every string is printable, so RFC 8785 and OLPC canonical JSON (python-tuf's) agree byte
for byte, and python-tuf verifies the chain as is (tests/federation/test_roster_tuf.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from custodes.errors import BadRequest, ConfigError
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.ed25519 import verify_strict

__all__ = [
    "EXTENSION",
    "Party",
    "PartyRegulator",
    "RosterBody",
    "RosterError",
    "SignedRoster",
    "build_roster",
    "found_roster",
    "key_id",
    "load_genesis",
    "parse_roster",
    "quorum_of",
    "sign_roster",
    "verify_chain",
    "verify_genesis",
    "verify_next",
]

EXTENSION = "x-custodes-roster"
SPEC_VERSION = "1.0.31"
_ROLES = ("root", "targets", "snapshot", "timestamp")
_TIME = "%Y-%m-%dT%H:%M:%SZ"
PartyStatus = Literal["member", "partner", "suspended", "removed"]


class RosterError(BadRequest):
    """A roster that does not verify; ``code`` names the failed rule."""

    code = "roster_invalid"
    status = 422


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=4096)


class PartyRegulator(_Model):
    """A regulator principal a party vouches for (its id and signing key)."""

    id: str = Field(pattern=r"^regulator:[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1, max_length=256)
    public_key: str = Field(min_length=44, max_length=44)  # raw Ed25519, base64


class Party(_Model):
    """One party of the alliance, as the roster names it.

    ``status``: ``member`` (votes on the roster, issues kill orders), ``partner`` (look-ups,
    joint testing, threat intelligence; no orders, no vote), ``suspended`` (kept on the
    roster, trusted for nothing new) or ``removed``.
    """

    code: str = Field(pattern=r"^[A-Z]{2}$")
    name: str = Field(min_length=1, max_length=256)
    status: PartyStatus
    urls: list[str] = Field(default_factory=list, max_length=8)
    origin: str = Field(min_length=1, max_length=256)
    log_vkey: str = Field(min_length=1, max_length=512)  # signed-note vkey (checkpoints)
    witness_vkey: str = Field(min_length=1, max_length=512)  # tlog-cosignature vkey
    entry_key: str = Field(min_length=44, max_length=44)  # node entry key, raw base64
    roster_key: str | None = Field(default=None, min_length=44, max_length=44)
    regulators: list[PartyRegulator] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _votes(self) -> Party:
        if self.status == "member" and self.roster_key is None:
            raise ValueError(f"member {self.code} needs a roster_key (its vote)")
        if self.status in ("member", "partner") and not self.urls:
            raise ValueError(f"party {self.code} needs at least one node URL")
        return self

    @property
    def url(self) -> str:
        """The party's first node URL, without a trailing slash."""
        return self.urls[0].rstrip("/")

    @property
    def active(self) -> bool:
        return self.status in ("member", "partner")

    def entry_public_key(self) -> bytes:
        return base64.b64decode(self.entry_key)


class RosterBody(_Model):
    """What ``x-custodes-roster`` holds: the alliance's name and its parties."""

    alliance: str = Field(min_length=1, max_length=256)
    parties: list[Party] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _unique(self) -> RosterBody:
        for what in ("code", "origin"):
            values = [getattr(p, what) for p in self.parties]
            if len(set(values)) != len(values):
                raise ValueError(f"two parties share one {what}")
        ids = [r.id for p in self.parties for r in p.regulators]
        if len(set(ids)) != len(ids):
            raise ValueError("one regulator id is vouched for twice")
        return self

    def party(self, code: str) -> Party | None:
        return next((p for p in self.parties if p.code == code), None)

    def members(self) -> list[Party]:
        return [p for p in self.parties if p.status == "member"]

    def regulator(self, principal_id: str) -> tuple[Party, PartyRegulator] | None:
        for party in self.parties:
            for reg in party.regulators:
                if reg.id == principal_id:
                    return party, reg
        return None


def quorum_of(members: int) -> int:
    """More than two thirds of ``members``: 3 of 4, 4 of 5 (reference/federation.md 0)."""
    return (2 * members) // 3 + 1


def _key_object(public_key: bytes) -> dict[str, Any]:
    return {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": public_key.hex()}}


def key_id(public_key: bytes) -> str:
    """TUF KEYID: hex SHA-256 of the canonical JSON of the key object."""
    return hashlib.sha256(canonical_dumps(_key_object(public_key))).hexdigest()


def _raw_key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise RosterError(f"{what} is not base64", code="roster_invalid") from exc
    if len(raw) != 32:
        raise RosterError(f"{what} is not a 32-byte Ed25519 key", code="roster_invalid")
    return raw


@dataclass(frozen=True)
class SignedRoster:
    """One roster version as signed: the TUF document and its parsed parties."""

    document: dict[str, Any]
    body: RosterBody

    @property
    def signed(self) -> dict[str, Any]:
        return dict(self.document["signed"])

    @property
    def version(self) -> int:
        return int(self.document["signed"]["version"])

    @property
    def expires(self) -> datetime:
        return _parse_time(self.document["signed"]["expires"])

    @property
    def threshold(self) -> int:
        return int(self.document["signed"]["roles"]["root"]["threshold"])

    @property
    def root_keys(self) -> dict[str, bytes]:
        """The root role's keys (the members' votes) by KEYID."""
        keys = self.document["signed"]["keys"]
        return {k: bytes.fromhex(keys[k]["keyval"]["public"]) for k in self._root_keyids()}

    def _root_keyids(self) -> list[str]:
        return list(self.document["signed"]["roles"]["root"]["keyids"])

    def signed_bytes(self) -> bytes:
        return canonical_dumps(self.document["signed"])

    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical signed part: two versions N differ iff this does."""
        return "sha256:" + hashlib.sha256(self.signed_bytes()).hexdigest()

    def to_bytes(self) -> bytes:
        return canonical_dumps(self.document)

    def signers(self) -> set[str]:
        """KEYIDs of root keys whose signature verifies over this version (each once)."""
        return _valid_signers(self, self.root_keys)

    def party(self, code: str) -> Party | None:
        return self.body.party(code)


def _parse_time(text: Any) -> datetime:
    try:
        return datetime.strptime(str(text), _TIME).replace(tzinfo=UTC)
    except ValueError as exc:
        raise RosterError(
            f"expires {text!r} is not YYYY-MM-DDTHH:MM:SSZ", code="roster_invalid"
        ) from exc


def build_roster(
    body: RosterBody, *, version: int, expires: datetime, threshold: int | None = None
) -> dict[str, Any]:
    """An unsigned roster document for ``body`` (signatures empty)."""
    keys: dict[str, Any] = {}
    keyids: list[str] = []
    for party in body.members():
        assert party.roster_key is not None  # a member always has one (Party._votes)
        raw = _raw_key(party.roster_key, f"{party.code}'s roster key")
        kid = key_id(raw)
        keys[kid] = _key_object(raw)
        keyids.append(kid)
    if not keyids:
        raise RosterError("a roster needs at least one member", code="roster_invalid")
    k = threshold if threshold is not None else quorum_of(len(keyids))
    role = {"keyids": sorted(keyids), "threshold": k}
    signed = {
        "_type": "root",
        "spec_version": SPEC_VERSION,
        "version": version,
        "expires": expires.astimezone(UTC).strftime(_TIME),
        "consistent_snapshot": False,
        "keys": keys,
        "roles": {name: dict(role) for name in _ROLES},
        EXTENSION: body.model_dump(mode="json", exclude_none=True),
    }
    return {"signed": signed, "signatures": []}


def sign_roster(document: Mapping[str, Any], signer: EnvelopeSigner) -> dict[str, Any]:
    """``document`` with ``signer``'s signature added (replacing an earlier one by it)."""
    kid = key_id(signer.public_key)
    sig = signer.sign(canonical_dumps(document["signed"])).sig.hex()
    others = [s for s in document.get("signatures", []) if s.get("keyid") != kid]
    return {"signed": document["signed"], "signatures": [*others, {"keyid": kid, "sig": sig}]}


def found_roster(
    alliance: str,
    parties: Sequence[Party],
    founders: Iterable[EnvelopeSigner],
    *,
    expires: datetime,
) -> SignedRoster:
    """The genesis roster, signed by every founding member's roster key."""
    document = build_roster(
        RosterBody(alliance=alliance, parties=list(parties)), version=1, expires=expires
    )
    for signer in founders:
        document = sign_roster(document, signer)
    return verify_genesis(document)


def parse_roster(document: Any) -> SignedRoster:
    """Check a roster document's shape (not its signatures) and parse its parties."""
    if not isinstance(document, Mapping) or set(document) != {"signed", "signatures"}:
        raise RosterError('a roster is {"signed": ..., "signatures": [...]}')
    signed, signatures = document["signed"], document["signatures"]
    if not isinstance(signed, Mapping) or signed.get("_type") != "root":
        raise RosterError("a roster's signed part is TUF root metadata (_type root)")
    if not str(signed.get("spec_version", "")).startswith("1."):
        raise RosterError("a roster's spec_version must be 1.x (TUF)")
    version = signed.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RosterError("a roster's version is an integer of at least 1")
    _parse_time(signed.get("expires"))
    roles = signed.get("roles")
    if not isinstance(roles, Mapping) or set(roles) != set(_ROLES):
        raise RosterError("a roster's roles are exactly root, targets, snapshot and timestamp")
    if not isinstance(signatures, list) or not all(
        isinstance(s, Mapping) and isinstance(s.get("keyid"), str) and isinstance(s.get("sig"), str)
        for s in signatures
    ):
        raise RosterError('a roster\'s signatures are [{"keyid": ..., "sig": ...}]')
    kids = [s["keyid"] for s in signatures]
    if len(set(kids)) != len(kids):
        raise RosterError("a roster lists one key's signature twice", code="roster_invalid")
    try:
        body = RosterBody.model_validate(signed.get(EXTENSION))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or EXTENSION
        raise RosterError(f"roster parties invalid at {where}: {first['msg']}") from exc
    roster = SignedRoster({"signed": dict(signed), "signatures": list(signatures)}, body)
    _check_keys(roster)
    return roster


def _check_keys(roster: SignedRoster) -> None:
    """The root role is exactly the members' roster keys, with KEYIDs recomputed."""
    signed = roster.document["signed"]
    keys = signed.get("keys")
    if not isinstance(keys, Mapping):
        raise RosterError("a roster's keys are an object")
    root = signed["roles"]["root"]
    keyids = root.get("keyids") if isinstance(root, Mapping) else None
    threshold = root.get("threshold") if isinstance(root, Mapping) else None
    if not isinstance(keyids, list) or not isinstance(threshold, int):
        raise RosterError("the root role needs keyids and a threshold")
    for kid in keyids:
        obj = keys.get(kid)
        try:
            raw = bytes.fromhex(obj["keyval"]["public"])  # type: ignore[index]
        except (TypeError, KeyError, ValueError) as exc:
            raise RosterError(f"root key {str(kid)[:16]}… is missing or malformed") from exc
        if obj != _key_object(raw) or key_id(raw) != kid:
            raise RosterError(f"root key {str(kid)[:16]}…: KEYID does not match the key")
    votes = {
        key_id(_raw_key(p.roster_key or "", f"{p.code}'s roster key"))
        for p in roster.body.members()
    }
    if set(keyids) != votes or len(keyids) != len(votes):
        raise RosterError("the root role's keys must be exactly the members' roster keys")
    if not quorum_of(len(votes)) <= threshold <= len(votes):
        raise RosterError(
            f"the roster threshold {threshold} is not more than two thirds of "
            f"{len(votes)} members (at least {quorum_of(len(votes))})",
            code="roster_threshold",
        )


def _valid_signers(roster: SignedRoster, keys: Mapping[str, bytes]) -> set[str]:
    message = roster.signed_bytes()
    valid: set[str] = set()
    for sig in roster.document["signatures"]:
        public = keys.get(sig["keyid"])
        if public is None:
            continue
        try:
            raw = bytes.fromhex(sig["sig"])
        except ValueError:
            continue
        if verify_strict(public, raw, message):
            valid.add(sig["keyid"])
    return valid


def verify_genesis(document: Any) -> SignedRoster:
    """Version 1, signed by every founding member's roster key."""
    roster = parse_roster(document)
    if roster.version != 1:
        raise RosterError(
            f"a genesis roster has version 1, not {roster.version}", code="roster_version"
        )
    missing = set(roster.root_keys) - roster.signers()
    if missing:
        names = sorted(
            p.code
            for p in roster.body.members()
            if key_id(_raw_key(p.roster_key or "", "key")) in missing
        )
        raise RosterError(
            f"the genesis roster must be signed by every founding member; missing: "
            f"{', '.join(names)}",
            code="roster_quorum",
            detail={"missing": names},
        )
    return roster


def verify_next(trusted: SignedRoster, document: Any) -> SignedRoster:
    """Version N+1, signed by a threshold of version N's keys and of its own (TUF 5.3)."""
    new = parse_roster(document)
    if new.version != trusted.version + 1:
        raise RosterError(
            f"roster version {new.version} does not follow version {trusted.version}",
            code="roster_version",
            detail={"trusted": trusted.version, "version": new.version},
        )
    old_votes = _valid_signers(new, trusted.root_keys)
    new_votes = new.signers()
    for votes, k, which in (
        (old_votes, trusted.threshold, f"version {trusted.version}'s members"),
        (new_votes, new.threshold, f"version {new.version}'s members"),
    ):
        if len(votes) < k:
            raise RosterError(
                f"roster version {new.version} has {len(votes)} valid signatures by "
                f"{which}; it needs {k}",
                code="roster_quorum",
                detail={"valid": len(votes), "needed": k},
            )
    return new


def verify_chain(
    documents: Sequence[Any], *, now: datetime | None = None, trusted: SignedRoster | None = None
) -> SignedRoster:
    """Verify ``documents`` in order (from genesis, or after ``trusted``); return the last.

    Intermediate expiry is ignored, as TUF says; the last version must not have expired.
    """
    if not documents and trusted is None:
        raise RosterError("no roster to verify", code="roster_invalid")
    current = trusted
    for document in documents:
        current = verify_genesis(document) if current is None else verify_next(current, document)
    assert current is not None
    when = now or datetime.now(UTC)
    if current.expires <= when:
        raise RosterError(
            f"roster version {current.version} expired at {current.expires:%Y-%m-%dT%H:%M:%SZ}",
            code="roster_expired",
        )
    return current


def load_genesis(path: Path) -> SignedRoster:
    """The genesis roster shipped out of band (``CUSTODES_ROSTER_FILE``), verified.

    Its expiry is not checked here: TUF ignores the trusted root's expiry when it starts
    from it; a node refuses to *act* on an expired final roster elsewhere.
    """
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read the roster file {path}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"the roster file {path} is not JSON: {exc}") from exc
    try:
        return verify_genesis(document)
    except RosterError as exc:
        raise ConfigError(f"the roster file {path} is not a valid genesis roster: {exc}") from exc
