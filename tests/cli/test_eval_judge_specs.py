"""``--judge`` specs build the adapter the model named by ``--judge-model`` needs."""

from __future__ import annotations

import pytest

from custodes.cli.evals import make_judge
from custodes.errors import ConfigError


@pytest.mark.parametrize(
    ("spec", "model", "judge_id", "version"),
    [
        ("harmbench:http://127.0.0.1:9", None, "custodes.harmbench", "1-llama2"),
        (
            "harmbench:http://127.0.0.1:9",
            "cais/HarmBench-Mistral-7b-val-cls",
            "custodes.harmbench",
            "1-mistral",
        ),
        ("llamaguard:http://127.0.0.1:9", None, "custodes.llamaguard", "1-lg3-s1-s14"),
        (
            "llamaguard:http://127.0.0.1:9",
            "meta-llama/Llama-Guard-4-12B",
            "custodes.llamaguard",
            "1-lg4-s1-s13",
        ),
        ("wildguard:http://127.0.0.1:9", None, "custodes.wildguard", "1"),
        ("strongreject:http://127.0.0.1:9", "gpt-4o", "custodes.strongreject", "1-v1"),
    ],
)
def test_each_adapter_spec(spec: str, model: str | None, judge_id: str, version: str) -> None:
    judge = make_judge(spec, model)
    assert (judge.id, judge.version) == (judge_id, version)


@pytest.mark.parametrize("spec", ["llamaguard", "llamaguard:", "guard:http://x"])
def test_an_adapter_without_an_endpoint_is_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="harmbench:URL"):
        make_judge(spec, None)
