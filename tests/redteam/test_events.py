"""Who sees which red-teaming event on a stream: an operator, its own agents' exposures
at their home; anyone else, what the TLP rule lets it read."""

from __future__ import annotations

from typing import Any

import pytest

from custodes.redteam.events import visible
from custodes.redteam.tlp import Audience, Reader

AMBER_GB = Audience(tlp="amber", stage="disclosed", origin="FR", parties=("FR", "GB"))


def _event(kind: str, audience: Audience = AMBER_GB, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "audience": audience.model_dump(mode="json"), **extra}


EXPOSURE = _event("exposure", operator="operator:acme", home="GB")


@pytest.mark.parametrize(
    ("reader", "event", "seen"),
    [
        (Reader("principal", "GB", "operator:acme", "operator"), EXPOSURE, True),
        (Reader("principal", "GB", "operator:other", "operator"), EXPOSURE, False),
        (Reader("principal", "FR", "operator:acme", "operator"), EXPOSURE, False),  # not home
        (Reader("principal", "GB", "operator:acme", "operator"), _event("disclosure"), False),
        (Reader("principal", "GB", "regulator:gb", "regulator"), EXPOSURE, True),
        (Reader("principal", "GB", "regulator:gb", "regulator"), _event("disclosure"), True),
        (Reader("principal", "DE", "regulator:de", "regulator"), _event("disclosure"), False),
        (
            Reader("principal", "DE", "regulator:de", "regulator"),
            _event("disclosure", AMBER_GB.model_copy(update={"tlp": "green"})),
            True,
        ),
        (
            Reader("principal", "GB", "regulator:gb", "regulator"),
            _event("disclosure", AMBER_GB.model_copy(update={"stage": "triaged"})),
            False,
        ),
    ],
)
def test_who_sees_an_event(reader: Reader, event: dict[str, Any], seen: bool) -> None:
    assert visible(event, reader) is seen
