"""``custodes federation``: the alliance roster, offline and on a node (docs/design/0023).

Founding: each member runs ``federation party`` on its node's data directory and hands
the others its Party JSON; ``roster found`` builds the genesis, which every founder signs
(``roster sign``, in turn). Later versions: ``roster propose`` writes the next version
from the current one, a quorum of members ``roster sign`` it, and ``roster apply`` sends
it to any node, which logs it and forwards it to the others. ``roster verify`` checks a
chain from its genesis offline; ``roster show`` prints the parties.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import typer

from custodes.cli.output import OUTPUT, Output, emit_json, emit_table, stdout
from custodes.client import Client
from custodes.errors import ConfigError, CustodesError
from custodes.federation.party import node_party
from custodes.federation.roster import (
    Party,
    PartyRegulator,
    RosterBody,
    RosterError,
    SignedRoster,
    build_roster,
    parse_roster,
    sign_roster,
    verify_chain,
    verify_genesis,
    verify_next,
)
from custodes.ledger.keys import parse_entry_key

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The alliance: its roster and this node's party.")
roster_app = typer.Typer(no_args_is_help=True, help="Found, propose, sign, apply, verify, show.")
app.add_typer(roster_app, name="roster")

_NODE_HELP = "a member node's URL"
_CHAIN = ("version", "file", "digest", "signatures")
_ROTATABLE = ("name", "origin", "log_vkey", "witness_vkey", "entry_key", "roster_key")


# -- files ------------------------------------------------------------------------------
def _read(path: Path) -> dict[str, Any]:
    try:
        document: dict[str, Any] = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from exc
    return document


def _write(path: Path, document: Any) -> None:
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


def _roster_files(paths: list[Path]) -> list[Path]:
    """Files as given, or every ``*.json`` of one directory ordered by roster version."""
    if len(paths) == 1 and paths[0].is_dir():
        found = sorted(paths[0].glob("*.json"))
        return sorted(found, key=lambda p: int(_read(p).get("signed", {}).get("version", 0)))
    return paths


def _rule(exc: RosterError, where: str) -> CustodesError:
    return CustodesError(f"{where}: {exc.message} (rule: {exc.code})", code=exc.code)


def _expires(days: int) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


# -- tables -----------------------------------------------------------------------------
def _party_rows(roster: SignedRoster) -> list[tuple[str, ...]]:
    return [
        (
            p.code,
            p.name,
            p.status,
            " ".join(p.urls),
            p.origin,
            " ".join(r.id for r in p.regulators),
        )
        for p in roster.body.parties
    ]


def _show(roster: SignedRoster, output: Output) -> None:
    emit_table(
        ("code", "name", "status", "urls", "origin", "regulators"),
        _party_rows(roster),
        output,
        items=roster.document,
        title=f"roster version {roster.version} (expires {roster.signed['expires']}, "
        f"{roster.threshold} of {len(roster.root_keys)} members sign changes)",
    )


# -- commands -----------------------------------------------------------------------------
@app.command("party")
def party(
    data_dir: Path = typer.Option(..., "--data-dir", help="the node's data directory"),
    code: str = typer.Option(..., "--code", help="the party's jurisdiction code, e.g. GB"),
    name: str = typer.Option(..., "--name", help="the party's name"),
    status: str = typer.Option("member", "--status", help="member or partner"),
    url: list[str] = typer.Option(..., "--url", help="the node's public URL (repeatable)"),
    origin: str = typer.Option(..., "--origin", help="the node's log origin"),
    regulator: list[str] = typer.Option(
        [], "--regulator", help="ID=BASE64KEY[=NAME] of a regulator it vouches for"
    ),
) -> None:
    """Print this node's Party JSON from its key files (created if absent), for founding."""
    if status not in ("member", "partner"):
        raise ConfigError(f"--status is member or partner, not {status!r}")
    regulators = [_regulator(text) for text in regulator]
    found = node_party(
        data_dir,
        code=code,
        name=name,
        status=status,  # type: ignore[arg-type]
        urls=url,
        origin=origin,
        regulators=regulators,
    )
    typer.echo(found.model_dump_json(indent=1, exclude_none=True))


