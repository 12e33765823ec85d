"""Templates and the page helper: every page gets its viewer, CSRF field and navigation."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

if TYPE_CHECKING:
    from starlette.requests import Request

    from custodes.registry.sessions import Session

__all__ = ["STATIC", "env", "page", "when"]

STATIC = resources.files("custodes.web") / "static"

env = Environment(
    loader=PackageLoader("custodes.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,  # a missing value is a bug, never a blank on a page
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(value: float | datetime | str | None) -> str:
    """A time as people read it in an alliance: UTC, to the second."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


env.filters["when"] = when

NAV = (
    ("overview", "/ui/", "Alliance"),
    ("registry", "/ui/agents", "Registry"),
    ("redteam", "/ui/redteam", "Red-teaming"),
    ("reports", "/ui/forensics", "Forensics"),
)


def page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    section: str | None = None,
    title: str,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` with the viewer (``session`` or None), the CSRF token for its
    forms, the node's jurisdiction and the navigation; never cached (pages are per
    viewer)."""
    session: Session | None = getattr(request.state, "session", None)
    node = request.app.state.parent.state.node
    html = env.get_template(template).render(
        request=request,
        session=session,
        viewer=session.principal if session else None,
        csrf=session.csrf if session else "",
        node_name=node.settings.jurisdiction,
        nav=NAV,
        section=section,
        title=title,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
