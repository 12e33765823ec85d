"""Record files the CLI reads (an agent, a model): parsed with the registry's models, and
every failing field named on one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from custodes.errors import ConfigError

__all__ = ["describe_invalid_record", "read_record"]

Record = TypeVar("Record", bound=BaseModel)
_SHOWN = 6  # fields listed before "and N more"


def _problems(exc: ValidationError) -> str:
    errors = exc.errors()
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg'][:1].lower()}{e['msg'][1:]}"
        for e in errors[:_SHOWN]
    ]
    more = f"; and {len(errors) - _SHOWN} more" if len(errors) > _SHOWN else ""
    return "; ".join(parts) + more


def describe_invalid_record(exc: ValidationError, source: str | None = None) -> str:
    """One line: which record (or file) is invalid, and each failing field."""
    return f"{source or 'invalid ' + exc.title}: {_problems(exc)}"


def read_record(path: Path, model: type[Record]) -> Record:
    """Read and validate a JSON record file; one line naming the file and its faults."""
    try:
        value = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from exc
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ConfigError(describe_invalid_record(exc, str(path))) from exc