def _regulator(text: str) -> PartyRegulator:
    rid, _, rest = text.partition("=")
    key, _, name = rest.partition("=")
    return PartyRegulator(id=rid, public_key=key, name=name or rid)


@roster_app.command("found")
def found(
    parties: list[Path] = typer.Argument(..., help="each founder's Party JSON"),
    key: list[Path] = typer.Option([], "--key", help="a founder's roster key file (repeatable)"),
    alliance: str = typer.Option("Custodes alliance", "--alliance", help="the alliance's name"),
    expires: int = typer.Option(365, "--expires", help="days until this version expires"),
    out: Path = typer.Option(..., "-o", "--out", help="where to write the genesis"),
) -> None:
    """Build the genesis roster (version 1), signed with every ``--key`` given.

    It is in force only when every founding member signed it; founders who keep their
    key elsewhere sign the file in turn with ``roster sign``."""
    body = RosterBody(alliance=alliance, parties=[Party.model_validate(_read(p)) for p in parties])
    document = build_roster(body, version=1, expires=_expires(expires))
    for path in key:
        document = sign_roster(document, _signer(path))
    _write(out, document)
    _report_signatures(document, out)


def _signer(path: Path) -> Any:
    try:
        return parse_entry_key(path.read_text().strip())[1]
    except OSError as exc:
        raise ConfigError(f"cannot read the roster key {path}: {exc.strerror}") from exc


def _report_signatures(document: dict[str, Any], path: Path) -> None:
    roster = parse_roster(document)
    have, total = len(roster.signers()), len(roster.root_keys)
    typer.echo(
        f"wrote roster version {roster.version} to {path}: {have} of {total} member "
        f"signatures (genesis needs all {total}; a later version {roster.threshold})"
    )


@roster_app.command("sign")
def sign(
    file: Path = typer.Argument(..., help="the roster version to sign"),
    key: Path = typer.Option(..., "--key", help="your roster key file (your vote)"),
    out: Path | None = typer.Option(None, "-o", "--out", help="write here (default: in place)"),
) -> None:
    """Add your member's signature to a roster version."""
    document = sign_roster(parse_roster(_read(file)).document, _signer(key))
    _write(out or file, document)
    _report_signatures(document, out or file)


@roster_app.command("propose")
def propose(
    current: Path = typer.Option(..., "--current", help="the roster version in force"),
    admit: list[Path] = typer.Option([], "--admit", help="a new party's Party JSON"),
    suspend: list[str] = typer.Option([], "--suspend", help="suspend a party (its code)"),
    remove: list[str] = typer.Option([], "--remove", help="remove a party (its code)"),
    reinstate: list[str] = typer.Option([], "--reinstate", help="reinstate a suspended party"),
    set_url: tuple[str, str] | None = typer.Option(None, "--set-url", help="CODE URL"),
    rotate: tuple[str, str, str] | None = typer.Option(
        None, "--rotate", help=f"CODE FIELD VALUE; FIELD: {', '.join(_ROTATABLE)}"
    ),
    expires: int = typer.Option(365, "--expires", help="days until the new version expires"),
    out: Path = typer.Option(..., "-o", "--out", help="where to write the proposal"),
) -> None:
    """Write the next roster version (unsigned) from the current one and the changes."""
    roster = parse_roster(_read(current))
    parties = list(roster.body.parties) + [Party.model_validate(_read(p)) for p in admit]
    for code, status in [
        *((c, "suspended") for c in suspend),
        *((c, "removed") for c in remove),
        *((c, "") for c in reinstate),
    ]:
        parties = _change(parties, code, status=status)
    if set_url is not None:
        parties = _change(parties, set_url[0], urls=[set_url[1]])
    if rotate is not None:
        parties = _rotate(parties, *rotate)
    try:
        body = RosterBody(alliance=roster.body.alliance, parties=parties)
    except ValueError as exc:
        raise ConfigError(f"the proposed roster is invalid: {exc}") from exc
    document = build_roster(body, version=roster.version + 1, expires=_expires(expires))
    _write(out, document)
    typer.echo(
        f"wrote roster version {roster.version + 1} to {out}: {roster.threshold} members of "
        f"version {roster.version} must sign it (`custodes federation roster sign`)"
    )


