"""The alliance view of an agent's recognitions, with what a client needs to verify it."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from custodes.api.openapi import errors
from custodes.federation.recognition_answers import RecognitionAnswers

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/alliance", tags=["alliance"])


@router.get(
    "/agents/{agent_id}/recognitions",
    summary="Every party's decisions on an agent's attestations, with proofs",
    responses=errors(404, 422),
)
async def get_recognitions(request: Request, agent_id: str) -> Response:
    """For the agent's current model and card digests (`digests`, from its home's
    registry), every active party's latest decision on each of its attestations
    (`decisions`: the entry as logged, its index, leaf hash and inclusion proof at that
    party's checkpoint) and, per jurisdiction, the recognition in force (`in_force`,
    null where none). `parties` gives each party's checkpoint with its cosignatures, its
    `source` (`self` or `mirror`), `age_s` and `stale` (older than `bound_s`, or the
    mirror halted on an alarm); `unavailable` lists the parties this node holds no
    mirror of yet. Verify offline with `custodes.federation.recognition_lookup.
    verify_recognitions`. 404 `unknown_jurisdiction` / `unknown_agent`, 422 for a
    malformed id, 404 `mirror_unavailable` when the home's registry is not mirrored
    here yet."""
    answer: dict[str, Any] = await run_in_threadpool(_answers(request).answer, agent_id)
    return Response(orjson.dumps(answer), media_type="application/json")


def _answers(request: Request) -> RecognitionAnswers:
    """This app's answers, kept per checkpoint; made on first use (a benign race: two
    first requests may each make one, and one is kept)."""
    state = request.app.state
    answers: RecognitionAnswers | None = getattr(state, "recognition_answers", None)
    if answers is None or answers.lookups is not state.lookups:
        answers = state.recognition_answers = RecognitionAnswers(state.lookups, state.recognitions)
    return answers
