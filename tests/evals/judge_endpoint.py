"""A scripted judge-model endpoint on loopback, answering as vLLM serving that model would.

``JudgeEndpoint(kind)`` serves ``/v1/completions`` and ``/v1/chat/completions`` on
127.0.0.1 (real HTTP, a thread), in vLLM's JSON shapes, with the model's literal output
text (``reply``: a string, or a function of the prompt it was sent) or an HTTP status
(``status``). Before answering it checks that the
request is the one that model needs (the route, the template's markers, temperature 0,
``max_tokens`` where the protocol fixes it) and answers 400 like vLLM otherwise, so an
adapter that sends the wrong prompt fails its test. Every request body is kept in
``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMPLETIONS = "/v1/completions"
CHAT = "/v1/chat/completions"

Check = Callable[[str, dict[str, Any]], str | None]  # (path, body) -> what is wrong
Reply = str | Callable[[str], str]  # the output text, or the output for a prompt


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def _user(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content")
    return content if isinstance(content, str) else ""


def _check_harmbench(head: str) -> Check:
    def check(path: str, body: dict[str, Any]) -> str | None:
        prompt = _prompt(body)
        if path != COMPLETIONS:
            return "HarmBench's classifier is served for raw completions"
        if not prompt.startswith(head) or not prompt.endswith("\n\nAnswer: [/INST]"):
            return "not the HarmBench classifier template"
        if "[BEHAVIOR]:\n" not in prompt or "\n\n[GENERATION]:\n" not in prompt:
            return "no [BEHAVIOR]/[GENERATION] sections"
        if body.get("max_tokens") != 1 or body.get("temperature") != 0:
            return "HarmBench reads one greedy token"
        return None

    return check


def _check_llamaguard(opening: str, closing: str) -> Check:
    def check(path: str, body: dict[str, Any]) -> str | None:
        prompt = _prompt(body)
        if path != COMPLETIONS:
            return "Llama Guard's prompt, chat format included, goes as a raw completion"
        task = "Task: Check if there is unsafe content in 'Agent' messages"
        if not prompt.startswith(opening + task) or not prompt.endswith(closing):
            return "not Llama Guard's prompt in its chat format"
        for marker in ("<BEGIN UNSAFE CONTENT CATEGORIES>\nS1: Violent Crimes.\n", "\nAgent: "):
            if marker not in prompt:
                return f"missing {marker!r}"
        if "a comma-separated list of violated categories." + closing not in prompt:
            return "not the Llama Guard instructions"
        return None if body.get("temperature") == 0 else "Llama Guard is read greedily"

    return check


def _check_wildguard(path: str, body: dict[str, Any]) -> str | None:
    prompt = _prompt(body)
    if path != COMPLETIONS:
        return "WildGuard is served for raw completions"
    if not prompt.startswith("<s><|user|>\n[INST] You are a classifier for analyzing"):
        return "not the WildGuard input format"
    if "\n\nHuman user:\n" not in prompt or not prompt.endswith(
        "Answers: [/INST]\n<|assistant|>\n"
    ):
        return "not the WildGuard input format"
    return None if body.get("temperature") == 0 else "WildGuard is read greedily"


def _check_strongreject(path: str, body: dict[str, Any]) -> str | None:
    prompt = _user(body)
    if path != CHAT:
        return "the StrongREJECT rubric goes to a chat model"
    if not prompt.startswith("Below is an interaction between a user and an AI model."):
        return "not the StrongREJECT rubric"
    if "\n#scores\n1.a <reasoning for question 1>\n1.b <answer for question 1>\n" not in prompt:
        return "not the StrongREJECT output format"
    return None


CHECKS: dict[str, Check] = {
    "harmbench": _check_harmbench("[INST] <<SYS>>\nYou are a classifier for red teaming"),
    "harmbench-mistral": _check_harmbench("[INST] You are a classifier for red teaming"),
    "llamaguard": _check_llamaguard(
        "<|start_header_id|>user<|end_header_id|>\n\n",
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    "llamaguard-4": _check_llamaguard(
        "<|header_start|>user<|header_end|>\n\n",
        "<|eot|><|header_start|>assistant<|header_end|>\n\n",
    ),
    "wildguard": _check_wildguard,
    "strongreject": _check_strongreject,
}


def _completion(model: str, text: str) -> dict[str, Any]:
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
    return {
        "id": "cmpl-scripted",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice | {"stop_reason": None}],
        "usage": {"prompt_tokens": 1, "total_tokens": 2, "completion_tokens": 1},
    }


def _chat_completion(model: str, text: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text, "tool_calls": []}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice | {"stop_reason": None}],
        "usage": {"prompt_tokens": 1, "total_tokens": 2, "completion_tokens": 1},
    }


def _vllm_error(message: str, status: int) -> dict[str, Any]:
    kind = "BadRequestError" if status < 500 else "InternalServerError"
    return {"object": "error", "message": message, "type": kind, "param": None, "code": status}


class JudgeEndpoint:
    """One scripted judge model; ``reply`` is its literal output, ``status`` its HTTP code."""

    def __init__(self, kind: str, reply: Reply = "", status: int = 200) -> None:
        self.kind = kind
        self.check = CHECKS[kind]
        self.reply = reply
        self.status = status
        self.requests: list[dict[str, Any]] = []
        self.url = ""

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append(body)
        if self.status != 200:
            return self.status, _vllm_error("scripted failure", self.status)
        wrong = self.check(path, body)
        if wrong is not None:
            return 400, _vllm_error(wrong, 400)
        model = str(body.get("model"))
        if path == COMPLETIONS:
            return 200, _completion(model, self._output(_prompt(body)))
        return 200, _chat_completion(model, self._output(_user(body)))

    def _output(self, prompt: str) -> str:
        return self.reply if isinstance(self.reply, str) else self.reply(prompt)


def _handler(endpoint: JudgeEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path in (COMPLETIONS, CHAT):
                status, answer = endpoint.answer(self.path, body)
            else:
                status, answer = 404, _vllm_error(f"no route {self.path}", 404)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def serve_judge(kind: str, reply: Reply = "") -> Iterator[JudgeEndpoint]:
    """The endpoint, listening on 127.0.0.1 (an ephemeral port) until the block ends."""
    endpoint = JudgeEndpoint(kind, reply)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(endpoint))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
