"""The node's config file, ``custodes.toml`` in its data directory: read and written.

Flat ``name = value`` lines, one per setting, named as the settings are (``jurisdiction``
for ``CUSTODES_JURISDICTION``). Read with the standard library's ``tomllib``; written by
the small writer below (strings, numbers, booleans and lists of them, or of tables, are
all a node's settings need), which reads back what it wrote before it is trusted.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from custodes.errors import ConfigError

__all__ = ["CONFIG_FILE", "read_config", "render_config"]

CONFIG_FILE = "custodes.toml"

_HEADER = """\
# The settings of this Custodes node, written by `custodes init`.
# Environment variables (CUSTODES_<NAME>) override a setting here, except the node's
# identity (origin, jurisdiction, witness_name): `custodes serve` refuses to start
# when they disagree with this file.
"""


def read_config(path: Path, known: set[str], refused: frozenset[str]) -> dict[str, Any]:
    """The settings in ``path`` (none if it does not exist); one-line errors."""
    try:
        with path.open("rb") as handle:
            values = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    for name in values:
        if name in refused:
            raise ConfigError(f"{path}: {name} cannot be set in the config file; remove it")
        if name not in known:
            raise ConfigError(
                f"{path}: unknown setting {name!r}; the settings are the fields of "
                "custodes.config.Settings (e.g. jurisdiction, origin, database_url)"
            )
    return values


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"cannot write {value!r} to the config file")


def render_config(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """The file's text: ``values`` set, every other setting shown commented out at its
    default (None values are left out: TOML has no null)."""
    lines = [_HEADER]
    lines += [f"{name} = {_value(v)}" for name, v in values.items() if v is not None]
    lines += ["", "# Defaults of the other settings (uncomment to change):"]
    lines += [
        f"# {name} = {_value(v)}"
        for name, v in defaults.items()
        if name not in values and v is not None
    ]
    text = "\n".join(lines) + "\n"
    written = {k: v for k, v in values.items() if v is not None}
    if tomllib.loads(text) != written:  # the writer is small: never trust it unchecked
        raise ConfigError("the settings cannot be written as TOML; check them for odd characters")
    return text
