"""Every STIX object we make, serve or accept passes stix2-validator (docs/design/0029).

``validate_object`` runs ``stix2validator`` 3.3.2 for STIX 2.1 in strict mode (warnings
are errors) with ``schema_dir`` set to the JSON schemas shipped in
``custodes/redteam/schemas``: one per extension-definition (``EXT_VULNERABILITY``,
``EXT_PROBE``, ``EXT_EXPOSURE``), so the contents of our extensions are checked too (a
bad enum in a probe fails), and a local schema of the TLP 2.0 marking extension (its
published schema ``$ref``s remote URLs; ours checks ``tlp_2_0`` offline). Nothing
here reaches the network: the validator fetches a schema only for an ``http(s)``
``$ref``, and none of ours has one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from stix2validator import (  # type: ignore[import-untyped]  # no type information
    ValidationError,
    ValidationOptions,
    validate_parsed_json,
)

__all__ = ["SCHEMA_DIR", "validate_object", "validate_objects"]

SCHEMA_DIR = Path(__file__).parent / "schemas"
_OPTIONS = ValidationOptions(version="2.1", strict=True, schema_dir=str(SCHEMA_DIR))

# The validator prints (logs) a line per object; its findings come back in the result.
logging.getLogger("stix2validator").setLevel(logging.ERROR)


def validate_object(obj: Mapping[str, Any]) -> list[str]:
    """The validator's errors and warnings for one STIX 2.1 object (empty: valid)."""
    if not isinstance(obj, Mapping) or "type" not in obj:
        return ["not a STIX object: a JSON object with a type is expected"]
    try:
        result = validate_parsed_json(dict(obj), _OPTIONS)
    except ValidationError as exc:  # the validator's own: no schema, bad shape
        return [str(exc)]
    return [str(e) for e in result.errors] + [str(w) for w in result.warnings]


def validate_objects(objs: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The problems of the invalid objects only, by id (by position when an object has
    no usable id)."""
    found: dict[str, list[str]] = {}
    for i, obj in enumerate(objs):
        problems = validate_object(obj)
        if problems:
            key = obj.get("id") if isinstance(obj, Mapping) else None
            found[str(key) if isinstance(key, str) else f"#{i}"] = problems
    return found
