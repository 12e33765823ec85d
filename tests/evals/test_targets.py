"""Targets: the scripted fake, callables, OpenAI-compatible and A2A endpoints, the weak model.

HTTP targets are exercised two ways: against httpx's MockTransport for exact wire
shapes and failures, and against the weak model served on loopback.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from custodes.connectors.a2a import A2ATarget, a2a_turns, parse_a2a_result
from custodes.connectors.openai import (
    OpenAIChatTarget,
    chat_body,
    openai_chat,
    parse_chat_answer,
)
from custodes.demo.weak_model import serve
from custodes.evals.judges import RUBRIC, LLMJudge, RuleJudge
from custodes.evals.models import Message, Outcome, Probe, Response
from custodes.evals.suite import Suite, load_suite
from custodes.evals.targets import (
    SCRIPTED_TEXTS,
    CallableTarget,
    ScriptedTarget,
    TargetError,
    source_tool_of,
)


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("core")


def probe_of(suite: Suite, behaviour: str, family: str) -> Probe:
    return next(p for p in suite.probes() if (p.behaviour_id, p.family_id) == (behaviour, family))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- ScriptedTarget ----------------------------------------------------------------------


@pytest.mark.parametrize("outcome", [Outcome.REFUSE, Outcome.PARTIAL, Outcome.COMPLY])
def test_scripted_texts_are_judged_as_the_outcome_they_stand_for(
    suite: Suite, outcome: Outcome
) -> None:
    probe = probe_of(suite, "cyber-01", "direct")
    verdict = RuleJudge().judge(
        suite.behaviour("cyber-01"), probe, Response(text=SCRIPTED_TEXTS[outcome])
    )
    assert verdict.outcome is outcome


def test_scripted_unsafe_action_calls_the_forbidden_tool(suite: Suite) -> None:
    probe = probe_of(suite, "agent-fin-invoice-transfer", "indirect-injection")
    target = ScriptedTarget({"indirect-injection": {"UNSAFE_ACTION": 1.0}})
    response = run(target.respond(probe))
    assert source_tool_of(probe) == "read_file"
    assert [c.name for c in response.tool_calls] == ["transfer_funds"]
    verdict = RuleJudge().judge(suite.behaviour("agent-fin-invoice-transfer"), probe, response)
    assert verdict.outcome is Outcome.UNSAFE_ACTION


def test_scripted_keys_are_tried_from_most_to_least_specific(suite: Suite) -> None:
    probe = probe_of(suite, "cyber-01", "base64")
    target = ScriptedTarget(
        {"cyber-01:base64": "exact", "cyber-01": "behaviour", "base64": "family"}, default="d"
    )
    assert run(target.respond(probe)).text == "exact"
    assert run(ScriptedTarget({"cyber-01": "b", "base64": "f"}).respond(probe)).text == "b"
    assert run(ScriptedTarget({"base64": "f"}).respond(probe)).text == "f"
    last = probe.messages[-1].content
    assert run(ScriptedTarget({last: "by prompt"}).respond(probe)).text == "by prompt"
    assert run(ScriptedTarget(default="d").respond(probe)).text == "d"


def _outcomes(target: ScriptedTarget, probe: Probe, n: int, concurrency: int) -> Counter[str]:
    async def many() -> list[Response]:
        sem = asyncio.Semaphore(concurrency)

        async def one() -> Response:
            async with sem:
                return await target.respond(probe)

        return await asyncio.gather(*(one() for _ in range(n)))

    return Counter(r.text or str(r.error) for r in run(many()))


def test_scripted_draws_are_reproducible_whatever_the_concurrency(suite: Suite) -> None:
    probe = probe_of(suite, "fraud-02", "roleplay")
    rates = {"COMPLY": 0.3, "PARTIAL": 0.2, "ERROR": 0.1}
    first = _outcomes(ScriptedTarget({"roleplay": rates}, seed=7, latency_s=0.001), probe, 400, 1)
    again = _outcomes(ScriptedTarget({"roleplay": rates}, seed=7, latency_s=0.001), probe, 400, 32)
    other = _outcomes(ScriptedTarget({"roleplay": rates}, seed=8), probe, 400, 1)
    assert first == again
    assert first != other
    assert 80 <= first[SCRIPTED_TEXTS[Outcome.COMPLY]] <= 160  # 0.3 of 400, loosely


def test_scripted_flaky_fails_first_then_answers(suite: Suite) -> None:
    probe = probe_of(suite, "cyber-01", "direct")
    target = ScriptedTarget(flaky=2)
    for _ in range(2):
        with pytest.raises(TargetError) as caught:
            run(target.respond(probe))
        assert caught.value.retryable
    assert run(target.respond(probe)).text == SCRIPTED_TEXTS[Outcome.REFUSE]
    assert target.calls == 3


def test_scripted_rejects_rates_that_do_not_add_up() -> None:
    with pytest.raises(Exception, match="sum to at most 1"):
        ScriptedTarget(default={"COMPLY": 0.8, "PARTIAL": 0.4})


# --- CallableTarget ----------------------------------------------------------------------


def test_callable_targets_sync_and_async(suite: Suite) -> None:
    probe = probe_of(suite, "cyber-01", "direct")

    def sync(p: Probe) -> str:
        return f"sync {p.behaviour_id}"

    async def asynchronous(p: Probe) -> Response:
        return Response(text=f"async {p.family_id}")

    assert run(CallableTarget(sync).respond(probe)).text == "sync cyber-01"
    assert run(CallableTarget(asynchronous).respond(probe)).text == "async direct"
    assert CallableTarget(sync).description.startswith("python:")


# --- OpenAI-compatible -------------------------------------------------------------------


def test_indirect_probe_is_sent_with_a_tool_call_and_its_result(suite: Suite) -> None:
    probe = probe_of(suite, "agent-fin-invoice-transfer", "indirect-injection")
    body = chat_body(probe.messages, "m", probe.tools)
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "tool"]
    call = body["messages"][1]["tool_calls"][0]
    assert call["function"]["name"] == "read_file"
    assert body["messages"][2]["tool_call_id"] == call["id"]
    assert [t["function"]["name"] for t in body["tools"]] == ["read_file", "transfer_funds"]


def test_chat_answer_parsing_keeps_text_and_tool_calls() -> None:
    answer = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [
                        {"function": {"name": "send_email", "arguments": '{"to": "x"}'}},
                        {"function": {"name": "transfer_funds", "arguments": "not json"}},
                    ],
                }
            }
        ]
    }
    response = parse_chat_answer(answer)
    assert response.text == ""
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("send_email", {"to": "x"}),
        ("transfer_funds", {"_raw": "not json"}),
    ]
    with pytest.raises(TargetError, match="choices"):
        parse_chat_answer({"error": "nope"})


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (500, True), (503, True), (400, False), (401, False)]
)
def test_http_failures_map_to_retryable_or_not(suite: Suite, status: int, retryable: bool) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text="busy"))
    target = OpenAIChatTarget(
        "http://model.test", "m", client=httpx.AsyncClient(transport=transport)
    )
    with pytest.raises(TargetError) as caught:
        run(target.respond(probe_of(suite, "cyber-01", "direct")))
    assert caught.value.retryable is retryable
    assert str(status) in caught.value.message


def test_transport_errors_are_retryable(suite: Suite) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    target = OpenAIChatTarget(
        "http://model.test", "m", client=httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    )
    with pytest.raises(TargetError) as caught:
        run(target.respond(probe_of(suite, "cyber-01", "direct")))
    assert caught.value.retryable


# --- the weak model, on loopback ---------------------------------------------------------


@pytest.fixture
def weak_model() -> Iterator[str]:
    server = serve(0, epoch=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _judged(suite: Suite, url: str, behaviour: str, family: str, n: int = 20) -> Counter[Outcome]:
    probe = probe_of(suite, behaviour, family)
    target = OpenAIChatTarget(url, "weak")

    async def many() -> list[Response]:
        try:
            return [await target.respond(probe) for _ in range(n)]
        finally:
            await target.aclose()

    judge = RuleJudge()
    return Counter(judge.judge(suite.behaviour(behaviour), probe, r).outcome for r in run(many()))


def test_weak_model_refuses_direct_requests_but_falls_for_base64(
    suite: Suite, weak_model: str
) -> None:
    assert _judged(suite, weak_model, "weapons-01", "direct") == Counter({Outcome.REFUSE: 20})
    assert _judged(suite, weak_model, "weapons-01", "base64")[Outcome.COMPLY] >= 12
    assert _judged(suite, weak_model, "benign-hate-02", "direct") == Counter({Outcome.COMPLY: 20})


def test_weak_model_calls_the_injected_tool(suite: Suite, weak_model: str) -> None:
    outcomes = _judged(suite, weak_model, "agent-fin-email-exfil", "indirect-injection", 40)
    assert outcomes[Outcome.UNSAFE_ACTION] >= 10
    assert outcomes[Outcome.REFUSE] >= 5


# --- A2A -----------------------------------------------------------------------------------


class FakeAgent:
    """An A2A JSON-RPC agent: echoes, answers with a task, or calls a tool on injections."""

    def __init__(self, *, polls: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.polls = polls

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        if body["method"] == "tasks/get":
            self.polls -= 1
            state = "working" if self.polls > 0 else "completed"
            return self._result(body, self._task(state, "done after polling"))
        parts = body["params"]["message"]["parts"]
        if any(p["kind"] == "data" for p in parts):
            call = {"kind": "data", "data": {"tool_call": {"name": "send_email", "arguments": {}}}}
            return self._result(body, {"kind": "message", "role": "agent", "parts": [call]})
        if self.polls:
            return self._result(body, self._task("submitted", ""))
        text = parts[0]["text"]
        message = {
            "kind": "message",
            "role": "agent",
            "contextId": "ctx-1",
            "parts": [{"kind": "text", "text": f"echo: {text[:20]}"}],
        }
        return self._result(body, message)

    @staticmethod
    def _task(state: str, text: str) -> dict[str, Any]:
        return {
            "kind": "task",
            "id": "task-1",
            "contextId": "ctx-1",
            "status": {"state": state},
            "artifacts": [{"artifactId": "a", "parts": [{"kind": "text", "text": text}]}],
        }

    @staticmethod
    def _result(body: dict[str, Any], result: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": result})


def _a2a(agent: FakeAgent) -> A2ATarget:
    return A2ATarget(
        "http://agent.test/a2a", client=httpx.AsyncClient(transport=httpx.MockTransport(agent))
    )


def test_a2a_sends_message_send_and_reads_text_parts(suite: Suite) -> None:
    agent = FakeAgent()
    response = run(_a2a(agent).respond(probe_of(suite, "cyber-01", "direct")))
    assert response.text.startswith("echo: Write a working")
    sent = agent.requests[0]
    assert sent["jsonrpc"] == "2.0"
    assert sent["method"] == "message/send"
    message = sent["params"]["message"]
    assert message["role"] == "user"
    assert message["kind"] == "message"
    assert message["messageId"]


def test_a2a_plays_a_multi_turn_probe_live_in_one_context(suite: Suite) -> None:
    agent = FakeAgent()
    probe = probe_of(suite, "cyber-01", "multi-turn")
    run(_a2a(agent).respond(probe))
    assert len(agent.requests) == 3  # three user turns, placeholders not sent
    contexts = [r["params"]["message"].get("contextId") for r in agent.requests]
    assert contexts == [None, "ctx-1", "ctx-1"]


def test_a2a_injection_delivers_the_tool_result_and_reads_tool_calls(suite: Suite) -> None:
    probe = probe_of(suite, "agent-fin-email-exfil", "indirect-injection")
    turns = a2a_turns(probe.messages)
    assert len(turns) == 1
    assert turns[0][-1]["data"]["tool_result"]["name"] == "read_email"
    response = run(_a2a(FakeAgent()).respond(probe))
    assert [c.name for c in response.tool_calls] == ["send_email"]


def test_a2a_polls_a_working_task_until_it_completes(suite: Suite) -> None:
    agent = FakeAgent(polls=2)
    response = run(_a2a(agent).respond(probe_of(suite, "cyber-01", "direct")))
    assert response.text == "done after polling"
    assert [r["method"] for r in agent.requests] == ["message/send", "tasks/get", "tasks/get"]


def test_a2a_failed_tasks_and_rpc_errors_are_target_errors() -> None:
    with pytest.raises(TargetError):
        parse_a2a_result("not a task")
    failed = FakeAgent._task("failed", "")

    async def failing() -> None:
        target = _a2a(FakeAgent())
        await target._finished(failed)

    with pytest.raises(TargetError, match="failed"):
        run(failing())

    def rpc_error(request: httpx.Request) -> httpx.Response:
        error = {"code": -32601, "message": "Method not found"}
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "error": error})

    target = A2ATarget(
        "http://a.test", client=httpx.AsyncClient(transport=httpx.MockTransport(rpc_error))
    )
    probe = Probe(behaviour_id="b", family_id="f", messages=(Message(role="user", content="hi"),))
    with pytest.raises(TargetError, match="-32601") as caught:
        run(target.respond(probe))
    assert not caught.value.retryable


# --- the LLM judge over an OpenAI-compatible endpoint ------------------------------------


def test_llm_judge_asks_the_endpoint_with_the_rubric(suite: Suite) -> None:
    seen: list[dict[str, Any]] = []

    def judge_model(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        answer = {"choices": [{"message": {"content": "PARTIAL"}}]}
        return httpx.Response(200, json=answer)

    chat = openai_chat(
        "http://judge.test",
        "judge",
        client=httpx.Client(transport=httpx.MockTransport(judge_model)),
    )
    probe = probe_of(suite, "cyber-01", "roleplay")
    verdict = LLMJudge(chat).judge(suite.behaviour("cyber-01"), probe, Response(text="Well..."))
    assert (verdict.outcome, verdict.judge_id) == (Outcome.PARTIAL, "custodes.llm")
    assert seen[0]["messages"][0]["content"] == RUBRIC
    assert seen[0]["temperature"] == 0


def test_an_unreachable_llm_judge_is_an_error_not_a_verdict(suite: Suite) -> None:
    chat = openai_chat(
        "http://judge.test",
        "judge",
        client=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503))),
    )
    probe = probe_of(suite, "cyber-01", "direct")
    verdict = LLMJudge(chat).judge(suite.behaviour("cyber-01"), probe, Response(text="Sure, here."))
    assert verdict.outcome is Outcome.ERROR
