"""The shared output helpers: JSON for scripts, tables that wrap instead of cutting."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from custodes.cli import output
from custodes.cli.output import Output, emit_record, emit_table


def test_json_output_is_one_parseable_document(capsys: pytest.CaptureFixture[str]) -> None:
    emit_table(("agent", "index"), [("agent:a", 7), ("agent:b", 9)], Output.json)
    assert json.loads(capsys.readouterr().out) == [
        {"agent": "agent:a", "index": 7},
        {"agent": "agent:b", "index": 9},
    ]


def test_json_output_carries_full_items_when_given(capsys: pytest.CaptureFixture[str]) -> None:
    items = [{"id": "agent:a", "record": {"sector": "finance"}}]
    emit_table(("agent",), [("agent:a",)], Output.json, items=items)
    assert json.loads(capsys.readouterr().out) == items


def test_narrow_tables_wrap_long_values_instead_of_cutting_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    narrow = Console(width=40, record=True, soft_wrap=False)
    monkeypatch.setattr(output, "stdout", narrow)
    digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    emit_record({"leaf_hash": digest, "index": 123456789012}, Output.table)
    text = narrow.export_text()
    assert "…" not in text
    assert "123456789012" in text
    assert digest in "".join(ch for ch in text if ch.isalnum())
