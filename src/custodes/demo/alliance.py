"""The alliance on one machine: GB, FR, DE and CA member nodes, and AU as partner, on loopback.

The parties found the alliance's roster first (every member signs the genesis; AU is a
partner, without a vote). Each node has its own data directory, SQLite database and keys,
witnesses the others, and receives signed decision records from simulated agents homed in its
jurisdiction. The demo ends by verifying every log with ``custodes log verify`` (as a
separate process, as an outside auditor would) and printing what each node holds.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from custodes.client import Client
from custodes.demo.evals_act import run_evals_act
from custodes.demo.explore import NodeView, guide, register_explorer, wait_for_stop
from custodes.demo.federation_act import (
    FederationScenario,
    ForkScenario,
    fork_act,
    play_federation,
)
from custodes.demo.forensics_act import ForensicsScenario, play_forensics
from custodes.demo.kill_act import KillScenario, run_kill_scenario
from custodes.demo.recognition_act import (
    RecognitionParty,
    RecognitionScenario,
    play_recognition,
)
from custodes.demo.redteam_act import RedteamScenario, play_redteam
from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import (
    Party,
    PartyRegulator,
    PartyStatus,
    SignedRoster,
    found_roster,
)
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk import sign_decision
from custodes.sdk.bootstrap import Authorities, bootstrap, enrol_agent

__all__ = ["run_demo"]

MEMBERS = {"GB": "United Kingdom", "FR": "France", "DE": "Germany", "CA": "Canada"}
# Australia takes part under the UK-Australia memorandum: look-ups, joint testing and
# threat intelligence, but no kill orders and no vote on the roster.
PARTNERS = {"AU": "Australia"}
PARTIES = {**MEMBERS, **PARTNERS}
AGENTS = {
    "GB": [("atlas-trader", "finance"), ("beacon-grid", "energy")],
    "FR": [("mistral-broker", "finance"), ("rhone-dispatch", "energy")],
    "DE": [("rhein-settle", "finance"), ("kraft-balancer", "energy")],
    "CA": [("maple-clearing", "finance"), ("boreal-hydro", "energy")],
}
ACTIONS = {
    "finance": [
        ("buy 40 MWh baseload futures", "hedge exposure flagged by the risk model"),
        ("decline a margin loan", "counterparty credit score below the mandate floor"),
        ("rebalance the treasury portfolio", "drift from target allocation exceeded 2%"),
    ],
    "energy": [
        ("shed 15 MW of flexible load", "frequency dipped below 49.9 Hz"),
        ("sell surplus hydro capacity", "reservoir above the seasonal rule curve"),
        ("defer a maintenance window", "forecast demand peak within 24 hours"),
    ],
}
ADMIN = "custodes-dev-admin-token"
ROSTER_FILE = "roster-1.json"
console = Console()


@dataclass
class Member:
    code: str
    port: int
    data_dir: Path
    keys: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    entries: int = 0
    agents: dict[str, EnvelopeSigner] = field(default_factory=dict)
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    authorities: Authorities | None = None
    regulator_key: EnvelopeSigner = field(default_factory=EnvelopeSigner.generate)
    party: Party | None = None

    @property
    def status(self) -> PartyStatus:
        return "member" if self.code in MEMBERS else "partner"

    @property
    def regulator_id(self) -> str:
        return f"regulator:{self.code.lower()}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return f"{self.code.lower()}.custodes.demo/log"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "CUSTODES_DATA_DIR": str(self.data_dir),
            "CUSTODES_ORIGIN": self.origin,
            "CUSTODES_JURISDICTION": self.code,
            "CUSTODES_WITNESS_NAME": f"{self.code.lower()}.custodes.demo/witness",
            "CUSTODES_CHECKPOINT_INTERVAL": "0.5",
            "CUSTODES_ADMIN_TOKEN": ADMIN,  # loopback only; init generates none then
            "CUSTODES_ROSTER_FILE": str(self.data_dir.parent / ROSTER_FILE),
            "CUSTODES_GOSSIP_INTERVAL": "1",
            # members recognise what the common scheme accepts, countersigned (0028)
            "CUSTODES_AUTO_RECOGNISE": "1",
            **extra,
        }


def _cli(*args: str) -> list[str]:  # the same Python, so the demo needs nothing on PATH
    return [sys.executable, "-m", "custodes", *args]


def _found(members: list[Member], root: Path) -> SignedRoster:
    """Each party describes its node (keys made in its data directory) and the regulator
    it vouches for; every founding member signs the genesis roster with its vote key."""
    for m in members:
        m.party = node_party(
            m.data_dir,
            code=m.code,
            name=PARTIES[m.code],
            status=m.status,
            urls=[m.url],
            origin=m.origin,
            witness_name=f"{m.code.lower()}.custodes.demo/witness",
            regulators=[
                PartyRegulator(
                    id=m.regulator_id,
                    name=f"{PARTIES[m.code]} AI security institute",
                    public_key=base64.b64encode(m.regulator_key.public_key).decode(),
                )
            ],
        )
    founders = [roster_signer(m.data_dir) for m in members if m.status == "member"]
    roster = found_roster(
        "Custodes alliance (demo)",
        [m.party for m in members if m.party is not None],
        founders,
        expires=datetime.now(UTC) + timedelta(days=365),
    )
    (root / ROSTER_FILE).write_bytes(canonical_dumps(roster.document))
    return roster


def _print_roster(roster: SignedRoster) -> None:
    console.rule("Alliance roster")
    members = ", ".join(p.code for p in roster.body.members())
    partners = ", ".join(p.code for p in roster.body.parties if p.status == "partner")
    console.print(
        f"  genesis (version {roster.version}) signed by every founding member: {members}; "
        f"partner: {partners}; later versions need {roster.threshold} of "
        f"{len(roster.root_keys)} members"
    )


def _init(member: Member) -> None:
    out = subprocess.run(_cli("init"), env=member.env(), capture_output=True, check=True)
    member.keys = json.loads(out.stdout)


def _start(member: Member) -> None:
    """Serve; whom the node witnesses and asks to cosign comes from the roster alone."""
    env = member.env()
    log = (member.data_dir / "serve.log").open("wb")
    member.process = subprocess.Popen(
        _cli("serve", "--port", str(member.port)), env=env, stdout=log, stderr=log
    )


def _wait_up(member: Member, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{member.url}/api/v1/node", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"the {member.code} node did not start; see {member.data_dir}/serve.log")


def _record_decisions(member: Member, others: list[Member], rng: random.Random) -> None:
    """The member's regulator registers an operator, which registers the agents; each
    agent then records signed decisions, with counterparties across the alliance."""
    authorities = bootstrap(
        member.url,
        ADMIN,
        member.code,
        operator=f"{member.code.lower()}-ops",
        regulator_key=member.regulator_key,
    )
    member.authorities = authorities
    client = Client(member.url)
    try:
        for slug, sector in AGENTS[member.code]:
            key = EnvelopeSigner.generate()
            agent_id = enrol_agent(
                authorities, key, slug, sector=sector, operating=[o.code for o in others]
            )
            member.agents[agent_id] = key
            batch = []
            for _ in range(rng.randint(20, 40)):
                action, why = rng.choice(ACTIONS[sector])
                peer = rng.choice(others)
                peer_slug = rng.choice(AGENTS[peer.code])[0]
                counterparty = f"urn:custodes:{peer.code.lower()}:agent:{peer_slug}"
                batch.append(
                    sign_decision(
                        key, agent_id, action, why, [counterparty], jurisdiction=member.code
                    )
                )
            indices = client.append(batch)
            member.entries += len(indices)
            member.windows[agent_id] = (min(indices), max(indices))
    finally:
        client.close()


def _checkpoint_state(member: Member) -> tuple[int, int]:
    text = httpx.get(f"{member.url}/log/checkpoint", timeout=2).text
    body, _, sigs = text.partition("\n\n")
    size = int(body.split("\n")[1])
    return size, sum(1 for line in sigs.splitlines() if "/witness " in line)


def _wait_witnessed(members: list[Member], deadline: float) -> None:
    while time.monotonic() < deadline:
        states = [(_checkpoint_state(m), m) for m in members]
        if all(size >= m.entries and cosigs >= 3 for (size, cosigs), m in states):
            return
        time.sleep(0.2)
    raise RuntimeError("the members did not witness each other's newest checkpoints in time")


def _verify(member: Member, peers: list[Member], state_dir: Path) -> tuple[bool, str]:
    args = [
        "log",
        "verify",
        member.url,
        "--key",
        member.keys["log"],
        "--quorum",
        "3",
        "--state-dir",
        str(state_dir),
    ]
    for peer in peers:
        args += ["--witness-key", peer.keys["witness"]]
    done = subprocess.run(_cli(*args), capture_output=True, text=True, check=False)
    return done.returncode == 0, (done.stdout or done.stderr).strip()


def _table(members: list[Member], results: dict[str, tuple[bool, str]]) -> Table:
    table = Table(title="Custodes alliance: every member's log, witnessed by the others")
    for column in ("member", "agents", "decisions", "log size", "cosigned by", "verify"):
        table.add_column(column, justify="right" if column in ("decisions", "log size") else "left")
    for m in members:
        size, cosigs = _checkpoint_state(m)
        ok, _ = results[m.code]
        table.add_row(
            f"{m.code} {PARTIES[m.code]}" + ("" if m.status == "member" else " (partner)"),
            str(len(AGENTS.get(m.code, []))),
            str(m.entries),
            str(size),
            f"{cosigs} of {len(members)} parties",
            "[green]OK[/green]" if ok else "[red]FAILED[/red]",
        )
    return table


def _play(members: list[Member], workdir: Path, *, evals: bool = True, out: Path) -> int:
    rng = random.Random(2026)  # noqa: S311 - simulated decisions, not secrets
    roster = _found(members, workdir)
    _print_roster(roster)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("starting member nodes", total=len(members) * 3 + 1)
        for m in members:
            _init(m)
            bar.advance(task)
        for m in members:
            _start(m)
        for m in members:
            _wait_up(m, time.monotonic() + 120)  # a busy machine starts them slowly
            bar.advance(task)
        bar.update(task, description="agents recording signed decisions")
        for m in members:
            if AGENTS.get(m.code):
                _record_decisions(m, [p for p in members if p is not m and AGENTS.get(p.code)], rng)
            bar.advance(task)
        # The incident's window opens once the agents are registered and trading: the
        # suspension that follows, and what crosses borders after it, are reconstructed.
        since = datetime.now(UTC)
        bar.update(task, description="kill switch: suspending a GB finance agent")
        scenario = _kill_act(members[0])
        bar.update(task, description="one alliance: orders, look-ups and erasure across borders")
        federation = _federation_act(members, roster)
    _print_kill_act(scenario)
    _print_steps("One alliance (FR suspends a GB agent in France; DE proves it)", federation)
    evals_ok = _evals_act(members[0], workdir) if evals else True
    with Progress(console=console, transient=True) as bar:
        bar.add_task("mutual recognition: audits, recognitions, trade, drift", total=None)
        recognition = _recognition_act(members, roster, workdir)
    _print_steps("Mutual recognition (audited once, recognised everywhere; trade)", recognition)
    with Progress(console=console, transient=True) as bar:
        bar.add_task("red-teaming repository: disclose, patch, re-test, publish", total=None)
        redteam = _redteam_act(members, workdir)
    _print_steps("Red-teaming repository (disclosed once, patched, verified)", redteam)
    with Progress(console=console, transient=True) as bar:
        bar.add_task("members witnessing each other's checkpoints", total=None)
        _wait_witnessed(members, time.monotonic() + 60)
    results = {
        m.code: _verify(m, [p for p in members if p is not m], workdir / "verified")
        for m in members
    }
    console.print(_table(members, results))
    for code, (_ok, line) in results.items():
        console.print(f"  {code}: {line}", highlight=False, soft_wrap=True)
    with Progress(console=console, transient=True) as bar:
        bar.add_task("forensics: reconstructing the suspension from every member's log", total=None)
        forensics = _forensics_act(members, since, out)
    _print_steps("Forensics (the suspension, reconstructed and proven)", forensics)
    with Progress(console=console, transient=True) as bar:
        bar.add_task("a node forks its log: the members' gossip", total=None)
        fork = _fork_act(members, roster, workdir)
    _print_steps("Split view (CA's log key shows FR and DE two histories)", fork)
    console.print(f"  offline check of the evidence: {fork.offline_check}", highlight=False)
    ok = (
        forensics.ok
        and scenario.ok
        and federation.ok
        and fork.ok
        and recognition.ok
        and redteam.ok
        and evals_ok
        and all(ok for ok, _ in results.values())
    )
    return 0 if ok else 1


def _federation_act(members: list[Member], roster: SignedRoster) -> FederationScenario:
    by_code = {m.code: m for m in members}
    gb = by_code["GB"]
    return play_federation(
        urls={m.code: m.url for m in members},
        authorities={m.code: m.authorities for m in members if m.authorities is not None},
        roster=roster,
        agent=next(iter(gb.agents.items())),
    )


def _recognition_act(
    members: list[Member], roster: SignedRoster, workdir: Path
) -> RecognitionScenario:
    parties = {
        m.code: RecognitionParty(
            m.code, m.url, m.origin, m.data_dir, m.authorities, m.regulator_key
        )
        for m in members
        if m.authorities is not None
    }
    work = workdir / "recognition"
    work.mkdir(exist_ok=True)
    return play_recognition(parties, roster, work, console)


def _redteam_act(members: list[Member], workdir: Path) -> RedteamScenario:
    parties = {
        m.code: RecognitionParty(
            m.code, m.url, m.origin, m.data_dir, m.authorities, m.regulator_key
        )
        for m in members
        if m.authorities is not None
    }
    work = workdir / "redteam"
    work.mkdir(exist_ok=True)
    return play_redteam(parties, work, console)


def _forensics_act(members: list[Member], since: datetime, out: Path) -> ForensicsScenario:
    """The GB regulator reconstructs the kill act's incident (the suspended agent)."""
    gb = members[0]
    agent_id = next(iter(gb.agents))
    urls = {m.code: m.url for m in members if m.status == "member"}
    return play_forensics(
        urls,
        ADMIN,
        regulator=gb.regulator_id,
        agent=agent_id,
        since=since,
        out=out,
        console=console,
    )


