"""``custodes kill``: suspend, revoke, reinstate an agent or, by selector, many; list orders."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import typer
from pydantic import ValidationError

from custodes.cli.remote import AS, KEY, NODE, TOKEN, acting_client
from custodes.errors import ConfigError
from custodes.registry.models import SELECTOR_FIELDS, Selector
from custodes.sdk.decisions import raise_for_error

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Kill orders: effective at once, logged, pushed.")
TERRITORY = typer.Option(None, help="only in this territory (two letters); default global")
SELECTOR = typer.Option(
    None,
    help="instead of one agent, every agent matching all of key=value,... with keys "
    + ", ".join(SELECTOR_FIELDS)
    + " (e.g. operator=acme,sector=finance,jurisdiction=FR)",
)
_PREFIXES = {"operator": "operator:", "model": "model:"}


def _selector(text: str | None) -> Selector | None:
    """``operator=acme,sector=finance`` as a Selector (ids may omit their prefix)."""
    if text is None:
        return None
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = (p.strip() for p in part.partition("="))
        if not sep or key not in SELECTOR_FIELDS or not value:
            raise ConfigError(
                f"--selector takes key=value pairs separated by commas, keys among "
                f"{', '.join(SELECTOR_FIELDS)}; got {part.strip()!r}"
            )
        prefix = _PREFIXES.get(key, "")
        fields[key] = value if value.startswith(prefix) else prefix + value
    try:
        return Selector.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"--selector {where}: {first['msg']}") from exc


def _target(agent_id: str | None, selector: str | None) -> tuple[str | None, Selector | None]:
    if (agent_id is None) == (selector is None):
        raise ConfigError("name one agent, or give --selector for many, not both")
    return agent_id, _selector(selector)


def _issue(
    op: str,
    agent_id: str | None,
    reason: str,
    territory: str | None,
    lifts: str | None,
    node: str,
    actor: str,
    token: str,
    key: Path,
    selector: Selector | None = None,
) -> None:
    answer = acting_client(node, actor, token, key).order(
        op, agent_id, reason, territory=territory, lifts=lifts, selector=selector
    )
    whom = agent_id or f"{answer.get('agents', 'the')} agents"
    typer.echo(
        f"{op} {whom}: order {answer['order_id']} at log index {answer['index']}; "
        f"status now {answer['status']}"
    )


@app.command("suspend")
def suspend(
    agent_id: str | None = typer.Argument(None),
    reason: str = typer.Option(...),
    territory: str | None = TERRITORY,
    selector: str | None = SELECTOR,
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
) -> None:
    """Suspend an agent, globally (home regulator, operator) or in one territory."""
    one, many = _target(agent_id, selector)
    _issue("suspend", one, reason, territory, None, node, actor, token, key, many)


@app.command("revoke")
def revoke(
    agent_id: str | None = typer.Argument(None),
    reason: str = typer.Option(...),
    territory: str | None = TERRITORY,
    selector: str | None = SELECTOR,
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
) -> None:
    """Revoke an agent (its home regulator only)."""
    one, many = _target(agent_id, selector)
    _issue("revoke", one, reason, territory, None, node, actor, token, key, many)


@app.command("reinstate")
def reinstate(
    agent_id: str,
    order_id: str | None = typer.Argument(None),
    reason: str = typer.Option(...),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
) -> None:
    """Lift one order (by whoever issued it, or the home regulator); logged too.

    ``reinstate AGENT ORDER_ID`` lifts an order naming that agent; ``reinstate ORDER_ID``
    lifts a selector order for every agent it covered.
    """
    agent, lifts = (None, agent_id) if order_id is None else (agent_id, order_id)
    _issue("reinstate", agent, reason, None, lifts, node, actor, token, key)


@app.command("list")
def list_orders(agent_id: str | None = None, active: bool = False, node: str = NODE) -> None:
    """List kill orders."""
    params: dict[str, str | bool] = {"active": active}
    if agent_id:
        params["agent_id"] = agent_id
    response = httpx.get(f"{node.rstrip('/')}/api/v1/kill-orders", params=params, timeout=30)
    raise_for_error(response)
    typer.echo(json.dumps(response.json(), indent=1))
