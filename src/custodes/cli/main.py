"""``custodes``: run a member node, manage keys and signers, verify logs, run the demo.

User-fixable failures print one line and exit 1; ``--verbose`` shows the traceback.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from custodes.cli import (
    alliance,
    audit,
    audit_killswitch,
    decisions,
    evals,
    evals_list,
    federation,
    federation_evidence,
    forensics,
    keys,
    kill,
    lease,
    log,
    node,
    redteam,
    registry,
    signers,
)
from custodes.cli.records import describe_invalid_record
from custodes.errors import CustodesError

__all__ = ["app", "run"]

app = typer.Typer(no_args_is_help=True, add_completion=True, help=__doc__)
app.add_typer(keys.app, name="keys")
app.add_typer(signers.app, name="signers")
app.add_typer(log.app, name="log")
app.add_typer(registry.app, name="registry")
app.add_typer(kill.app, name="kill")
app.add_typer(lease.app, name="lease")
app.add_typer(evals.app, name="eval")
evals.app.command("list")(evals_list.list_results)
app.add_typer(decisions.app, name="decisions")
app.add_typer(alliance.app, name="alliance")
app.add_typer(federation.app, name="federation")
federation.app.add_typer(federation_evidence.app, name="evidence")
app.add_typer(audit.app, name="audit")
app.add_typer(redteam.app, name="redteam")
app.add_typer(forensics.app, name="forensics")
node.register(app)
audit_killswitch.register(audit.app)

_state = {"verbose": False}
err = Console(stderr=True)


def _version() -> str:
    try:
        return version("custodes")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from custodes import __version__

        return __version__


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"custodes {_version()}")
        raise typer.Exit


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show tracebacks"),
    _version_flag: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="print the version"
    ),
) -> None:
    _state["verbose"] = verbose


def _explain(exc: Exception) -> str | None:
    """The one line for a mistake a person can fix, or None for a bug.

    An unreachable node or a URL without a scheme arrive as CustodesErrors from
    custodes.client, which maps every transport failure in one place.
    """
    if isinstance(exc, CustodesError):
        return exc.message
    if isinstance(exc, ValidationError):
        return describe_invalid_record(exc)
    return None


def run() -> None:
    """Entry point: run the app, turning a person's mistakes into one actionable line."""
    try:
        app(standalone_mode=True)
    except (CustodesError, ValidationError) as exc:
        line = _explain(exc)
        if _state["verbose"] or line is None:
            raise
        err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
        sys.exit(1)
