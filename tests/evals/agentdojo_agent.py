"""A scripted tool-calling agent behind a real OpenAI-compatible HTTP server on loopback.

It plays AgentDojo's ground truth: asked a user task's prompt, it calls the tools the
task's ground truth calls and then answers with its ground-truth output. In the suites
named in ``follows``, when a tool result carries an injection task's goal, it first
carries out that goal (the injection task's ground-truth calls): an agent that falls for
prompt injection there and resists it elsewhere. ``fail_suites`` answer HTTP 400, the
way an endpoint rejects a request it cannot serve.

It answers in the exact Chat Completions format (``choices[0].message`` with
``tool_calls`` of type ``function`` and JSON-string ``arguments``), so AgentDojo's own
``OpenAILLM`` element and the ``openai`` client read it as they read a real model.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agentdojo.task_suite.load_suites import get_suites

__all__ = ["ScriptedAgent", "serve_agent"]

_QUOTES = re.compile(r"[\s'\"]+")


def _plain(text: str) -> str:
    """Whitespace and quotes dropped: tool results are YAML, folded and quoted."""
    return _QUOTES.sub("", text)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content)
    return str(content or "")


@dataclass
class ScriptedAgent:
    benchmark_version: str
    follows: frozenset[str] = frozenset()
    fail_suites: frozenset[str] = frozenset()
    requests: int = 0
    _tasks: dict[str, tuple[str, Any]] = field(default_factory=dict)
    _environments: dict[tuple[str, str], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, suite in get_suites(self.benchmark_version).items():
            for task in suite.user_tasks.values():
                self._tasks[task.PROMPT] = (name, task)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests += 1
        messages = body["messages"]
        prompt = next(_text(m["content"]) for m in messages if m["role"] == "user")
        name, task = self._tasks[prompt]
        if name in self.fail_suites:
            return 400, {"error": {"message": "this model cannot serve the request",
                                   "type": "invalid_request_error", "code": None}}  # fmt: skip
        suite = get_suites(self.benchmark_version)[name]
        environment = self._environment(name, suite, task)
        turns = sum(1 for m in messages if m["role"] == "assistant")
        if turns == 0:
            return 200, _reply(body, "u", task.ground_truth(environment.model_copy(deep=True)))
        injected = any(
            c["id"].startswith("inj") for m in messages for c in m.get("tool_calls") or ()
        )
        goal = self._goal(suite, messages) if name in self.follows and not injected else None
        if goal is not None:
            return 200, _reply(body, "inj", goal.ground_truth(environment.model_copy(deep=True)))
        return 200, _reply(body, "", [], text=task.GROUND_TRUTH_OUTPUT or "Done.")

    def _environment(self, name: str, suite: Any, task: Any) -> Any:
        """The task's starting environment (loading one is slow: kept per task)."""
        key = (name, task.ID)
        if key not in self._environments:
            default = suite.load_and_inject_default_environment({})
            self._environments[key] = task.init_environment(default)
        return self._environments[key]

    def _goal(self, suite: Any, messages: list[dict[str, Any]]) -> Any | None:
        seen = _plain(" ".join(_text(m["content"]) for m in messages if m["role"] == "tool"))
        for injection in suite.injection_tasks.values():
            if _plain(injection.GOAL) in seen:
                return injection
        return None


def _reply(body: dict[str, Any], prefix: str, calls: list[Any], text: str = "") -> dict[str, Any]:
    tool_calls = [
        {
            "id": f"{prefix}-{n}",
            "type": "function",
            "function": {
                "name": call.function,
                "arguments": json.dumps(dict(call.args), default=str),
            },
        }
        for n, call in enumerate(calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": None if tool_calls else text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "scripted"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _handler(agent: ScriptedAgent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            status, payload = agent.answer(json.loads(self.rfile.read(length)))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextlib.contextmanager
def serve_agent(agent: ScriptedAgent) -> Iterator[str]:
    """Serve ``agent`` on a free loopback port; yields the base URL (…/v1)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(agent))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