def _change(parties: list[Party], code: str, **update: Any) -> list[Party]:
    if all(p.code != code for p in parties):
        raise ConfigError(f"no party {code} is on the roster")
    return [_changed(p, update) if p.code == code else p for p in parties]


def _changed(party: Party, update: dict[str, Any]) -> Party:
    if update.get("status") == "":  # reinstate: a member keeps its vote
        update = {"status": "member" if party.roster_key else "partner"}
    return Party.model_validate(party.model_dump() | update)


def _rotate(parties: list[Party], code: str, field: str, value: str) -> list[Party]:
    if field.startswith("regulator:"):
        party = next((p for p in parties if p.code == code), None)
        if party is None or all(r.id != field for r in party.regulators):
            raise ConfigError(f"{code} vouches for no regulator {field}")
        regs = [
            r.model_copy(update={"public_key": value}) if r.id == field else r
            for r in party.regulators
        ]
        return _change(parties, code, regulators=[r.model_dump() for r in regs])
    if field not in _ROTATABLE:
        raise ConfigError(f"--rotate FIELD is one of {', '.join(_ROTATABLE)} or a regulator id")
    return _change(parties, code, **{field: value})


@roster_app.command("verify")
def verify(
    files: list[Path] = typer.Argument(..., help="the chain from genesis, or one directory"),
    output: Output = OUTPUT,
) -> None:
    """Check a roster chain from its genesis offline: every signature threshold, the
    version sequence and the final version's expiry; exit 1 naming the failed rule."""
    paths = _roster_files(files)
    current: SignedRoster | None = None
    rows = []
    for path in paths:
        try:
            document = _read(path)
            current = (
                verify_genesis(document) if current is None else verify_next(current, document)
            )
        except RosterError as exc:
            raise _rule(exc, str(path)) from exc
        rows.append((current.version, str(path), current.digest(), len(current.signers())))
    if current is None:
        raise ConfigError("no roster file given")
    try:
        verify_chain([], trusted=current)  # the last version must not have expired
    except RosterError as exc:
        raise _rule(exc, str(paths[-1])) from exc
    if output is Output.json:
        emit_json(
            {"chain": [dict(zip(_CHAIN, r, strict=True)) for r in rows], "roster": current.document}
        )
        return
    emit_table(_CHAIN, rows, output, title="chain verified from its genesis")
    _show(current, output)


@roster_app.command("apply")
def apply(
    file: Path = typer.Argument(..., help="the signed next version"),
    node: str = typer.Option(..., "--node", help=_NODE_HELP),
) -> None:
    """Send a signed roster version to a node: it verifies it against the version in
    force, logs it and forwards it to every other party."""
    with Client(node) as client:
        answer = client.apply_roster(_read(file))
    stdout.print(
        f"roster version {answer['version']} {answer['status'].replace('_', ' ')} at {node} "
        f"(log index {answer['index']})"
    )


@roster_app.command("show")
def show(
    file: Path | None = typer.Argument(None, help="a roster file (or use --node)"),
    node: str | None = typer.Option(None, "--node", help=_NODE_HELP),
    output: Output = OUTPUT,
) -> None:
    """The parties of a roster file, or of the roster in force at a node."""
    if (file is None) == (node is None):
        raise ConfigError("give a roster FILE or --node URL (one of them)")
    if file is not None:
        _show(parse_roster(_read(file)), output)
        return
    with Client(str(node)) as client:
        _show(parse_roster(client.roster()["document"]), output)
