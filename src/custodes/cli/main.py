"""``custodes``: run a member node, manage keys and signers, verify logs, run the demo.

User-fixable failures print one line and exit 1; ``--verbose`` shows the traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from custodes.cli import (
    decisions,
    evals,
    evals_list,
    keys,
    kill,
    lease,
    log,
    node,
    registry,
    signers,
)
from custodes.errors import CustodesError

__all__ = ["app", "run"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(keys.app, name="keys")
app.add_typer(signers.app, name="signers")
app.add_typer(log.app, name="log")
app.add_typer(registry.app, name="registry")
app.add_typer(kill.app, name="kill")
app.add_typer(lease.app, name="lease")
app.add_typer(evals.app, name="eval")
evals.app.command("list")(evals_list.list_results)
app.add_typer(decisions.app, name="decisions")
node.register(app)

_state = {"verbose": False}
err = Console(stderr=True)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="show tracebacks")) -> None:
    _state["verbose"] = verbose


def run() -> None:
    """Entry point: run the app, turning Custodes errors into one actionable line."""
    try:
        app(standalone_mode=True)
    except CustodesError as exc:
        if _state["verbose"]:
            raise
        err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True)
        sys.exit(1)
