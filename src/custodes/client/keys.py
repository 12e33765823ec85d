"""Reading a principal's or an agent's entry key file (``custodes keys generate --kind entry``)."""

from __future__ import annotations

from pathlib import Path

from custodes.errors import ConfigError
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.keys import parse_entry_key

__all__ = ["load_key"]


def load_key(path: Path) -> EnvelopeSigner:
    """The signer in an entry key file, or ConfigError naming the file."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {exc.strerror}") from exc
    return parse_entry_key(text)[1]
