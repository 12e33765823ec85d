"""``custodes forensics``: reconstruct an incident across members' logs, verify, report.

``timeline`` gathers from the member nodes what the token's principal is entitled to,
orders it causally, verifies every proof and signature, and writes ``report.html`` (for
people) and ``bundle.json`` (for machines) to ``--out``. ``verify`` checks a bundle with
no network; ``report`` renders one (checking it first); ``proofs`` exports each event's
entry and its C2SP tlog-proof for other verifiers.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from custodes.client.forensics import gather, ordered
from custodes.errors import BadRequest, ConfigError
from custodes.federation.roster import SignedRoster, parse_roster
from custodes.forensics.bundle import (
    BundleError,
    read_bundle,
    tlog_proof,
    write_atomic,
    write_bundle,
)
from custodes.forensics.models import Incident, Timeline
from custodes.forensics.report import render_report
from custodes.forensics.verify import Verified, verify_bundle
from custodes.ledger.readindex import parse_instant

__all__ = ["app"]

app = typer.Typer(
    no_args_is_help=True,
    help="Reconstruct incidents across members' logs; verify and render evidence bundles.",
)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)
_CODE_TOKEN = re.compile(r"^([A-Z]{2})=(.+)$")


def _fail(line: str) -> typer.Exit:
    """Print one actionable line and return the exit to raise (code 1)."""
    err.print(f"[red]error:[/red] {escape(line)}")
    return typer.Exit(1)


def _trusted(path: Path | None) -> SignedRoster | None:
    if path is None:
        return None
    try:
        return parse_roster(orjson.loads(path.read_bytes()))
    except OSError as exc:
        raise ConfigError(f"cannot read the trusted roster {path}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"the trusted roster {path} is not JSON: {exc}") from exc


def _check(timeline: Timeline, trusted: SignedRoster | None) -> tuple[Verified | None, str | None]:
    try:
        return verify_bundle(timeline, trusted=trusted), None
    except BundleError as exc:
        return None, exc.message


# --- verify and report (offline) -----------------------------------------------------------


@app.command("verify")
def verify(
    bundle: Path = typer.Argument(..., help="the evidence bundle (bundle.json)"),
    roster: Path | None = typer.Option(
        None, "--roster", help="a roster you already trust (e.g. the genesis file)"
    ),
) -> None:
    """Check a bundle with no network: proofs, signatures, quorum, commitments, order."""
    try:
        verified = verify_bundle(read_bundle(bundle), trusted=_trusted(roster))
    except BundleError as exc:
        raise _fail(f"{bundle} does not verify: {exc.message}") from exc
    out.print(escape(verified.summary()))


@app.command("report")
def report(
    bundle: Path = typer.Argument(..., help="the evidence bundle (bundle.json)"),
    out_file: Path | None = typer.Option(
        None, "--out", help="where to write the HTML (default: the bundle's name with .html)"
    ),
    roster: Path | None = typer.Option(None, "--roster", help="a roster you already trust"),
) -> None:
    """Render a bundle as an HTML report, verifying it first (a failure is shown on top)."""
    try:
        timeline = read_bundle(bundle)
    except BundleError as exc:
        raise _fail(f"{bundle} cannot be read: {exc.message}") from exc
    verified, failure = _check(timeline, _trusted(roster))
    target = out_file or bundle.with_suffix(".html")
    write_atomic(target, render_report(timeline, verified, failure=failure).encode())
    out.print(f"report: {escape(str(target))}")
    if failure is not None:
        raise _fail(f"{bundle} does not verify: {failure} (the report says so)")


@app.command("proofs")
def proofs(
    bundle: Path = typer.Argument(..., help="the evidence bundle (bundle.json)"),
    out_dir: Path = typer.Option(..., "--out", help="directory for the proof files"),
) -> None:
    """Export each event as its entry bytes and a C2SP tlog-proof (verified first)."""
    try:
        timeline_ = read_bundle(bundle)
        verify_bundle(timeline_)
    except BundleError as exc:
        raise _fail(f"{bundle} does not verify: {exc.message}") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    for event in timeline_.events:
        name = f"{event.node}-{event.index}"
        write_atomic(out_dir / f"{name}.entry", base64.b64decode(event.data))
        proof = tlog_proof(event, timeline_.checkpoints[event.node])
        write_atomic(out_dir / f"{name}.tlog-proof", proof.encode())
    out.print(f"{len(timeline_.events)} entries and tlog-proofs in {escape(str(out_dir))}")


# --- timeline (gathers over the network) -----------------------------------------------------


def _tokens(values: Sequence[str], seed_code: Callable[[], str]) -> dict[str, str]:
    """``CODE=TOKEN`` per member; a bare token is the seed node's."""
    tokens: dict[str, str] = {}
    for value in values:
        match = _CODE_TOKEN.match(value)
        if match:
            tokens[match.group(1)] = match.group(2)
        else:
            tokens[seed_code()] = value
    return tokens


