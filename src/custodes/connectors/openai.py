"""OpenAI-compatible chat endpoints as targets (and as the LLM judge's model).

``POST {base}/v1/chat/completions`` with ``model``, ``messages`` and, when the probe
offers tools, ``tools`` (function tools with an open parameter schema). The answer is
``choices[0].message``: ``content`` (None counts as empty) and ``tool_calls`` (each
``function.name`` and its JSON ``arguments``; arguments that are not JSON are kept
under ``"_raw"`` rather than dropped, since a call to a forbidden tool counts whatever
its arguments).

An indirect-injection probe carries an assistant turn standing for a tool call and the
tool's result; they are sent the OpenAI way: the assistant message with ``tool_calls``
(id ``call_<n>``) and a ``tool`` message with the matching ``tool_call_id``.

``openai_completion`` speaks ``POST {base}/v1/completions`` (a raw prompt, for judge
models that are not chat models: HarmBench's classifiers, WildGuard) and reads
``choices[0].text``.

Failures map to ``TargetError``: HTTP 429 and 5xx and transport errors are retryable
(the runner backs off), other 4xx and unparseable answers are not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from custodes.evals.models import Message, Probe, Response, ToolCall
from custodes.evals.targets import TargetError

__all__ = [
    "AttackerEndpoint",
    "OpenAIChatTarget",
    "chat_body",
    "openai_chat",
    "openai_completion",
    "parse_chat_answer",
    "parse_completion_answer",
    "raise_for_target_status",
]

_PATH = "/v1/chat/completions"
_COMPLETIONS_PATH = "/v1/completions"
_SOCKET_TIMEOUT_S = 600.0


def raise_for_target_status(response: httpx.Response) -> None:
    """``TargetError`` for an HTTP error: retryable for 408, 425, 429 and 5xx."""
    status = response.status_code
    if status < 400:
        return
    retryable = status in (408, 425, 429) or status >= 500
    raise TargetError(
        f"HTTP {status} from {response.request.url}: {response.text[:200]}",
        retryable=retryable,
        code=f"http_{status}",
    )


def _tool_schema(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The {name.replace('_', ' ')} tool.",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": True},
        },
    }


def _wire_message(messages: Sequence[Message], n: int) -> dict[str, Any]:
    m = messages[n]
    if m.role == "assistant" and m.name:
        function = {"name": m.name, "arguments": "{}"}
        call = {"id": f"call_{n}", "type": "function", "function": function}
        return {"role": "assistant", "content": m.content, "tool_calls": [call]}
    if m.role == "tool":
        answered = next(
            (
                i
                for i in range(n - 1, -1, -1)
                if messages[i].role == "assistant" and messages[i].name
            ),
            n,
        )
        return {"role": "tool", "tool_call_id": f"call_{answered}", "content": m.content}
    return {"role": m.role, "content": m.content}


def chat_body(messages: Sequence[Message], model: str, tools: Sequence[str] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [_wire_message(messages, n) for n in range(len(messages))],
    }
    if tools:
        body["tools"] = [_tool_schema(t) for t in tools]
    return body


def _arguments(raw: object) -> dict[str, object]:
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {"_raw": raw}
    return parsed if isinstance(parsed, dict) else {"_raw": raw}


def _tool_calls(message: dict[str, Any]) -> tuple[ToolCall, ...]:
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        name = function.get("name")
        if isinstance(name, str) and name:
            calls.append(ToolCall(name=name, arguments=_arguments(function.get("arguments"))))
    return tuple(calls)


def parse_chat_answer(answer: object) -> Response:
    """``choices[0].message`` as a ``Response``; ``TargetError`` if it is not there."""
    try:
        message = answer["choices"][0]["message"]  # type: ignore[index]
        content = message.get("content") or ""
        if not isinstance(content, str):  # content parts: keep their text
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return Response(text=content, tool_calls=_tool_calls(message))
    except (KeyError, IndexError, TypeError, AttributeError):
        raise TargetError(
            "the endpoint's answer has no choices[0].message", code="bad_answer"
        ) from None


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        raise TargetError("the endpoint did not answer JSON", code="bad_answer") from None


class OpenAIChatTarget:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, llama.cpp, Ollama...)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        client: httpx.AsyncClient | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.model = model
        self.description = f"openai:{self.base_url} model {model}"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client
        self._extra = extra or {}

    def _http(self) -> httpx.AsyncClient:
        # One client per event loop: the runner's loop, created on first use.
        if self._client is None:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            # The runner's per-call timeout is the real limit; this only bounds a socket.
            self._client = httpx.AsyncClient(timeout=_SOCKET_TIMEOUT_S, limits=limits)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def respond(self, probe: Probe) -> Response:
        body = chat_body(probe.messages, self.model, probe.tools) | self._extra
        try:
            response = await self._http().post(
                self.base_url + _PATH, json=body, headers=self._headers
            )
        except httpx.TransportError as exc:
            raise TargetError(f"cannot reach {self.base_url}: {exc!r}", retryable=True) from exc
        raise_for_target_status(response)
        return parse_chat_answer(_json(response))


def openai_chat(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    timeout: float = 60.0,
    client: httpx.Client | None = None,
) -> Callable[[Sequence[Message]], str]:
    """A synchronous ``messages -> text`` function over an endpoint, for ``LLMJudge``."""
    url = base_url.rstrip("/").removesuffix("/v1") + _PATH
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    http = client or httpx.Client(timeout=timeout)

    def chat(messages: Sequence[Message]) -> str:
        body = chat_body(messages, model) | {"temperature": 0}
        response = http.post(url, json=body, headers=headers)
        raise_for_target_status(response)
        return parse_chat_answer(_json(response)).text

    return chat


def parse_completion_answer(answer: object) -> str:
    """``choices[0].text`` of a ``/v1/completions`` answer; ``TargetError`` if it is not there."""
    try:
        text = answer["choices"][0]["text"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        text = None
    if not isinstance(text, str):
        raise TargetError("the endpoint's answer has no choices[0].text", code="bad_answer")
    return text


def openai_completion(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    timeout: float = 60.0,
    client: httpx.Client | None = None,
) -> Callable[[str, int], str]:
    """A synchronous ``(prompt, max_tokens) -> text`` function over ``/v1/completions``.

    Temperature 0: the judge models that need a raw prompt are classifiers, read greedily.
    """
    url = base_url.rstrip("/").removesuffix("/v1") + _COMPLETIONS_PATH
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    http = client or httpx.Client(timeout=timeout)

    def complete(prompt: str, max_tokens: int) -> str:
        body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
        try:
            response = http.post(url, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise TargetError(f"cannot reach {url}: {exc!r}", retryable=True) from exc
        raise_for_target_status(response)
        return parse_completion_answer(_json(response))

    return complete


class AttackerEndpoint:
    """An attacker model for adaptive attacks: ``await endpoint(messages) -> text``.

    Asynchronous, so many behaviours' searches share one loop; HTTP 429, 5xx and
    transport errors are retried ``retries`` times with backoff, then raised as
    ``TargetError`` (the behaviour is then an ERROR, never a refusal).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        retries: int = 2,
        backoff_s: float = 0.5,
        timeout: float = 120.0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._retries, self._backoff_s, self._timeout = retries, backoff_s, timeout
        self._extra = extra or {}
        self._client: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, messages: Sequence[Message]) -> str:
        failures = 0
        while True:
            try:
                return await self._once(messages)
            except TargetError as exc:
                failures += 1
                if not exc.retryable or failures > self._retries:
                    raise
                await asyncio.sleep(self._backoff_s * 2 ** (failures - 1))

    async def _once(self, messages: Sequence[Message]) -> str:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        body = chat_body(messages, self.model) | self._extra
        try:
            response = await self._client.post(
                self.base_url + _PATH, json=body, headers=self._headers
            )
        except httpx.TransportError as exc:
            raise TargetError(
                f"cannot reach the attacker at {self.base_url}: {exc!r}", retryable=True
            ) from exc
        raise_for_target_status(response)
        return parse_chat_answer(_json(response)).text
