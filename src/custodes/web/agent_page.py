"""Dashboard pages: agent_page (filled in by issue 12's work)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