def _seed_code(seed: str) -> str:
    """The member code of the node at ``seed``, from the roster it serves."""
    from custodes.client import Client

    with Client(seed, timeout=30.0) as client:
        roster = parse_roster(client.roster())
    want = seed.rstrip("/")
    for party in roster.body.parties:
        if want in (u.rstrip("/") for u in party.urls):
            return party.code
    raise BadRequest(
        f"{seed} is not a URL the roster names for any member; give the token as "
        "--token CODE=TOKEN (e.g. --token GB=...)",
        code="unknown_seed",
    )


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int | None], None]]:
    columns = (
        TextColumn("gathering {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("", total=None)

        def report(stage: str, done: int, total: int | None) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        yield report


def _incident(agents: list[str], depth: int, start: str, end: str, members: list[str]) -> Incident:
    began, ended = parse_instant("--from", start), parse_instant("--to", end)
    assert began is not None  # both options are required
    assert ended is not None
    if ended <= began:
        raise BadRequest("--to must be after --from", code="bad_window")
    nodes: dict[str, str] = {}
    for member in members:
        code, eq, url = member.partition("=")
        if not eq or not re.fullmatch(r"[A-Z]{2}", code) or not url:
            raise BadRequest(f"--member takes CODE=URL (e.g. GB=http://...), not {member!r}")
        nodes[code] = url
    return Incident(agents=agents, depth=depth, start=began, end=ended, nodes=nodes)


@app.command("timeline")
def timeline(
    agent: list[str] = typer.Option(..., "--agent", help="an agent to start from (repeat)"),
    depth: int = typer.Option(1, "--depth", min=0, max=4, help="counterparties to follow"),
    start: str = typer.Option(..., "--from", help="window start, RFC 3339 with offset"),
    end: str = typer.Option(..., "--to", help="window end (exclusive), RFC 3339 with offset"),
    node: str = typer.Option(..., "--node", help="the seed node's URL (reads the roster there)"),
    member: list[str] = typer.Option(
        [], "--member", help="CODE=URL of a member to ask (repeat; default: every member)"
    ),
    token: list[str] = typer.Option(
        [], "--token", help="TOKEN for the seed node, or CODE=TOKEN per member (repeat)"
    ),
    actor: str | None = typer.Option(None, "--as", help="the principal the tokens stand for"),
    out_dir: Path = typer.Option(..., "--out", help="directory for report.html and bundle.json"),
) -> None:
    """Gather an incident from the members' nodes, verify it, write the report and bundle."""
    incident = _incident(agent, depth, start, end, member)
    tokens = _tokens(token, lambda: _seed_code(node))
    extra: dict[str, Any] = {"asked_by": actor} if actor else {}
    with _progress() as progress:
        gathered = gather(incident, seed=node, tokens=tokens, progress=progress, **extra)
    result = ordered(incident, gathered)
    verified, failure = _check(result, None)
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = write_bundle(result, out_dir / "bundle.json")
    html = write_atomic(
        out_dir / "report.html", render_report(result, verified, failure=failure).encode()
    )
    out.print(f"report: {escape(str(html))}\nbundle: {escape(str(bundle))}")
    if failure is not None:
        raise _fail(f"the gathered evidence does not verify: {failure}")
    assert verified is not None
    gaps = f"; {len(result.gaps)} gaps (see the report)" if result.gaps else ""
    out.print(escape(verified.summary() + gaps))