def _fork_act(members: list[Member], roster: SignedRoster, workdir: Path) -> ForkScenario:
    by_code = {m.code: m for m in members}
    accused = roster.body.party("CA")
    assert accused is not None
    witnesses = {code: by_code[code].url for code in ("FR", "DE")}
    return fork_act(accused, by_code["CA"].data_dir, witnesses, workdir)


def _print_steps(
    title: str,
    scenario: FederationScenario | ForkScenario | RecognitionScenario | ForensicsScenario,
) -> None:
    console.rule(title)
    for step in scenario.steps:  # unwrapped: a path or an id must stay on one line
        console.print(f"  {step}", highlight=False, soft_wrap=True)
    verdict = "[green]OK[/green]" if scenario.ok else "[red]FAILED[/red]"
    console.print(f"  {title.split(' (', maxsplit=1)[0].lower()}: {verdict}")


def _evals_act(member: Member, workdir: Path) -> bool:
    """Red-team the GB energy agent's model, and watch its live decisions drift."""
    agent_id, key = list(member.agents.items())[1]
    ok = run_evals_act(
        member.url, agent_id, key, baseline=member.windows[agent_id], work=workdir, console=console
    )
    console.print(f"  safety benchmarks: {'[green]OK[/green]' if ok else '[red]FAILED[/red]'}")
    return ok


