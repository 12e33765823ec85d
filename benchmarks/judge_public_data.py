"""Convert public, human-labelled judge data shipped in PyPI packages to LabelledCase JSONL.

Source: PyRIT 1.1.0 (MIT, Microsoft), ``pyrit/datasets/scorer_evals/``, obtained with
``pip download pyrit==1.1.0 --no-deps`` and unzipped; run::

    python benchmarks/judge_public_data.py /tmp/dl/pyrit

Label mapping (documented in docs/judge-validation.md, fixed before any label count was
looked at):

- ``refusal_scorer/refusal.csv``, ``refusal_extra.csv``, ``sample/mini_refusal.csv``:
  ``human_score`` 1 = the response is a refusal -> REFUSE; 0 = not a refusal -> COMPLY
  (PyRIT's labels are binary, so a partial answer cannot be told apart and counts as
  COMPLY). ``behaviour_kind`` comes from the objective alone: the everyday requests
  listed in ``_BENIGN`` are ``must_comply``, every other objective ``must_refuse``.
- ``objective/*.csv``: ``human_score`` 1 = the red-team objective was achieved -> COMPLY;
  0 = not achieved -> REFUSE (a negative: refusal, deflection or an answer that does not
  achieve the objective). All are ``must_refuse``. ``chemical_biological.csv`` is left
  out on purpose: Custodes does not redistribute responses that may carry CBRN uplift.
- ``harm/*.csv`` (Likert harm scores) are not refusal/compliance labels: not used.

Duplicates (same prompt and response) keep their first occurrence. The id is
``pyrit-`` + the first 12 hex digits of sha256(prompt NUL response); the split is fixed:
sha256(id) even -> ``train/``, odd -> ``heldout/``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "src" / "custodes" / "evals" / "data" / "judges"
NAME = "pyrit-scorer-evals.jsonl"
SOURCE = "pyrit/scorer_evals"
REFUSAL_FILES = (
    "refusal_scorer/refusal.csv",
    "refusal_scorer/refusal_extra.csv",
    "sample/mini_refusal.csv",
)
EXCLUDED = frozenset({"chemical_biological.csv"})
_BENIGN_PREFIXES = (
    "Can you ",
    "Do you ",
    "Explain how to balance",
    "Explain the ",
    "Give me names",
    "Give me some ideas",
    "Help me brainstorm",
    "How do I ",
    "How does ",
    "Share a fun fact",
    "Suggest some",
    "Tell me a ",
    "What are ",
    "What is ",
    "Write a description for a fictional",
    "Write a short poem",
    "Write a short story about a lost dog",
)


def is_benign(objective: str) -> bool:
    return objective.startswith(_BENIGN_PREFIXES)


def read_rows(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


def case_id(prompt: str, response: str) -> str:
    digest = hashlib.sha256(f"{prompt}\0{response}".encode()).hexdigest()
    return f"pyrit-{digest[:12]}"


def is_train(identifier: str) -> bool:
    return int(hashlib.sha256(identifier.encode()).hexdigest(), 16) % 2 == 0


def refusal_case(name: str, row: dict[str, str]) -> dict[str, object]:
    prompt, response = row["objective"], row["assistant_response"]
    return {
        "id": case_id(prompt, response),
        "behaviour_kind": "must_comply" if is_benign(prompt) else "must_refuse",
        "prompt": prompt,
        "response": response,
        "label": "REFUSE" if row["human_score"].strip() == "1" else "COMPLY",
        "case": f"PyRIT {name}, human_score={row['human_score'].strip()} (1 = refusal)",
        "lang": "en",
        "style": "public-refusal-set",
        "source": f"{SOURCE}/refusal",
    }


def objective_case(name: str, row: dict[str, str]) -> dict[str, object]:
    prompt, response = row["objective"], row["assistant_response"]
    category = row.get("harm_category", "").strip()
    score = row["human_score"].strip()
    return {
        "id": case_id(prompt, response),
        "behaviour_kind": "must_refuse",
        "prompt": prompt,
        "response": response,
        "label": "COMPLY" if row["human_score"].strip() == "1" else "REFUSE",
        "case": f"PyRIT {name} ({category}), human_score={score} (1 = achieved)",
        "lang": "en",
        "style": "public-objective-set",
        "source": f"{SOURCE}/objective",
    }


def collect(root: Path) -> list[dict[str, object]]:
    evals = root / "pyrit" / "datasets" / "scorer_evals"
    cases = [refusal_case(n, r) for n in REFUSAL_FILES for r in read_rows(evals / n)]
    for path in sorted((evals / "objective").glob("*.csv")):
        if path.name not in EXCLUDED:
            cases += [objective_case(f"objective/{path.name}", r) for r in read_rows(path)]
    seen: set[str] = set()
    unique = []
    for case in cases:
        if case["id"] not in seen and str(case["response"]).strip():
            seen.add(str(case["id"]))
            unique.append(case)
    return unique


def write(cases: list[dict[str, object]], folder: str) -> int:
    path = DATA / folder / NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(c, ensure_ascii=False, sort_keys=True) for c in cases]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return len(lines)


def main() -> None:
    cases = collect(Path(sys.argv[1]))
    train = [c for c in cases if is_train(str(c["id"]))]
    heldout = [c for c in cases if not is_train(str(c["id"]))]
    print(f"train: {write(train, 'train')} cases, heldout: {write(heldout, 'heldout')} cases")


if __name__ == "__main__":
    main()
