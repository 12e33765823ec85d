"""The node's log cannot fill a disk: identical records are let through a few a minute."""

from __future__ import annotations

import logging

import pytest

from custodes.api.logs import RepeatFilter, logging_config


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limited(caplog: pytest.LogCaptureFixture, clock: FakeClock) -> logging.Logger:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RepeatFilter(burst=3, window=60.0, clock=clock))
    return logging.getLogger("custodes.test.repeats")


def _accept_failed() -> None:
    raise OSError(24, "Too many open files")


def test_repeated_errors_pass_a_few_a_minute_then_say_how_many_were_held_back(
    limited: logging.Logger, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    for _ in range(1000):
        try:
            _accept_failed()
        except OSError:
            limited.exception("socket.accept() out of system resource")
    assert len(caplog.records) == 3
    clock.now += 61
    limited.error("socket.accept() out of system resource", exc_info=caplog.records[0].exc_info)
    assert len(caplog.records) == 4
    assert "997 more like it" in caplog.records[-1].getMessage()


def test_different_errors_are_counted_apart(
    limited: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(10):
        limited.warning("client %d sent a bad request", n % 2)
        limited.error("client %d sent a bad request", n % 2)
    assert len(caplog.records) == 12  # four kinds, three of each


def test_serve_logs_through_the_filter() -> None:
    config = logging_config("info")
    assert config["handlers"]["stderr"]["filters"] == ["repeats"]
    assert config["root"]["handlers"] == ["stderr"]  # asyncio's and custodes' records too