def _kill_act(member: Member) -> KillScenario:
    assert member.authorities is not None
    agent_id, key = next(iter(member.agents.items()))
    return run_kill_scenario(member.url, member.authorities, agent_id, key, console)


def _print_kill_act(scenario: KillScenario) -> None:
    console.rule("Kill switch (GB finance agent, 60 s lease)")
    console.print(f"  traded {scenario.trades_before} times under its lease")
    for step in scenario.steps:
        console.print(f"  {step}")
    console.print(
        f"  safe-state hook ran {scenario.safe_state_runs} time(s); "
        f"{scenario.halts_logged} halt decision(s) in the log"
    )
    console.print(f"  after reinstatement and a fresh lease: {scenario.trades_after} trades")
    verdict = "[green]OK[/green]" if scenario.ok else "[red]FAILED[/red]"
    console.print(f"  kill switch: {verdict}")


def _view(member: Member) -> NodeView:
    return NodeView(
        member.code,
        PARTIES[member.code],
        member.url,
        member.origin,
        member.data_dir,
        member.keys["log"],
        member.keys["witness"],
        tuple(member.agents),
    )


def _serve(members: list[Member], workdir: Path) -> None:
    """Leave the alliance running, print how to explore it, and wait for Ctrl-C."""
    views = [_view(m) for m in members]
    explorer = register_explorer(views[0], ADMIN, workdir)
    for line in guide(views, ADMIN, explorer, dashboard=f"{members[0].url}/ui/"):
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    console.file.flush()
    wait_for_stop(lambda: all(m.process is not None and m.process.poll() is None for m in members))
    console.print("stopping the alliance")


