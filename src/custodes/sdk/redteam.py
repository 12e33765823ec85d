"""The red-teaming repository from a principal's side (docs/design/0029).

* ``act_request``: a step of a disclosure's life as the node takes it: the
  ``RedteamAct`` (public metadata and a salted commitment to the body) signed with the
  principal's key, and the opening (salt and body) beside it.
* ``new_disclosure``: a fresh disclosure id (``vulnerability--<uuid4>``).
* ``RedteamWatch``: an operator follows the exposures of its agents (and a regulator
  every disclosure it may read) over the node's server-sent events, with a callback;
  it reconnects after a drop, and a reconnection's first events are the current
  exposures, so nothing is missed (a status may be seen twice). Like every SDK client,
  it refuses a plain ``http://`` node URL except on loopback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from custodes.client import check_node_url
from custodes.redteam.signing import act_request, new_disclosure
from custodes.sdk.pushes import sse_events

__all__ = ["RedteamWatch", "act_request", "new_disclosure"]

log = logging.getLogger("custodes.sdk.redteam")


Callback = Callable[[str, dict[str, Any]], None]


class RedteamWatch:
    """Follow ``/api/v1/redteam/events`` on a thread; ``callback(kind, event)`` for each
    ``exposure`` and ``disclosure`` event. ``start``/``stop``, or use as a context."""

    def __init__(
        self,
        url: str,
        token: str,
        callback: Callback,
        *,
        http: httpx.Client | None = None,
        retry: float = 1.0,
        retry_max: float = 30.0,
    ) -> None:
        self.url = check_node_url(url) + "/api/v1/redteam/events"
        self._token, self._callback = token, callback
        self._own = http is None
        self._http = http or httpx.Client(timeout=httpx.Timeout(30.0, read=60.0))
        self._retry, self._retry_max = retry, retry_max
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redteam-watch", daemon=True)
        self.connected = threading.Event()
        self.connections = 0
        self._response: httpx.Response | None = None  # the stream being followed

    def __enter__(self) -> RedteamWatch:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop following: end the open stream (a read waiting on it returns at once)."""
        self._stop.set()
        response = self._response
        if response is not None:
            response.close()
        self._thread.join(timeout=10)
        if self._own:
            self._http.close()

    def _run(self) -> None:
        delay = self._retry
        while not self._stop.is_set():
            try:
                self._follow()
                delay = self._retry
            except (httpx.HTTPError, OSError) as exc:
                if self._stop.is_set():
                    return  # stop() closed the stream
                log.warning("the red-teaming event stream dropped (%s); reconnecting", exc)
            self.connected.clear()
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self._retry_max)

    def _follow(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "text/event-stream"}
        with self._http.stream("GET", self.url, headers=headers) as response:
            self._response = response
            if self._stop.is_set():  # stopped while connecting
                return
            if response.status_code != 200:
                response.read()
                log.warning("the node refused the event stream: %s", response.text[:200])
                return
            self.connections += 1
            self.connected.set()
            for found in sse_events(response.iter_lines()):
                if self._stop.is_set():
                    return
                if found is not None:
                    self._deliver(*found)

    def _deliver(self, kind: str, data: str) -> None:
        try:
            self._callback(kind, orjson.loads(data))
        except Exception:  # the user's callback: keep following
            log.exception("the red-teaming callback failed on a %s event", kind)