def _stop(members: list[Member]) -> None:
    for m in members:
        if m.process is not None and m.process.poll() is None:
            m.process.terminate()
    for m in members:
        if m.process is not None:
            try:
                m.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                m.process.kill()


def run_demo(
    *,
    base_port: int = 8401,
    keep: bool = False,
    workdir: Path | None = None,
    serve: bool = False,
    evals: bool = True,
    out: Path = Path(".custodes/demo"),
) -> int:
    """Play the scenario; return the exit status (0 when every log verified).

    With ``serve``, the nodes stay up afterwards until Ctrl-C (custodes.demo.explore).
    The forensic report and evidence bundle of the suspension incident are written
    under ``out/forensics`` and kept.
    """
    root = workdir or Path(tempfile.mkdtemp(prefix="custodes-demo-"))
    members = [Member(code, base_port + i, root / code.lower()) for i, code in enumerate(PARTIES)]
    try:
        status = _play(members, root, evals=evals, out=out.resolve() / "forensics")
        if serve:
            _serve(members, root)
        return status
    except subprocess.CalledProcessError as exc:
        reason = (exc.stderr or b"").decode().strip().splitlines()
        console.print(f"[red]demo failed:[/red] {' '.join(exc.cmd[2:])}: {reason[-1:] or exc}")
        return 1
    except (RuntimeError, httpx.HTTPError) as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        return 1
    finally:
        _stop(members)
        if keep:
            console.print(f"node data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
